package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bookd/bookd/persistence/testserver"
)

// mode is one way of deciding the sale.
type mode struct {
	Key  string // "a", "b" or "c", as --modes names it
	Name string // for the table
}

// The modes, in the order each client count runs them.
var modes = []mode{
	{"a", "group commit"},
	{"b", "single commits"},
	{"c", "row lock"},
}

func modeByKey(key string) (mode, bool) {
	for _, md := range modes {
		if md.Key == key {
			return md, true
		}
	}
	return mode{}, false
}

// maxCapacity is the largest capacity bookd's admin API takes.
const maxCapacity = 1_000_000

// Result is one run: one mode at one client count in one round.
type Result struct {
	Mode    string // key of the mode
	Clients int
	Round   int // 1-based

	Attempts  int64
	Decisions int64 // accepted + rejected: answered decisions
	// DecisionsPerSecond is Decisions over the sale's duration.
	DecisionsPerSecond float64
	P50, P99           float64 // latency of the holds, ms
	Errors             int64
	Stopped            string // what ended the sale: "requests", "duration", "interrupted"
	CheckOK            bool
	Problem            string // why the check failed
	RowLockPool        int    // connections of mode c's pool; 0 for bookd
	// ServerCPU and PostgresCPU are the CPU time, in µs per decision, that
	// the mode's HTTP server (bookd, or benchflash's row-lock server) and
	// the PostgreSQL server used during the run; 0 when unknown. Unlike
	// decisions/s they do not depend on what else shares the machine.
	ServerCPU, PostgresCPU float64
	// LoadgenCPU is the CPU time of the whole loadgen process (its setup and
	// check too) in µs per decision; 0 when unknown.
	LoadgenCPU float64
}

