package testserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// query runs one query that returns one text value on the database at url.
func query(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("Connect(%s) = %v", url, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s = %v", sql, err)
	}
	return s
}

func TestPostgres(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	p, err := StartPostgres(dir, WithSetting("work_mem", "8MB"))
	if err != nil {
		t.Fatalf("StartPostgres(%q) = %v", dir, err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = p.Stop()
		}
	})

	tests := []struct{ setting, want string }{
		{"fsync", "on"},
		{"synchronous_commit", "on"},
		{"full_page_writes", "on"},
		{"listen_addresses", "127.0.0.1"},
		{"max_connections", "300"},
		{"TimeZone", "UTC"},
		{"work_mem", "8MB"},
		{"lc_collate", "C"},
		{"server_encoding", "UTF8"},
	}
	for _, tt := range tests {
		if got := query(t, p.URL(), "SHOW "+tt.setting); got != tt.want {
			t.Errorf("SHOW %s = %q, want %q", tt.setting, got, tt.want)
		}
	}
	if got := query(t, p.URL(), "SELECT current_database()"); got != "bookd" {
		t.Errorf("URL() connects to %q, want bookd", got)
	}

	other, err := p.NewDatabase("Other db")
	if err != nil {
		t.Fatalf("NewDatabase = %v", err)
	}
	if got := query(t, other, "SELECT current_database()"); got != "Other db" {
		t.Errorf("NewDatabase URL connects to %q, want %q", got, "Other db")
	}
	if _, err := p.NewDatabase("Other db"); err == nil {
		t.Errorf("NewDatabase(taken) = nil error, want an error")
	}
	if err := p.DropDatabase("Other db"); err != nil {
		t.Errorf("DropDatabase = %v", err)
	}
	if err := p.DropDatabase("Other db"); err != nil {
		t.Errorf("DropDatabase(missing) = %v, want nil", err)
	}

	stopped = true
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop() = %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(%q) after Stop = %v, want it removed", dir, err)
	}
	if _, err := pgx.Connect(t.Context(), p.URL()); err == nil {
		t.Errorf("Connect after Stop = nil error, want an error")
	}
}

func TestPostgresOwner(t *testing.T) {
	p := PostgresT(t)
	got := query(t, p.URL(), "SELECT current_setting('data_directory')")
	if !strings.HasPrefix(got, p.Dir()) {
		t.Errorf("data_directory = %q, want under %q", got, p.Dir())
	}
	st, err := os.Stat(filepath.Join(p.Dir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no owner to check on this system")
	}
	want := os.Geteuid()
	if want == 0 {
		u, err := lookupUser(postgresSystemUser)
		if err != nil {
			t.Fatalf("lookupUser(%q) = %v", postgresSystemUser, err)
		}
		want = u.uid
	}
	if int(sys.Uid) != want {
		t.Errorf("data folder owned by uid %d, want %d (the server's user)", sys.Uid, want)
	}
}

func TestDatabaseT(t *testing.T) {
	a, b := DatabaseT(t), DatabaseT(t)
	if a == b {
		t.Fatalf("DatabaseT twice = %q both times, want two databases", a)
	}
	for _, u := range []string{a, b} {
		query(t, u, "SELECT 'ok'")
	}
}

func TestDatabaseName(t *testing.T) {
	long := strings.Repeat("TestSomething/sub_test#01", 10)
	for _, name := range []string{"TestX", "TestX/a b", long} {
		got := databaseName(name)
		if len(got) > 63 || strings.ContainsFunc(got, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
		}) {
			t.Errorf("databaseName(%q) = %q, want at most 63 of [a-z0-9_]", name, got)
		}
	}
	if databaseName("T") == databaseName("T") {
		t.Errorf("databaseName gives the same name twice")
	}
}

func TestRedis(t *testing.T) {
	r := RedisT(t)
	if err := ping(r.Addr()); err != nil {
		t.Fatalf("PING %s = %v", r.Addr(), err)
	}
	if !strings.HasPrefix(r.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL() = %q", r.URL())
	}
	dir := r.Dir()
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if err := ping(r.Addr()); err == nil {
		t.Errorf("PING after Stop = nil, want an error")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(%q) after Stop = %v, want it removed", dir, err)
	}
}

func TestMissingBinaries(t *testing.T) {
	if _, err := StartPostgres(t.TempDir(), WithBinDir(t.TempDir())); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("StartPostgres(empty bin dir) = %v, want ErrNotInstalled", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := StartRedis(t.TempDir()); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "redis-server") {
		t.Errorf("StartRedis without redis-server = %v, want ErrNotInstalled naming redis-server", err)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"15", "9.6", 1},
		{"9.6", "10", -1},
		{"16", "16", 0},
		{"17", "15", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
