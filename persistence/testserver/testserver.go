// Package testserver starts throwaway PostgreSQL and Redis servers for tests
// and benchmarks: real servers, on free loopback ports, in temporary folders,
// never mocks of them (DESIGN.md, "Persistence").
//
// StartPostgres and StartRedis start one server in a folder the caller names
// and return a handle whose Stop stops the server and removes the folder.
// Tests use the helpers, which fail the test (never skip it) when a server
// cannot be had:
//
//   - PostgresT shares one PostgreSQL server between the tests of a test
//     binary (starting one costs a second or two); DatabaseT gives a test a
//     fresh database of its own on that server and drops it afterwards.
//   - RedisT starts a Redis server of the test's own (it starts in a tenth
//     of a second, and a test then has every key to itself).
//
// The shared PostgreSQL server is reference counted: it stops when the last
// test using it ends, and a later test starts a new one. A package whose
// tests use it again and again keeps one server for the whole binary with
//
//	func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }
//
// A test binary that dies without stopping its shared server (go test's
// -timeout kills it) leaves the server running; the next PostgresT on the
// machine stops and removes it. It tells such servers by a lock file that
// the kernel unlocks when their process dies.
//
// The servers need their binaries: PostgreSQL's server binaries from the
// Debian package postgresql (under /usr/lib/postgresql/<version>/bin; the
// newest version is used, and initdb and pg_ctl on PATH are used when that
// folder does not exist), and redis-server from the Debian package
// redis-server. The script ensure-deps.sh beside this file installs both
// when missing; `make test` runs it. When a binary is missing, the Start
// functions return an error matching ErrNotInstalled that names the package
// to install.
//
// PostgreSQL refuses to run as root. When the process runs as root (as CI
// does), every PostgreSQL command runs as the system user "postgres"
// (created with useradd when missing), which owns the server's folder.
package testserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// ErrNotInstalled is what the Start functions return, wrapped with the name
// of the package to install, when a server's binaries are missing.
var ErrNotInstalled = errors.New("server binaries not installed")

// Main runs the tests of m with one PostgreSQL server for the whole binary:
// the first PostgresT or DatabaseT starts it, and it stops only after the
// last test, when Main stops it. It returns the exit code for os.Exit: m's,
// or 1 when the tests passed but stopping the server failed.
func Main(m *testing.M) int {
	sharedPostgres.pin()
	code := m.Run()
	if err := sharedPostgres.unpin(); err != nil {
		fmt.Fprintf(os.Stderr, "testserver: stopping the shared PostgreSQL server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// server that takes it may still lose it to another process; the Start
// functions then retry with another port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startAttempts is how often a Start function tries a new port when the
// one it picked was taken in between.
const startAttempts = 5

// tail returns the last n bytes of the file at path, for error messages; ""
// when it cannot be read.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-n)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// serverEnv is the environment of a server process: ours without libpq's
// PG* variables (they would redirect initdb and pg_ctl) and with the C
// locale, so that messages are in English.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}
