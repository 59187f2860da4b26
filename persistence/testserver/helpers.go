package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// PostgresT returns the PostgreSQL server that the tests of this binary
// share, starting it when none runs. The server is reference counted: when
// the last test holding it ends it stops, unless the binary's TestMain runs
// Main, which keeps it until every test has run. It fails t when the server
// cannot be started, for example when PostgreSQL is not installed (the
// message names the package to install); it never skips.
//
// Tests must not change the shared server's settings or its database
// "bookd" in ways others would notice: use DatabaseT for a database of
// your own.
func PostgresT(t testing.TB) *Postgres {
	t.Helper()
	p, err := sharedPostgres.acquire()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := sharedPostgres.release(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return p
}

// DatabaseT creates a new database on the shared server (see PostgresT),
// named after t, drops it when t ends (closing what is still connected to
// it) and returns its URL.
func DatabaseT(t testing.TB) string {
	t.Helper()
	p := PostgresT(t)
	name := databaseName(t.Name())
	dbURL, err := p.NewDatabase(name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := p.DropDatabase(name); err != nil {
			t.Errorf("%v", err)
		}
	})
	return dbURL
}

// databases numbers the databases DatabaseT creates, for unique names.
var databases atomic.Int64

// databaseName is a unique database name made from a test name: lower-case
// letters, digits and underscores, within PostgreSQL's 63 bytes.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	prefix := "t" + strconv.FormatInt(databases.Add(1), 10) + "_"
	name := b.String()
	if len(prefix)+len(name) > 63 {
		name = name[len(prefix)+len(name)-63:] // keep the end: the subtest's name
	}
	return prefix + name
}

// RedisT starts a Redis server for t alone in t.TempDir() and stops it when
// t ends. It fails t when the server cannot be started, for example when
// redis-server is not installed (the message names the package to
// install); it never skips.
func RedisT(t testing.TB) *Redis {
	t.Helper()
	r, err := StartRedis(t.TempDir())
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return r
}

// sharedPostgres is the server PostgresT hands out.
var sharedPostgres shared

// shared is a reference-counted server.
type shared struct {
	mu  sync.Mutex
	srv *Postgres
	// err is why starting failed; every later acquire returns it rather
	// than trying again for seconds per test.
	err    error
	refs   int
	pinned bool // by Main: keep the server at zero references
	// owner holds the lock that tells reapStalePostgres the server's
	// process lives; closed once the server is stopped.
	owner *os.File
}

func (s *shared) acquire() (*Postgres, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.srv == nil {
		srv, owner, err := startSharedPostgres()
		if err != nil {
			s.err = err
			return nil, err
		}
		s.srv, s.owner = srv, owner
	}
	s.refs++
	return s.srv, nil
}

func (s *shared) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	return s.stopIfUnused()
}

func (s *shared) pin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned = true
}

func (s *shared) unpin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned = false
	return s.stopIfUnused()
}

// stopIfUnused stops the server when nobody holds or pins it; s.mu is held.
func (s *shared) stopIfUnused() error {
	if s.refs > 0 || s.pinned || s.srv == nil {
		return nil
	}
	err := s.srv.Stop()
	_ = s.owner.Close()
	s.srv, s.owner = nil, nil
	return err
}

// sharedDirPrefix names the folders of shared servers in os.TempDir();
// each holds the file ownerFile, locked by the process that started the
// server for as long as it runs (see lockOwner).
const (
	sharedDirPrefix = "bookd-testserver-postgres-"
	ownerFile       = "owner.lock"
)

// startSharedPostgres reaps the shared servers of dead test binaries, then
// starts one in a new folder under os.TempDir() (not a test's TempDir,
// which goes away with its test). It returns the locked owner file too.
func startSharedPostgres() (*Postgres, *os.File, error) {
	bin, err := postgresBinDir("")
	if err != nil {
		return nil, nil, err
	}
	reapStalePostgres(bin)
	dir, err := os.MkdirTemp("", sharedDirPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("testserver: %w", err)
	}
	owner, err := lockOwner(filepath.Join(dir, ownerFile))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("testserver: %w", err)
	}
	p, err := StartPostgres(dir, WithBinDir(bin))
	if err != nil {
		_ = owner.Close()
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return p, owner, nil
}

// reapStalePostgres stops and removes the shared servers whose test binary
// died without stopping them (killed by go test's -timeout, for example):
// those whose owner file nobody holds locked. It is best effort: what it
// cannot stop stays.
func reapStalePostgres(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, dir := range dirs {
		lock, gone := ownerGone(filepath.Join(dir, ownerFile))
		if !gone {
			continue // alive, being set up right now, or not ours
		}
		as, err := postgresUser()
		if err != nil {
			_ = lock.Close()
			return
		}
		p := &Postgres{dir: dir, bin: bin, as: as}
		if _, err := os.Stat(filepath.Join(p.dataDir(), "postmaster.pid")); err == nil {
			_, _ = p.run("pg_ctl", "stop", "-D", p.dataDir(), "-m", "immediate", "-w", "-t", "30", "-s")
		}
		_ = os.RemoveAll(dir)
		_ = lock.Close()
	}
}
