// Command benchflash is `make bench-flash`: a flash sale on one hot resource,
// decided three ways in one run, on one machine, against one PostgreSQL
// server, with the same load generator:
//
//	a  bookd with group commit (bookd serve --postgres … --batch-max 512)
//	b  bookd committing each decision alone (--batch-max 1, its own database)
//	c  the classic row lock: a minimal server on bookd's HTTP stack
//	   (edge/h1 with a net/http ServeMux) and a pgxpool, whose
//	   POST /v1/holds runs UPDATE inventory SET remaining = remaining - $1
//	   WHERE id = $2 AND remaining >= $1, one transaction per request
//
// at each client count of --clients. Every run books a fresh single-slot
// resource whose capacity is at least the run's requests, so every decision
// is a write. The modes run interleaved per client count (a, b, c at 1
// client, round after round, then at 64, …) so that drift of the machine
// hits them alike.
//
// It starts a throwaway PostgreSQL server (persistence/testserver), builds
// bookd once, runs `bookd loadgen --json` for each (mode, clients, round),
// prints a table with the medians over --rounds and the ratios a/c and a/b,
// and stops every server it started, also on errors and on Ctrl-C. It exits
// non-zero when a loadgen check failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchflash:", err)
		}
		os.Exit(1)
	}
}

// Main is the whole benchmark. Run fills Results.
type Main struct {
	Stdout, Stderr io.Writer // the table; progress, and logs on failure

	Clients []int // client counts, run in this order; default 1, 64, 256, 1024
	// Requests is the most hold attempts of a run, and the capacity of its
	// resource; default 100,000: enough for several seconds of sale at
	// every client count (group commit decides 15–23k/s at 256 clients
	// here), so that a run is not its first second, which is slower
	// (connections, stacks and heaps still growing).
	Requests int
	// Duration caps one run's sale; default 10 s. It ends the runs of b and
	// c, which decide a few thousand a second, and of a at one client:
	// tens of thousands of decisions each, enough for a steady rate.
	Duration time.Duration
	Timeout  time.Duration // loadgen's per-request timeout; default 5 s
	// Rounds is how many runs each (mode, clients) gets; the table shows
	// their medians. Default 3: on a machine shared with loadgen and
	// PostgreSQL, one run of a CPU-bound mode moves by a tenth or more with
	// what else runs, and the median of three interleaved runs is not one
	// lucky or unlucky run.
	Rounds int
	Modes  []string // keys of the modes to run, of "a", "b", "c"; default all three
	// BatchMax is mode a's --batch-max (group commit); default 512. Mode b
	// always runs with 1.
	BatchMax int
	// MaxConnections is the PostgreSQL server's max_connections; default
	// 300. It bounds RowLockPool: the bookd nodes and benchflash's own
	// sessions keep rowLockHeadroom of it.
	MaxConnections int
	// RowLockPool fixes mode c's pool size; 0 sizes it per run (see
	// rowLockPoolSize): one connection per client, at most pgxpool's
	// default, max(4, NumCPU), which is about the row lock's best.
	RowLockPool int
	// Ceiling measures, at each client count, GET /livez on mode a's node
	// with the same clients: the most requests/s this machine's HTTP stack
	// answers while loadgen shares its CPUs. Default true.
	Ceiling bool
	Bookd   string // a bookd binary to use instead of building one
	// LoadgenProcs is loadgen's GOMAXPROCS; 0 leaves Go's default (one per
	// CPU). Default 1: loadgen shares the CPUs with the server it measures,
	// and on one P its clients cost it less CPU (no work stealing between
	// Ps), which leaves more to the server; it uses under half a CPU.
	LoadgenProcs int
	// ServeFlags are extra flags of every `bookd serve` (modes a and b),
	// such as --debug-addr to profile a run.
	ServeFlags []string
	Verbose    bool // copy loadgen's progress lines to Stderr

	// Results holds every run, in the order they ran, once Run returns;
	// Ceilings the /livez ceiling at each client count, when measured.
	Results  []Result
	Ceilings []Ceiling

	postmaster int // the PostgreSQL server's PID, for its CPU time; 0: unknown
}