// bench is Run after the flags: set up, run every (clients, round, mode),
// print the table, tear down.
func (m *Main) bench(ctx context.Context) (err error) {
	work, err := os.MkdirTemp("", "benchflash-")
	if err != nil {
		return err
	}
	var logs []string // files to print when something fails
	defer func() {
		if err != nil || !allChecksOK(m.Results) {
			for _, path := range logs {
				printTail(m.Stderr, path, 32<<10)
			}
		}
		if rmErr := os.RemoveAll(work); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
	}()

	selected := make([]mode, 0, len(m.Modes))
	for _, md := range modes {
		for _, k := range m.Modes {
			if k == md.Key {
				selected = append(selected, md)
			}
		}
	}

	bin := m.Bookd
	if bin == "" {
		fmt.Fprintln(m.Stderr, "building bookd …")
		bin = filepath.Join(work, "bookd")
		if err := buildBookd(ctx, bin); err != nil {
			return err
		}
	}

	fmt.Fprintln(m.Stderr, "starting PostgreSQL …")
	pg, err := testserver.StartPostgres(filepath.Join(work, "postgres"),
		testserver.WithSetting("max_connections", fmt.Sprint(m.MaxConnections)))
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := pg.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	env, err := describeServer(ctx, pg.URL())
	if err != nil {
		return err
	}
	m.postmaster = postmasterPID(pg.Dir())

	systems := map[string]*system{}
	defer func() {
		for _, sys := range systems {
			if sys.node == nil {
				continue
			}
			if stopErr := sys.node.Stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
	}()
	for _, md := range selected {
		sys := &system{mode: md}
		systems[md.Key] = sys
		if sys.dbURL, err = pg.NewDatabase("flash_" + md.Key); err != nil {
			return err
		}
		if md.Key == "c" {
			if err := createInventory(ctx, sys.dbURL); err != nil {
				return err
			}
			continue
		}
		batchMax := m.BatchMax
		if md.Key == "b" {
			batchMax = 1
		}
		fmt.Fprintf(m.Stderr, "starting bookd %s (--batch-max %d) …\n", md.Name, batchMax)
		n, err := startBookd(ctx, bin, filepath.Join(work, "bookd-"+md.Key), sys.dbURL, batchMax, m.ServeFlags)
		if n != nil {
			sys.node = n
			logs = append(logs, n.LogPath())
		}
		if err != nil {
			return fmt.Errorf("bookd %s: %w", md.Name, err)
		}
		if err := n.newListing(ctx); err != nil {
			return fmt.Errorf("bookd %s: %w", md.Name, err)
		}
	}

	m.writeSetup(env, bin)
	lg := &loadgenRunner{Bin: bin, Requests: m.Requests, Duration: m.Duration, Timeout: m.Timeout, Procs: m.LoadgenProcs, Tokens: map[string]string{}}
	for _, sys := range systems {
		if sys.node != nil {
			lg.Tokens[sys.node.URL()] = sys.node.customerToken
		}
	}
	if m.Verbose {
		lg.Progress = m.Stderr
	}
	for _, clients := range m.Clients {
		for round := 1; round <= m.Rounds; round++ {
			for _, md := range selected {
				if err := ctx.Err(); err != nil {
					m.writeTable()
					return fmt.Errorf("interrupted: %w", err)
				}
				logPath := filepath.Join(work, fmt.Sprintf("loadgen-%s-c%d-r%d.log", md.Key, clients, round))
				res, err := m.runOnce(ctx, pg.URL(), systems[md.Key], clients, round, lg, logPath)
				if err != nil {
					logs = append(logs, logPath)
					m.writeTable()
					return fmt.Errorf("%s at %d clients: %w", md.Name, clients, err)
				}
				if !res.CheckOK || res.Errors > 0 {
					logs = append(logs, logPath)
				}
				m.Results = append(m.Results, res)
				fmt.Fprintf(m.Stderr, "%-14s %5d clients, round %d: %8.0f decisions/s, p50 %7.2f ms, p99 %7.2f ms, %d errors, check %s\n",
					md.Name, clients, round, res.DecisionsPerSecond, res.P50, res.P99, res.Errors, checkWord(res.CheckOK))
			}
		}
		if a := systems["a"]; m.Ceiling && a != nil && ctx.Err() == nil {
			logPath := filepath.Join(work, fmt.Sprintf("loadgen-ceiling-c%d.log", clients))
			c, err := m.ceiling(ctx, a.node, clients, lg, logPath)
			if err != nil {
				logs = append(logs, logPath)
				m.writeTable()
				return fmt.Errorf("ceiling at %d clients: %w", clients, err)
			}
			m.Ceilings = append(m.Ceilings, c)
			fmt.Fprintf(m.Stderr, "%-14s %5d clients:          %8.0f requests/s,                  p99 %7.2f ms, %d errors\n",
				"GET /livez", clients, c.RequestsPerSecond, c.P99, c.Errors)
		}
	}
	m.writeTable()
	if !allChecksOK(m.Results) {
		return errors.New("a loadgen check failed")
	}
	return nil
}

// system is what a mode runs on: its database, and for bookd its node.
type system struct {
	mode  mode
	dbURL string
	node  *bookdNode // nil for the row lock, whose server lives one run
}

// runOnce makes one run: a fresh resource on the mode's system, then a
// VACUUM of the mode's database and a CHECKPOINT, so that neither
// autovacuum nor the previous run's dirty pages land in the run, then
// loadgen.
func (m *Main) runOnce(ctx context.Context, adminURL string, sys *system, clients, round int,
	lg *loadgenRunner, logPath string) (Result, error) {
	id := fmt.Sprintf("flash-c%d-r%d", clients, round)
	res := Result{Mode: sys.mode.Key, Clients: clients, Round: round}
	var target string
	switch sys.node {
	case nil:
		res.RowLockPool = m.rowLockPoolSize(clients)
		srv, err := startRowLock(ctx, sys.dbURL, res.RowLockPool, filepath.Join(filepath.Dir(logPath), "rowlock.log"))
		if err != nil {
			return res, err
		}
		defer func() { _ = srv.Stop() }() // a failed stop shows in the next run
		if err := srv.newResource(ctx, id, m.Requests); err != nil {
			return res, err
		}
		target = srv.URL()
	default:
		if err := sys.node.newResource(ctx, id, m.Requests); err != nil {
			return res, err
		}
		target = sys.node.URL()
	}
	if err := settle(ctx, sys.dbURL, adminURL); err != nil {
		return res, err
	}
	serverCPU := selfCPU // the row-lock server runs in this process
	if sys.node != nil {
		serverCPU = func() (time.Duration, error) { return processCPU(sys.node.PID()) }
	}
	postgresCPU := func() (time.Duration, error) { return treeCPU(m.postmaster) }
	server0, err0 := serverCPU()
	postgres0, err1 := postgresCPU()
	sum, err := lg.run(ctx, target, id, clients, logPath)
	if err != nil {
		return res, err
	}
	server1, err2 := serverCPU()
	postgres1, err3 := postgresCPU()
	res.Attempts = sum.Attempts
	res.Decisions = sum.Accepted + sum.Rejected
	if sum.Seconds > 0 {
		res.DecisionsPerSecond = float64(res.Decisions) / sum.Seconds
	}
	res.P50, res.P99 = sum.Latency.P50, sum.Latency.P99
	res.Errors, res.Stopped = sum.Errors, sum.Stopped
	res.CheckOK, res.Problem = sum.Check.OK, sum.checkProblems()
	if res.Decisions > 0 {
		if errors.Join(err0, err1, err2, err3) == nil {
			res.ServerCPU = perUnit(server1-server0, res.Decisions)
			res.PostgresCPU = perUnit(postgres1-postgres0, res.Decisions)
		}
		res.LoadgenCPU = perUnit(sum.CPU, res.Decisions)
	}
	return res, nil
}

// perUnit is d in µs per one of n units (n > 0).
func perUnit(d time.Duration, n int64) float64 {
	return float64(d.Microseconds()) / float64(n)
}

// Ceiling is GET /livez on mode a's node at one client count.
type Ceiling struct {
	Clients           int
	RequestsPerSecond float64
	P99               float64 // ms
	Errors            int64
	// ServerCPU and LoadgenCPU are bookd's and loadgen's CPU time in µs per
	// request; 0 when unknown. bookd's is the HTTP stack's floor per request.
	ServerCPU, LoadgenCPU float64
}

// ceiling measures GET /livez on node with clients clients, as many times
// as a run's requests (loadgen makes one hold too, on a resource of its
// own).
func (m *Main) ceiling(ctx context.Context, node *bookdNode, clients int, lg *loadgenRunner, logPath string) (Ceiling, error) {
	id := fmt.Sprintf("flash-ceiling-c%d", clients)
	if err := node.newResource(ctx, id, 1); err != nil {
		return Ceiling{}, err
	}
	server0, err0 := processCPU(node.PID())
	sum, err := lg.ceiling(ctx, node.URL(), id, clients, logPath)
	if err != nil {
		return Ceiling{}, err
	}
	server1, err1 := processCPU(node.PID())
	c := sum.Ceiling
	out := Ceiling{Clients: clients, RequestsPerSecond: c.RequestsPerSecond, P99: c.Latency.P99, Errors: c.Errors}
	if n := c.Requests; n > 0 {
		if errors.Join(err0, err1) == nil {
			out.ServerCPU = perUnit(server1-server0, n)
		}
		out.LoadgenCPU = perUnit(sum.CPU, n)
	}
	return out, nil
}

// rowLockPoolSize is how many connections mode c's pool gets at clients
// clients: --rowlock-pool when set, else one per client but at most
// rowLockPoolMax, pgxpool's default size, and never more than the server
// has left.
func (m *Main) rowLockPoolSize(clients int) int {
	if m.RowLockPool > 0 {
		return m.RowLockPool
	}
	return min(clients, rowLockPoolMax, m.MaxConnections-rowLockHeadroom)
}

// buildBookd builds ./cmd/bookd into bin, without the race detector and
// with symbols (for perf).
func buildBookd(ctx context.Context, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/bookd/bookd/cmd/bookd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/bookd: %w\n%s", err, out)
	}
	return nil
}

