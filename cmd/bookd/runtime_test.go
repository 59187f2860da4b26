package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

// TestGCPercent: bookd serve sets GOGC to --gc-percent, 400 by default;
// a non-empty $GOGC wins over the default but not over the flag or its
// environment twin.
func TestGCPercent(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })
	log := slog.New(slog.DiscardHandler)
	tune := func(args ...string) int {
		t.Helper()
		s := &Serve{Stderr: io.Discard}
		fs := s.flags()
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := envTwins(fs); err != nil { // as Run does
			t.Fatal(err)
		}
		debug.SetGCPercent(100)
		s.tuneGC(fs, log)
		return debug.SetGCPercent(100)
	}
	if got := tune(); got != defaultGCPercent {
		t.Errorf("no flag, no $GOGC: GOGC %d, want %d", got, defaultGCPercent)
	}
	if got := tune("--gc-percent", "250"); got != 250 {
		t.Errorf("--gc-percent 250: GOGC %d, want 250", got)
	}
	t.Setenv("GOGC", "150")
	if got := tune(); got != 100 {
		t.Errorf("$GOGC set, no flag: serve changed GOGC to %d, want it left to $GOGC", got)
	}
	if got := tune("--gc-percent", "300"); got != 300 {
		t.Errorf("$GOGC set and --gc-percent 300: GOGC %d, want 300", got)
	}
	t.Setenv(envName("gc-percent"), "250")
	if got := tune(); got != 250 {
		t.Errorf("$GOGC set and %s=250: GOGC %d, want 250", envName("gc-percent"), got)
	}
	t.Setenv(envName("gc-percent"), "")
	os.Unsetenv(envName("gc-percent"))
	t.Setenv("GOGC", "")
	if got := tune(); got != defaultGCPercent {
		t.Errorf("$GOGC empty: GOGC %d, want the default %d", got, defaultGCPercent)
	}
}

// TestDebugAddr: --debug-addr serves Go's profiler, and stops.
func TestDebugAddr(t *testing.T) {
	addr, stop, err := serveDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("GET /debug/pprof/ = %d %.200s, want 200 and the profile index", res.StatusCode, body)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Errorf("the profiler still answers after stop")
	}
	if _, _, err := serveDebug("127.0.0.1:-1", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--debug-addr") {
		t.Errorf("a bad --debug-addr = %v, want an error naming the flag", err)
	}
}
