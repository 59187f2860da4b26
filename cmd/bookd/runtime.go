package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"
)

// defaultGCPercent is bookd's GOGC unless $GOGC or --gc-percent says
// otherwise. Go's default, 100, collects each time the heap doubles; a node
// in a sale allocates a few KiB per request over a small live heap, so it
// collected many times a second and spent about a tenth of its CPU marking
// (make bench-flash, perf). At 400 the heap may grow to five times what is
// live before a collection: a node whose resources keep 100 MiB live peaks
// near 500 MiB, and the sale's CPU goes to the sale.
const defaultGCPercent = 400

// tuneGC applies --gc-percent; when neither the flag nor its environment
// twin was given, a non-empty $GOGC (read by the Go runtime itself) wins
// over the default. In a container with a memory limit, set GOMEMLIMIT
// too, so that the collector runs sooner near the limit.
func (s *Serve) tuneGC(fs *flag.FlagSet, log *slog.Logger) {
	given := false // on the command line or by its environment twin
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "gc-percent" })
	if os.Getenv("GOGC") != "" && !given {
		return
	}
	if old := debug.SetGCPercent(s.GCPercent); old != s.GCPercent {
		log.Debug("garbage collector tuned", "gc_percent", s.GCPercent, "was", old)
	}
}

// serveDebug serves Go's profiler on addr (--debug-addr), on a mux of its
// own (net/http/pprof also registers on http.DefaultServeMux, which nothing
// in bookd serves), and returns the
// address it listens on and a function that stops it. The profiler has no
// authentication: it belongs on loopback or a private operations network,
// never on the API's address.
func serveDebug(addr string, log *slog.Logger) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("profiler serving", "debug", ln.Addr().String())
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		log.Warn("the profiler listens beyond loopback and has no authentication", "debug", ln.Addr().String())
	}
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
