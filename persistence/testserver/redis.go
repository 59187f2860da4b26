package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Redis is a redis-server started by StartRedis. Its methods are safe for
// concurrent use.
type Redis struct {
	dir  string
	port int
	cmd  *exec.Cmd
	// exited is closed when the process has exited; waitErr is then its
	// exit error.
	exited  chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// redisStartTimeout bounds how long StartRedis waits for the first PONG.
const redisStartTimeout = 15 * time.Second

// StartRedis starts redis-server (found on PATH) on a free port of
// 127.0.0.1 with dir (created when missing) as its folder and log, without
// persistence (no RDB snapshots, no AOF). The server is a child process of
// ours, killed by the kernel when our process dies on Linux. Stop it with
// Stop, which also removes dir.
func StartRedis(dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("testserver: redis-server is not on PATH; install the Debian package redis-server (persistence/testserver/ensure-deps.sh does): %w", ErrNotInstalled)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("testserver: start redis in %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("testserver: start redis in %s: %w", dir, err)
	}
	for range startAttempts {
		r, retry, err := startRedis(bin, abs)
		if err == nil {
			return r, nil
		}
		if !retry {
			_ = os.RemoveAll(abs)
			return nil, fmt.Errorf("testserver: start redis in %s: %w", abs, err)
		}
	}
	_ = os.RemoveAll(abs)
	return nil, fmt.Errorf("testserver: start redis in %s: no free port after %d attempts", abs, startAttempts)
}

// startRedis makes one attempt; retry is true when the port was taken.
func startRedis(bin, dir string) (r *Redis, retry bool, err error) {
	port, err := FreePort()
	if err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(dir, "redis.log")
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = log.Close() }() // the child has its own copy
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", "")
	cmd.Dir = dir
	// A file, not a pipe: nothing of ours waits on the server's output.
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = procAttr(nil, true)
	if err := cmd.Start(); err != nil {
		return nil, false, err
	}
	r = &Redis{dir: dir, port: port, cmd: cmd, exited: make(chan struct{})}
	go func() {
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()

	deadline := time.Now().Add(redisStartTimeout)
	for {
		select {
		case <-r.exited:
			out := tail(logPath, 2048)
			return nil, strings.Contains(out, "already in use"), fmt.Errorf("redis-server exited: %v: %s", r.waitErr, out)
		default:
		}
		if ping(r.Addr()) == nil {
			return r, false, nil
		}
		if time.Now().After(deadline) {
			_ = r.kill()
			return nil, false, fmt.Errorf("redis-server did not answer PING within %v: %s", redisStartTimeout, tail(logPath, 2048))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends PING over a new connection and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING = %q, want +PONG", strings.TrimSpace(line))
	}
	return nil
}

// Addr returns the server's host:port on 127.0.0.1.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL returns redis://127.0.0.1:port/0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Dir returns the server's folder (absolute); Stop removes it.
func (r *Redis) Dir() string { return r.dir }

// Stop stops the server (SIGTERM, SIGKILL after 10 s) and removes its
// folder. Later calls return the first one's result.
func (r *Redis) Stop() error {
	r.stopOnce.Do(func() {
		var errs []error
		select {
		case <-r.exited:
			errs = append(errs, fmt.Errorf("redis-server had exited: %v: %s", r.waitErr, tail(filepath.Join(r.dir, "redis.log"), 1024)))
		default:
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.exited:
			case <-time.After(10 * time.Second):
				errs = append(errs, errors.New("redis-server ignored SIGTERM for 10s; killed"))
				_ = r.kill()
			}
		}
		if err := os.RemoveAll(r.dir); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			r.stopErr = fmt.Errorf("testserver: stop redis on %s: %w", r.Addr(), err)
		}
	})
	return r.stopErr
}

// kill kills the process and waits for it.
func (r *Redis) kill() error {
	err := r.cmd.Process.Kill()
	<-r.exited
	return err
}