// postmasterPID reads the PostgreSQL server's PID from the first line of
// postmaster.pid in its data folder under dir; 0 when it cannot.
func postmasterPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// serverInfo is what the table's header says about the setup.
type serverInfo struct {
	Version, Fsync, SynchronousCommit, MaxConnections string
}

func describeServer(ctx context.Context, url string) (serverInfo, error) {
	var si serverInfo
	err := withConn(ctx, url, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
			current_setting('synchronous_commit'), current_setting('max_connections')`).
			Scan(&si.Version, &si.Fsync, &si.SynchronousCommit, &si.MaxConnections)
	})
	if err != nil {
		return si, fmt.Errorf("describe postgres: %w", err)
	}
	return si, nil
}

// settle vacuums the database at dbURL and checkpoints the server (as the
// superuser at adminURL).
func settle(ctx context.Context, dbURL, adminURL string) error {
	err := withConn(ctx, dbURL, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "VACUUM")
		return err
	})
	if err == nil {
		err = withConn(ctx, adminURL, func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "CHECKPOINT")
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("settle the server before a run: %w", err)
	}
	return nil
}

// withConn runs fn on a fresh connection to url, within a minute.
func withConn(ctx context.Context, url string, fn func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return fn(ctx, conn)
}

// printTail prints the last n bytes of the file at path, headed by its name.
func printTail(w io.Writer, path string, n int64) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return
	}
	off := max(0, st.Size()-n)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return
	}
	fmt.Fprintf(w, "==== %s (last %d bytes) ====\n%s\n", filepath.Base(path), len(b), b)
}

func allChecksOK(rs []Result) bool {
	for _, r := range rs {
		if !r.CheckOK {
			return false
		}
	}
	return true
}

func checkWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

// machine is what the table's header says about the machine: its CPUs
// and, where /proc has it, its load average — the benchmark shares the
// CPUs with whatever else runs.
func machine() string {
	s := fmt.Sprintf("%d CPUs, GOMAXPROCS %d", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			s += fmt.Sprintf(", load average %s %s %s", f[0], f[1], f[2])
		}
	}
	return s
}
