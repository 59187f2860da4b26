package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// loadgenRunner runs `bookd loadgen --json` for one run at a time; every
// mode gets the same flags but its target, resource and client count.
type loadgenRunner struct {
	Bin      string        // the bookd binary
	Requests int           // --requests
	Duration time.Duration // --duration
	Timeout  time.Duration // --timeout
	Procs    int           // GOMAXPROCS; 0: Go's default
	Progress io.Writer     // also gets loadgen's progress lines; nil: only the log file
	// Tokens are the access tokens loadgen places holds with, by target.
	Tokens map[string]string
}

// loadgenSummary is the part of loadgen's JSON summary (cmd/bookd
// loadgen_stats.go, loadgenSummary) that the table needs.
type loadgenSummary struct {
	Clients int `json:"clients"`
	Ceiling *struct {
		Requests          int64   `json:"requests"`
		RequestsPerSecond float64 `json:"requests_per_second"`
		Errors            int64   `json:"errors"`
		Latency           struct {
			P99 float64 `json:"p99_ms"`
		} `json:"latency"`
	} `json:"ceiling"`
	Attempts   int64            `json:"attempts"`
	Seconds    float64          `json:"seconds"`
	Stopped    string           `json:"stopped"`
	Accepted   int64            `json:"accepted"`
	Rejected   int64            `json:"rejected"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	Latency    struct {
		P50 float64 `json:"p50_ms"`
		P95 float64 `json:"p95_ms"`
		P99 float64 `json:"p99_ms"`
		Max float64 `json:"max_ms"`
	} `json:"latency"`
	Check struct {
		OK        bool `json:"ok"`
		Resources []struct {
			Resource string `json:"resource"`
			OK       bool   `json:"ok"`
			Problem  string `json:"problem"`
		} `json:"resources"`
	} `json:"check"`
	// CPU is the CPU time (user + system) the loadgen process used in all,
	// measured by benchflash.
	CPU time.Duration `json:"-"`
}

func (s *loadgenSummary) checkProblems() string {
	var p []string
	for _, r := range s.Check.Resources {
		if !r.OK {
			p = append(p, r.Resource+": "+r.Problem)
		}
	}
	return strings.Join(p, "; ")
}

// run makes a sale of clients clients on the resource id at target, with
// the /livez ceiling skipped, and returns loadgen's summary. Its progress
// lines go to logPath. A failed check is in the summary, not an error; an
// error means there is no summary. When ctx ends, loadgen is interrupted
// (SIGINT): it stops the sale, checks and prints what it has.
func (l *loadgenRunner) run(ctx context.Context, target, id string, clients int, logPath string) (*loadgenSummary, error) {
	return l.exec(ctx, target, id, clients, l.Requests, -1, logPath)
}

// ceiling measures GET /livez at target with clients clients, Requests
// times: the HTTP ceiling of the machine for that stack. Loadgen always
// makes a sale too; this one is a single hold on the resource id.
func (l *loadgenRunner) ceiling(ctx context.Context, target, id string, clients int, logPath string) (*loadgenSummary, error) {
	sum, err := l.exec(ctx, target, id, clients, 1, l.Requests, logPath)
	if err == nil && sum.Ceiling == nil {
		err = fmt.Errorf("loadgen measured no ceiling; its log: %s", logPath)
	}
	return sum, err
}

// exec runs loadgen: a ceiling of livez requests (-1: none), then a sale of
// requests holds.
func (l *loadgenRunner) exec(ctx context.Context, target, id string, clients, requests, livez int, logPath string) (*loadgenSummary, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	var stderr io.Writer = logFile
	if l.Progress != nil {
		stderr = io.MultiWriter(logFile, l.Progress)
	}
	// The sale takes at most Duration plus a request's Timeout, the reads
	// of the check a Timeout each; the rest is slack for a loaded machine.
	hard := 2*l.Duration + 4*l.Timeout + 30*time.Second
	runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hard)
	defer cancel()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(runCtx, l.Bin, "loadgen", "--json",
		"--target", target,
		"--resources", id,
		"--clients", fmt.Sprint(clients),
		"--requests", fmt.Sprint(requests),
		"--duration", l.Duration.String(),
		"--timeout", l.Timeout.String(),
		"--livez-requests", fmt.Sprint(livez))
	if tok := l.Tokens[target]; tok != "" {
		cmd.Args = append(cmd.Args, "--token", tok)
	}
	cmd.Env = withoutBookdEnv(os.Environ())
	if l.Procs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(l.Procs)) // the last one wins
	}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	// Interrupt loadgen when ctx ends; runCtx's end kills it.
	stopInterrupt := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(os.Interrupt) })
	defer stopInterrupt()
	waitErr := cmd.Wait()

	var sum loadgenSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Stopped == "" {
		return nil, fmt.Errorf("loadgen printed no summary (%v): %w; its log: %s",
			waitErr, errors.Join(err, runCtx.Err()), logPath)
	}
	if ps := cmd.ProcessState; ps != nil {
		sum.CPU = ps.UserTime() + ps.SystemTime()
	}
	// Exit status 2 with a summary is a failed check, which the summary says.
	return &sum, nil
}