func (m *Main) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("benchflash", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	m.Clients = []int{1, 64, 256, 1024}
	fs.Func("clients", "comma-separated client counts (default 1,64,256,1024)", func(s string) error {
		m.Clients = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("%q is not a number", f)
			}
			m.Clients = append(m.Clients, n)
		}
		return nil
	})
	fs.IntVar(&m.Requests, "requests", 100000, "most hold attempts per run (also the hot resource's capacity, so every decision is a write)")
	fs.DurationVar(&m.Duration, "duration", 10*time.Second, "most time for one run's sale")
	fs.DurationVar(&m.Timeout, "timeout", 5*time.Second, "timeout of one request (loadgen --timeout)")
	fs.IntVar(&m.Rounds, "rounds", 3, "runs of each mode and client count; the table shows medians")
	m.Modes = []string{"a", "b", "c"}
	fs.Func("modes", "comma-separated modes to run: a (group commit), b (single commits), c (row lock) (default a,b,c)", func(s string) error {
		m.Modes = nil
		for f := range strings.SplitSeq(s, ",") {
			m.Modes = append(m.Modes, strings.TrimSpace(f))
		}
		return nil
	})
	fs.IntVar(&m.BatchMax, "batch-max", 512, "bookd --batch-max of mode a (group commit)")
	fs.IntVar(&m.MaxConnections, "max-connections", 300, "max_connections of the PostgreSQL server")
	fs.IntVar(&m.RowLockPool, "rowlock-pool", 0, "connections of the row-lock server's pool (0: one per client, at most pgxpool's default max(4, NumCPU))")
	fs.IntVar(&m.LoadgenProcs, "loadgen-procs", 1, "GOMAXPROCS of loadgen (0: one per CPU)")
	fs.BoolVar(&m.Ceiling, "ceiling", true, "measure GET /livez on bookd at each client count, the HTTP ceiling of the machine")
	fs.StringVar(&m.Bookd, "bookd", "", "bookd `binary` to run (default: go build ./cmd/bookd into a temp folder)")
	fs.Func("serve-flag", "an extra `flag` of bookd serve in modes a and b, such as --serve-flag=--debug-addr=127.0.0.1:6060 to profile (repeatable)", func(s string) error {
		if !strings.HasPrefix(s, "-") {
			return fmt.Errorf("%q is not a flag", s)
		}
		m.ServeFlags = append(m.ServeFlags, s)
		return nil
	})
	fs.BoolVar(&m.Verbose, "v", false, "show loadgen's progress lines")
	fs.Usage = func() {
		fmt.Fprintln(m.Stderr, `Usage: go run ./cmd/benchflash [flags]

A flash sale on one hot resource, decided by (a) bookd with group commit, (b) bookd
committing each decision alone and (c) a PostgreSQL row lock, at each client count,
against one throwaway PostgreSQL server. Prints decisions/s, p50 and p99 per mode
and the ratios a/c and a/b; exits non-zero when a loadgen check fails.`)
		fs.PrintDefaults()
	}
	return fs
}

// Validate reports the first field that is out of range, by its flag name.
func (m *Main) Validate() error {
	switch {
	case len(m.Clients) == 0:
		return errors.New("--clients: name at least one client count")
	case slices.ContainsFunc(m.Clients, func(n int) bool { return n < 1 }):
		return fmt.Errorf("--clients: every count must be at least 1, got %v", m.Clients)
	case m.Requests < 1 || m.Requests > maxCapacity:
		return fmt.Errorf("--requests: must be between 1 and %d (the largest capacity bookd takes), got %d", maxCapacity, m.Requests)
	case m.Duration <= 0:
		return fmt.Errorf("--duration: must be positive, got %v", m.Duration)
	case m.Timeout <= 0:
		return fmt.Errorf("--timeout: must be positive, got %v", m.Timeout)
	case m.Rounds < 1:
		return fmt.Errorf("--rounds: must be at least 1, got %d", m.Rounds)
	case m.BatchMax < 1:
		return fmt.Errorf("--batch-max: must be at least 1, got %d", m.BatchMax)
	case m.MaxConnections < rowLockHeadroom+1:
		return fmt.Errorf("--max-connections: must be more than %d, got %d", rowLockHeadroom, m.MaxConnections)
	case m.RowLockPool < 0 || m.RowLockPool > m.MaxConnections-rowLockHeadroom:
		return fmt.Errorf("--rowlock-pool: must be between 0 and %d, got %d", m.MaxConnections-rowLockHeadroom, m.RowLockPool)
	case m.LoadgenProcs < 0:
		return fmt.Errorf("--loadgen-procs: must be 0 or more, got %d", m.LoadgenProcs)
	case len(m.Modes) == 0:
		return errors.New("--modes: name at least one mode")
	}
	seen := map[string]bool{}
	for _, k := range m.Modes {
		if _, ok := modeByKey(k); !ok {
			return fmt.Errorf("--modes: unknown mode %q, want a, b or c", k)
		}
		if seen[k] {
			return fmt.Errorf("--modes: %s is named twice", k)
		}
		seen[k] = true
	}
	return nil
}

// Run parses args and runs the benchmark. It returns an error when the
// setup fails, a run cannot be made, or a loadgen check failed.
func (m *Main) Run(ctx context.Context, args []string) error {
	if m.Stdout == nil {
		m.Stdout = io.Discard
	}
	if m.Stderr == nil {
		m.Stderr = io.Discard
	}
	fs := m.flags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := m.Validate(); err != nil {
		return err
	}
	return m.bench(ctx)
}
