package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary as a separate process.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// bookdBinary builds bookd once per test run and returns its path.
func bookdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bookd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bookd")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a bookd process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan error
}

// testServeFlags are the flags of every bookd the tests start: cheap
// password hashes, and no rate limits (the tests make many requests from
// one client on purpose; the limits have tests of their own).
var testServeFlags = append(slices.Clone(testArgon2Flags), "--rate-limit", "default=off,holds=off,login=off")

// testArgon2Flags make password hashes cheap, for serve and admin create.
var testArgon2Flags = []string{"--argon2-memory", "64", "--argon2-time", "1", "--argon2-threads", "1"}

// createAdmin runs `bookd admin create` for admin@example.com with
// testPassword on the store named by storeArgs (--data or --postgres),
// once per store: a restart over the same store finds it.
func createAdmin(t *testing.T, storeArgs ...string) {
	t.Helper()
	args := append(append([]string{"admin", "create", "--email", "admin@example.com"}, testArgon2Flags...), storeArgs...)
	admin := exec.Command(bookdBinary(t), args...)
	admin.Stdin = strings.NewReader(testPassword + "\n")
	if out, err := admin.CombinedOutput(); err != nil && !strings.Contains(string(out), "exists already") {
		t.Fatalf("bookd admin create: %v\n%s", err, out)
	}
}

// startBookd starts `bookd serve` on a free loopback port with data in dir
// and waits until /readyz answers 200.
func startBookd(t *testing.T, dir string, extra ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	createAdmin(t, append([]string{"--data", dir}, postgresArgs(extra)...)...)
	args := append(append([]string{"serve", "--data", dir, "--log-level", "warn"}, testServeFlags...), extra...)
	cmd := exec.Command(bookdBinary(t), args...)
	cmd.Env = append(os.Environ(), "BOOKD_HTTP="+addr) // the flag's environment twin
	p := &proc{cmd: cmd, addr: addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("bookd logs:\n%s", p.logs.String())
		}
	})
	// As long as the cluster harness waits: a -race binary on two busy
	// cores can take a while.
	const readyWithin = 60 * time.Second
	deadline := time.Now().Add(readyWithin)
	last := "no answer yet"
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				processAuth.signIn(t, addr)
				return p
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case err := <-p.done:
			t.Fatalf("bookd exited before it was ready: %v\n%s", err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			// A goroutine dump shows where it is stuck.
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
			}
			t.Fatalf("bookd not ready after %v (last /readyz: %s); its goroutines:\n%s", readyWithin, last, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends sig and waits for the process to end.
func (p *proc) kill(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("bookd did not exit after %v", sig)
		return nil
	}
}

// call sends a JSON request and decodes the JSON answer into out (if not nil).
func call(t *testing.T, method, url string, body any, out any, header ...string) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, data, err)
		}
	}
	return resp.StatusCode
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(bookdBinary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("bookd version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "bookd ") {
		t.Errorf("bookd version = %q, want it to start with %q", out, "bookd ")
	}
}

func TestUnknownCommandFails(t *testing.T) {
	out, err := exec.Command(bookdBinary(t), "frobnicate").CombinedOutput()
	if err == nil {
		t.Fatalf("bookd frobnicate succeeded, want an error; output %q", out)
	}
	if !strings.Contains(string(out), "unknown command") {
		t.Errorf("bookd frobnicate said %q, want it to name the unknown command", out)
	}
}

// TestGracefulShutdown: SIGTERM ends the process cleanly (exit 0) and a
// restart on the same data sees what was committed.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	p := startBookd(t, dir)
	var h struct{ ID string }
	if code := call(t, "POST", "http://"+p.addr+"/v1/holds", map[string]any{"resource_id": "concert-standing", "quantity": 3}, &h); code != 201 {
		t.Fatalf("POST /v1/holds = %d, want 201", code)
	}
	if err := p.kill(t, syscall.SIGTERM); err != nil {
		t.Fatalf("bookd after SIGTERM exited with %v, want 0\n%s", err, p.logs.String())
	}
	p2 := startBookd(t, dir)
	var got struct{ Status string }
	if code := call(t, "GET", "http://"+p2.addr+"/v1/holds/"+h.ID, nil, &got); code != 200 || got.Status != "held" {
		t.Errorf("after restart GET hold = %d %q, want 200 held", code, got.Status)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func decodeJSON(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// postgresArgs returns the --postgres flag of args, if any.
func postgresArgs(args []string) []string {
	for i, a := range args {
		if a == "--postgres" && i+1 < len(args) {
			return args[i : i+2]
		}
	}
	return nil
}
