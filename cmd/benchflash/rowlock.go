package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookd/bookd/edge/h1"
	"github.com/bookd/bookd/persistence/postgres"
)

// Mode c is the way most systems sell a hot resource: a row per resource
// and a conditional UPDATE, which takes the row's lock until the transaction
// commits. Every decision therefore waits for the previous one's commit
// (its WAL flush): PostgreSQL groups the flushes of concurrent commits, but
// on one hot row there is never more than one commit to group.
//
// The server is as small as the stack allows — bookd's HTTP server
// (edge/h1) and a pgxpool, no idempotency, no hold records, no validation
// beyond the body's shape — so that it is the row lock and not the server
// that is measured. It answers the routes loadgen uses in the shape bookd
// answers them, so that loadgen's check runs against it too.

const (
	// holdSQL is one hold: one statement, so one implicit transaction and
	// one round trip (pgx prepares it once per connection). The row lock is
	// held from the UPDATE to the end of the commit.
	holdSQL = `UPDATE inventory SET remaining = remaining - $1 WHERE id = $2 AND remaining >= $1`

	inventorySQL = `CREATE TABLE inventory (
		id        text PRIMARY KEY,
		capacity  integer NOT NULL,
		remaining integer NOT NULL CHECK (remaining BETWEEN 0 AND capacity)
	)`

	// rowLockRequestTimeout is how long a request may wait for the
	// database, as bookd's --request-timeout default.
	rowLockRequestTimeout = 5 * time.Second
)

// rowLockPoolMax caps mode c's pool by default: pgxpool's own default size,
// max(4, NumCPU) — what a Go service on this stack gets without tuning —
// which is also about the row lock's best. On a hot row every transaction
// waits for the one before it; a few connections per core keep the next
// UPDATE ready behind the lock, and more of them only add waiters that
// PostgreSQL wakes and puts back to sleep at every commit. Measured on
// 2 cores (4 connections by default), 256 clients, decisions/s of two
// rounds: pool 1: 929, 1,055; 2: 1,424, 1,797; 4: 1,753, 2,012;
// 8: 1,687, 1,736; 16: 1,394, 1,461; 32: 1,410; 64: 1,230; 256: 695 (and
// 549 with timeouts at 1,024 clients). "One connection per client" would
// be unfair to the row lock; --rowlock-pool sets any size.
var rowLockPoolMax = func() int {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return 4
	}
	return int(cfg.MaxConns)
}()

// rowLockHeadroom is what the row-lock pool leaves of the server's
// max_connections to others: superuser_reserved_connections (3), the pools
// of the two bookd nodes at their default size (persistence/postgres), and
// five for benchflash's own sessions (checkpoints, catalog writes).
var rowLockHeadroom = 3 + 2*int(postgres.DefaultOptions().MaxConns) + 5

// createInventory creates the inventory table in the database at url.
func createInventory(ctx context.Context, url string) error {
	err := withConn(ctx, url, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, inventorySQL)
		return err
	})
	if err != nil {
		return fmt.Errorf("row lock: create inventory: %w", err)
	}
	return nil
}

// rowLockServer is the HTTP server of mode c, on a loopback port, with a
// pool of its own. One serves one run.
type rowLockServer struct {
	pool   *pgxpool.Pool
	ln     net.Listener
	srv    *h1.Server // the HTTP server bookd's API port uses
	log    *slog.Logger
	logOut *os.File
	served chan error // Serve's result
	holds  atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

// startRowLock opens a pool of poolSize connections to url — all of them,
// so that no request of the run pays for a connection — and serves on a
// free loopback port. It logs to logPath (appended).
func startRowLock(ctx context.Context, url string, poolSize int, logPath string) (*rowLockServer, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("row lock: %w", err)
	}
	cfg.MaxConns = int32(poolSize)
	cfg.ConnConfig.RuntimeParams["application_name"] = "benchflash-rowlock"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("row lock: %w", err)
	}
	if err := warmPool(ctx, pool, poolSize); err != nil {
		pool.Close()
		return nil, fmt.Errorf("row lock: open %d connections: %w", poolSize, err)
	}
	logOut, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		pool.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pool.Close()
		_ = logOut.Close()
		return nil, fmt.Errorf("row lock: %w", err)
	}
	s := &rowLockServer{pool: pool, ln: ln, logOut: logOut, served: make(chan error, 1),
		log: slog.New(slog.NewTextHandler(logOut, nil)).With("subsystem", "rowlock")}
	s.srv = &h1.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError)}
	go func() { s.served <- s.srv.Serve(ln) }()
	s.log.Info("serving", "http", ln.Addr().String(), "pool", poolSize)
	return s, nil
}

