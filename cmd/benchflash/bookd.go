package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bookd/bookd/persistence/testserver"
)

// bookdNode is a `bookd serve --postgres` process of modes a and b, on a
// loopback port, logging to a file. It lives for the whole benchmark; each
// run books a fresh resource on it.
type bookdNode struct {
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:port
	logPath string
	client  *http.Client // for the admin API
	// adminToken signs the admin API requests; customerToken is the
	// access token loadgen places its holds with.
	adminToken, customerToken string
	exited                    chan struct{}
	waitErr                   error // Wait's result, once exited is closed

	stopOnce sync.Once
	stopErr  error
}

const (
	// bookdStartTimeout bounds a node's start, migrations included.
	bookdStartTimeout = time.Minute
	// bookdShutdownTimeout is the node's --shutdown-timeout; Stop kills it
	// when it takes 10 s longer.
	bookdShutdownTimeout = 20 * time.Second
)

// startBookd starts bin serve on the database dbURL with --batch-max
// batchMax and the extra flags, in dir (created; its log is dir/bookd.log), and waits until
// /readyz answers 200. On an error after the process started it returns the
// node too, for its log; Stop it.
func startBookd(ctx context.Context, bin, dir, dbURL string, batchMax int, extra []string) (*bookdNode, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := testserver.FreePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "bookd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child has its own copy
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	// The first admin, as in production: `bookd admin create`.
	admin := exec.CommandContext(ctx, bin, "admin", "create", "--email", benchAdmin, "--postgres", dbURL)
	admin.Env = withoutBookdEnv(os.Environ())
	admin.Stdin = strings.NewReader(benchPassword + "\n")
	if out, err := admin.CombinedOutput(); err != nil && !bytes.Contains(out, []byte("exists already")) {
		return nil, fmt.Errorf("bookd admin create: %w: %s", err, out)
	}
	args := []string{"serve",
		"--postgres", dbURL,
		"--demo=false",
		"--batch-max", fmt.Sprint(batchMax),
		"--http", addr,
		"--data", filepath.Join(dir, "data"),
		"--actor-host", "127.0.0.1",
		"--log-format", "json",
		"--shutdown-timeout", bookdShutdownTimeout.String(),
		// One customer makes every request: the limiter stays on the
		// measured path, with a limit the sale never reaches.
		"--rate-limit", "default=100000000/1h,holds=100000000/1h"}
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Env = withoutBookdEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	n := &bookdNode{cmd: cmd, base: "http://" + addr, logPath: logPath, exited: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second}}
	go func() { n.waitErr = cmd.Wait(); close(n.exited) }()
	if err := n.waitReady(ctx); err != nil {
		return n, err
	}
	if n.adminToken, err = n.login(ctx, benchAdmin); err != nil {
		return n, err
	}
	customer := fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())
	if err := n.post(ctx, "/v1/auth/register", fmt.Sprintf(`{"email":%q,"password":%q}`, customer, benchPassword), http.StatusCreated, nil); err != nil {
		return n, err
	}
	if n.customerToken, err = n.login(ctx, customer); err != nil {
		return n, err
	}
	return n, nil
}

// The accounts of the benchmark.
const (
	benchAdmin    = "bench-admin@example.com"
	benchPassword = "flash sale benchmark"
)

// login logs email in and returns its access token.
func (n *bookdNode) login(ctx context.Context, email string) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err := n.post(ctx, "/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, benchPassword), http.StatusOK, &tok)
	return tok.AccessToken, err
}

// withoutBookdEnv drops the BOOKD_* environment twins of serve's flags, so
// that only the flags given configure the node.
func withoutBookdEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "BOOKD_") {
			out = append(out, kv)
		}
	}
	return out
}

// waitReady polls /readyz until it answers 200, the process exits, ctx
// ends or bookdStartTimeout passes.
func (n *bookdNode) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, bookdStartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.base+"/readyz", nil)
		if res, err := n.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("bookd exited before it was ready: %v", n.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("bookd not ready at %s/readyz: %w", n.base, ctx.Err())
		case <-tick.C:
		}
	}
}

// URL is the node's base URL.
func (n *bookdNode) URL() string { return n.base }

// PID is the node's process id.
func (n *bookdNode) PID() int { return n.cmd.Process.Pid }

// LogPath is the file the node logs to.
func (n *bookdNode) LogPath() string { return n.logPath }

// Stop asks the node to drain (SIGTERM) and waits for it, killing it when
// it takes longer than its shutdown timeout and 10 s. It fails when the
// node exited with an error. Later calls return the first one's result.
func (n *bookdNode) Stop() error {
	n.stopOnce.Do(func() {
		select {
		case <-n.exited: // on its own, or on a Ctrl-C its process group got
			if n.waitErr != nil {
				n.stopErr = fmt.Errorf("bookd exited early: %w (log: %s)", n.waitErr, n.logPath)
			}
			return
		default:
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
			if n.waitErr != nil {
				n.stopErr = fmt.Errorf("bookd shutdown: %w (log: %s)", n.waitErr, n.logPath)
			}
		case <-time.After(bookdShutdownTimeout + 10*time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
			n.stopErr = fmt.Errorf("bookd did not stop within %v of SIGTERM; killed it (log: %s)", bookdShutdownTimeout+10*time.Second, n.logPath)
		}
	})
	return n.stopErr
}

// The catalog the benchmark books: one provider and one listing per node,
// a resource per run.
const (
	benchProvider = "prv-flash"
	benchListing  = "lst-flash"
	// holdTTLSeconds keeps every hold of a run held until its check (a day,
	// the longest the API takes).
	holdTTLSeconds = 24 * 3600
)

// newListing creates the provider and the listing the runs' resources
// belong to.
func (n *bookdNode) newListing(ctx context.Context) error {
	if err := n.admin(ctx, "/v1/admin/providers", fmt.Sprintf(`{"id":%q,"name":"Flash sale"}`, benchProvider)); err != nil {
		return err
	}
	return n.admin(ctx, "/v1/admin/listings", fmt.Sprintf(
		`{"id":%q,"provider_id":%q,"kind":"event","name":"Flash sale","city":"Berlin","time_zone":"Europe/Berlin"}`,
		benchListing, benchProvider))
}

// newResource creates the single-slot resource id with capacity units.
func (n *bookdNode) newResource(ctx context.Context, id string, capacity int) error {
	return n.admin(ctx, "/v1/admin/listings/"+benchListing+"/resources", fmt.Sprintf(
		`{"id":%q,"name":"Hot resource %s","slot":{"unit":"single"},"capacity":%d,"hold_ttl_seconds":%d}`,
		id, id, capacity, holdTTLSeconds))
}

// admin posts body to path as the admin and wants 201 Created.
func (n *bookdNode) admin(ctx context.Context, path, body string) error {
	return n.post(ctx, path, body, http.StatusCreated, nil)
}

// post posts body to path (with the admin's token once there is one),
// wants status and decodes the answer into out when it is not nil.
func (n *bookdNode) post(ctx context.Context, path, body string, status int, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if n.adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.adminToken)
	}
	res, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != status {
		return fmt.Errorf("POST %s: %s: %s", path, res.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
