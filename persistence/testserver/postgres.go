package testserver

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server started by StartPostgres. Its methods are
// safe for concurrent use.
type Postgres struct {
	dir  string  // the folder given to StartPostgres, absolute
	bin  string  // the folder of initdb, pg_ctl and postgres
	port int     // on 127.0.0.1
	as   *osUser // the user the server runs as; nil: ourselves

	stopOnce sync.Once
	stopErr  error
}

// The superuser role and the first database of every server. Clients log in
// with trust authentication: no password.
const (
	postgresRole     = "postgres"
	postgresDatabase = "bookd"
)

// PostgresOption changes how StartPostgres sets up a server.
type PostgresOption func(*postgresConfig)

type postgresConfig struct {
	binDir   string
	settings [][2]string // in order; a later one wins
}

// WithSetting sets a server parameter, name = value as in postgresql.conf,
// over StartPostgres's defaults; for example WithSetting("max_connections",
// "500"). The value is quoted for postgresql.conf.
func WithSetting(name, value string) PostgresOption {
	return func(c *postgresConfig) { c.settings = append(c.settings, [2]string{name, value}) }
}

// WithBinDir runs the server binaries (initdb, pg_ctl, postgres) in dir
// instead of the newest under /usr/lib/postgresql.
func WithBinDir(dir string) PostgresOption {
	return func(c *postgresConfig) { c.binDir = dir }
}

// defaultSettings are the server parameters StartPostgres writes, before
// those of WithSetting. Durability is what production has (fsync,
// synchronous commit, full-page writes: the benchmarks measure real
// commits); memory is small, connections plenty (benchmarks run hundreds of
// clients).
func defaultSettings(socketDir string) [][2]string {
	return [][2]string{
		{"listen_addresses", "127.0.0.1"},
		{"unix_socket_directories", socketDir},
		{"fsync", "on"},
		{"synchronous_commit", "on"},
		{"full_page_writes", "on"},
		{"max_connections", "300"},
		{"shared_buffers", "64MB"},
		{"max_wal_size", "1GB"},
		{"timezone", "UTC"},
		{"log_timezone", "UTC"},
		{"lc_messages", "C"},
		{"log_min_messages", "warning"},
		{"log_line_prefix", "%m [%p] "},
	}
}

// StartPostgres creates a database cluster in dir (created when missing;
// it should be empty) with initdb and starts it with pg_ctl on a free port
// of 127.0.0.1, with Unix sockets in dir too when its path is short enough
// for one (else none). It creates the database "bookd", whose URL is URL().
//
// When the process runs as root, initdb and pg_ctl run as the system user
// "postgres" (created with useradd when missing), dir is given to that user,
// and its parents must let that user through: StartPostgres adds the search
// bit for others to those below os.TempDir() that lack it (t.TempDir()'s
// parents do) and fails for others.
//
// Stop the server with Stop, which also removes dir. A server whose process
// died without Stop (a test binary killed by its -timeout) keeps running;
// PostgresT reaps the servers it started in such processes.
func StartPostgres(dir string, opts ...PostgresOption) (*Postgres, error) {
	var cfg postgresConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin, err := postgresBinDir(cfg.binDir)
	if err != nil {
		return nil, err
	}
	as, err := postgresUser()
	if err != nil {
		return nil, fmt.Errorf("testserver: start postgres: %w", err)
	}
	abs, err := prepareDir(dir, as)
	if err != nil {
		return nil, fmt.Errorf("testserver: start postgres in %s: %w", dir, err)
	}
	p := &Postgres{dir: abs, bin: bin, as: as}
	if err := p.start(cfg); err != nil {
		if _, statErr := os.Stat(filepath.Join(p.dataDir(), "postmaster.pid")); statErr == nil {
			_, _ = p.run("pg_ctl", "stop", "-D", p.dataDir(), "-m", "immediate", "-w", "-s")
		}
		_ = os.RemoveAll(abs)
		return nil, fmt.Errorf("testserver: start postgres in %s: %w", abs, err)
	}
	if _, err := p.NewDatabase(postgresDatabase); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }
func (p *Postgres) logFile() string { return filepath.Join(p.dir, "postgres.log") }