// warmPool opens n connections of pool at once and gives them back.
func warmPool(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { conns[i], errs[i] = pool.Acquire(ctx) })
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Release()
		}
	}
	return errors.Join(errs...)
}

// URL is the server's base URL.
func (s *rowLockServer) URL() string { return "http://" + s.ln.Addr().String() }

// Stop shuts the HTTP server down (requests in flight finish), waits for
// it and closes the pool. Later calls return the first one's result.
func (s *rowLockServer) Stop() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*rowLockRequestTimeout)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if serveErr := <-s.served; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		s.pool.Close()
		s.log.Info("stopped", "holds", s.holds.Load())
		s.stopErr = errors.Join(err, s.logOut.Close())
		if s.stopErr != nil {
			s.stopErr = fmt.Errorf("row lock: stop: %w", s.stopErr)
		}
	})
	return s.stopErr
}

// newResource adds the inventory row id with capacity units.
func (s *rowLockServer) newResource(ctx context.Context, id string, capacity int) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO inventory (id, capacity, remaining) VALUES ($1, $2, $2)`, id, capacity)
	if err != nil {
		return fmt.Errorf("row lock: add %s: %w", id, err)
	}
	return nil
}

func (s *rowLockServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /v1/holds", s.handleHold)
	mux.HandleFunc("GET /v1/resources/{id}/availability", s.handleAvailability)
	return mux
}

// holdRequest is the body of POST /v1/holds that the row lock takes: a
// single-slot resource, so no range.
type holdRequest struct {
	ResourceID string `json:"resource_id"`
	From       string `json:"from"`
	To         string `json:"to"`
	Quantity   int    `json:"quantity"`
}

// handleHold is POST /v1/holds: 201 with the hold when the UPDATE changed
// the row, 409 sold-out when it did not (too few units left, or no such
// resource), 503 when the database failed.
func (s *rowLockServer) handleHold(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid-request", "Invalid request", err.Error())
		return
	}
	var req holdRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.ResourceID == "" || req.Quantity < 1 || req.From != "" || req.To != "" {
		writeProblem(w, http.StatusBadRequest, "invalid-request", "Invalid request",
			"want {\"resource_id\": id, \"quantity\": n ≥ 1} without a range")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), rowLockRequestTimeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, holdSQL, req.Quantity, req.ResourceID)
	if err != nil {
		s.log.Warn("hold failed", "error", err)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, "unavailable", "Service unavailable", "the hold could not be decided now")
		return
	}
	if tag.RowsAffected() == 0 {
		writeProblem(w, http.StatusConflict, "sold-out", "Sold out", "not enough free units")
		return
	}
	id := "hld-rowlock-" + strconv.FormatInt(s.holds.Add(1), 10)
	w.Header().Set("Location", "/v1/holds/"+id)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": id, "resource_id": req.ResourceID, "quantity": req.Quantity, "status": "held",
	})
}

// availabilityJSON is the shape of bookd's availability answer that
// loadgen reads: one slot for a single-slot resource.
type availabilityJSON struct {
	ResourceID string    `json:"resource_id"`
	Capacity   int       `json:"capacity"`
	Slots      []slotUse `json:"slots"`
}

type slotUse struct {
	Free      int `json:"free"`
	Held      int `json:"held"`
	Confirmed int `json:"confirmed"`
}

// handleAvailability is GET /v1/resources/{id}/availability: held is what
// the UPDATEs took, capacity − remaining.
func (s *rowLockServer) handleAvailability(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), rowLockRequestTimeout)
	defer cancel()
	var capacity, remaining int
	err := s.pool.QueryRow(ctx, `SELECT capacity, remaining FROM inventory WHERE id = $1`, id).Scan(&capacity, &remaining)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", fmt.Sprintf("resource %q does not exist", id))
		return
	case err != nil:
		s.log.Warn("availability failed", "resource_id", id, "error", err)
		writeProblem(w, http.StatusServiceUnavailable, "unavailable", "Service unavailable", "availability could not be read now")
		return
	}
	writeJSON(w, http.StatusOK, availabilityJSON{ResourceID: id, Capacity: capacity,
		Slots: []slotUse{{Free: remaining, Held: capacity - remaining}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeProblem writes an RFC 9457 problem of type /problems/<slug>, as
// bookd's edge does.
func writeProblem(w http.ResponseWriter, status int, slug, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "/problems/" + slug, "title": title, "status": status, "detail": detail,
	})
}