// start runs initdb, writes the settings and starts the server, retrying
// with another port when the one picked was taken in between.
func (p *Postgres) start(cfg postgresConfig) error {
	if out, err := p.run("initdb", "-D", p.dataDir(), "-U", postgresRole, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	socketDir := filepath.Join(p.dir, "sock")
	// A Unix socket's path (dir/.s.PGSQL.NNNNN) must fit in 107 bytes.
	if len(socketDir)+len("/.s.PGSQL.65535") > 100 {
		socketDir = ""
	} else if err := os.Mkdir(socketDir, 0o700); err != nil {
		return err
	} else if p.as != nil {
		if err := os.Chown(socketDir, p.as.uid, p.as.gid); err != nil {
			return err
		}
	}
	conf := []string{"", "# testserver"}
	for _, s := range append(defaultSettings(socketDir), cfg.settings...) {
		conf = append(conf, fmt.Sprintf("%s = '%s'", s[0], strings.ReplaceAll(s[1], "'", "''")))
	}
	if err := appendFile(filepath.Join(p.dataDir(), "postgresql.conf"), strings.Join(conf, "\n")+"\n"); err != nil {
		return err
	}

	var err error
	for range startAttempts {
		if p.port, err = FreePort(); err != nil {
			return err
		}
		if err := appendFile(filepath.Join(p.dataDir(), "postgresql.conf"), fmt.Sprintf("port = %d\n", p.port)); err != nil {
			return err
		}
		var out string
		out, err = p.run("pg_ctl", "start", "-D", p.dataDir(), "-l", p.logFile(), "-w", "-t", "60", "-s")
		if err == nil {
			return nil
		}
		log := tail(p.logFile(), 2048)
		err = fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
		if !strings.Contains(log, "could not bind") && !strings.Contains(log, "already in use") {
			return err
		}
	}
	return err
}

// run runs one of the server binaries as the server's user and returns its
// output.
func (p *Postgres) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = procAttr(p.as, false)
	// pg_ctl start gives the server the log file for its output, so no
	// pipe of ours outlives pg_ctl.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// URL returns the URL of the database "bookd", for the superuser postgres
// (no password).
func (p *Postgres) URL() string { return p.DatabaseURL(postgresDatabase) }

// DatabaseURL returns the URL of the database name on this server, which
// need not exist.
func (p *Postgres) DatabaseURL(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(postgresRole),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the server's TCP port on 127.0.0.1.
func (p *Postgres) Port() int { return p.port }

// Dir returns the server's folder (absolute); Stop removes it.
func (p *Postgres) Dir() string { return p.dir }

// BinDir returns the folder of the server binaries it runs (psql and
// pgbench are there too).
func (p *Postgres) BinDir() string { return p.bin }

// NewDatabase creates the database name (any name PostgreSQL allows: it is
// quoted) and returns its URL. It fails when the name is taken. It copies
// the template's files (STRATEGY file_copy, from PostgreSQL 15 on), which is
// about three times faster than writing them through the WAL for a small
// database.
func (p *Postgres) NewDatabase(name string) (string, error) {
	err := p.admin(func(ctx context.Context, conn *pgx.Conn) error {
		var version int
		if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
			return err
		}
		sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
		if version >= 150000 {
			sql += " STRATEGY file_copy"
		}
		_, err := conn.Exec(ctx, sql)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("testserver: create database %q: %w", name, err)
	}
	return p.DatabaseURL(name), nil
}

// DropDatabase drops the database name, closing the connections to it
// first; a database that does not exist is no error.
func (p *Postgres) DropDatabase(name string) error {
	err := p.admin(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	})
	if err != nil {
		return fmt.Errorf("testserver: drop database %q: %w", name, err)
	}
	return nil
}

// admin runs fn on a connection to the database postgres.
func (p *Postgres) admin(fn func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DatabaseURL("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	return fn(ctx, conn)
}

// Stop stops the server (pg_ctl stop -m fast, then -m immediate should that
// fail) and removes its folder. Later calls return the first one's result.
func (p *Postgres) Stop() error {
	p.stopOnce.Do(func() {
		var errs []error
		if out, err := p.run("pg_ctl", "stop", "-D", p.dataDir(), "-m", "fast", "-w", "-t", "60", "-s"); err != nil {
			errs = append(errs, fmt.Errorf("pg_ctl stop: %w: %s", err, out))
			if out, err := p.run("pg_ctl", "stop", "-D", p.dataDir(), "-m", "immediate", "-w", "-t", "60", "-s"); err != nil {
				errs = append(errs, fmt.Errorf("pg_ctl stop -m immediate: %w: %s", err, out))
			}
		}
		if err := os.RemoveAll(p.dir); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			p.stopErr = fmt.Errorf("testserver: stop postgres in %s: %w", p.dir, err)
		}
	})
	return p.stopErr
}

// postgresBins is where Debian's postgresql packages put the server
// binaries, one folder per major version.
const postgresBins = "/usr/lib/postgresql/*/bin"

// postgresBinDir returns the folder of the server binaries: override when
// set, else the newest version's under /usr/lib/postgresql, else the folder
// of pg_ctl on PATH.
func postgresBinDir(override string) (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if override != "" {
		if !has(override) {
			return "", fmt.Errorf("testserver: no initdb, pg_ctl and postgres in %s: %w", override, ErrNotInstalled)
		}
		return override, nil
	}
	dirs, _ := filepath.Glob(postgresBins)
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return !has(d) })
	if len(dirs) > 0 {
		return slices.MaxFunc(dirs, func(a, b string) int {
			return compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
		}), nil
	}
	if pgctl, err := exec.LookPath("pg_ctl"); err == nil && has(filepath.Dir(pgctl)) {
		return filepath.Dir(pgctl), nil
	}
	return "", fmt.Errorf("testserver: PostgreSQL's initdb and pg_ctl are neither in %s nor on PATH; install the Debian package postgresql (persistence/testserver/ensure-deps.sh does): %w",
		postgresBins, ErrNotInstalled)
}

// compareVersions compares versions like "9.6" and "15" number by number.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return cmp.Compare(a, b)
}

// appendFile appends s to the file at path.
func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
