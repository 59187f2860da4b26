package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Loadgen is `bookd loadgen`: a flash-sale load generator. It first measures
// the HTTP ceiling, GET /livez with the same clients, then lets Clients
// concurrent keep-alive clients place holds on the hot Resources until
// Requests attempts are made or Duration has passed, whichever comes first,
// and finally checks that the units it was told yes to are exactly what
// availability reports as newly taken.
//
// It sends requests only to Target, the loopback default or what the caller
// names, and it is bounded: at most Requests holds (plus confirms) and
// LivezRequests probes, each phase at most Duration plus Timeout long.
type Loadgen struct {
	Stdout, Stderr io.Writer // the summary; progress lines

	Target    string   // base URL of the API; default http://127.0.0.1:3000
	Clients   int      // concurrent clients, each with its own keep-alive connection; default 64
	Resources []string // hot resource ids; attempt i goes to Resources[i mod len]
	Quantity  int      // units per hold; default 1
	From, To  string   // range of every hold, for night and minute resources; "" for single
	Requests  int      // most hold attempts; default 10,000
	// Duration bounds the sale; when it passes, no attempt starts and those in
	// flight finish. Default 30 s.
	Duration time.Duration
	Timeout  time.Duration // per request; default 5 s
	// ConfirmShare (0..1) of the accepted holds are confirmed right after;
	// default 0.
	ConfirmShare float64
	Idempotency  bool // send an Idempotency-Key with every attempt; default true
	// LivezRequests GET /livez measure the ceiling: 0 as many as Requests, < 0
	// none. The ceiling is bounded by Duration too.
	LivezRequests int
	JSON          bool // print the summary as JSON
	// Token is the access token the holds are placed with; Register makes
	// loadgen register a fresh customer and log in instead.
	Token    string
	Register bool
}

func (l *Loadgen) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(l.Stderr)
	fs.StringVar(&l.Target, "target", "http://127.0.0.1:3000", "base URL of the bookd API")
	fs.IntVar(&l.Clients, "clients", 64, "concurrent clients, each with its own keep-alive connection")
	fs.Func("resources", "comma-separated `ids` of the hot resources (required); holds go round-robin", func(s string) error {
		l.Resources = nil
		for id := range strings.SplitSeq(s, ",") {
			if id = strings.TrimSpace(id); id != "" {
				l.Resources = append(l.Resources, id)
			}
		}
		return nil
	})
	fs.IntVar(&l.Quantity, "quantity", 1, "units per hold")
	fs.StringVar(&l.From, "from", "", "from of every hold and availability read (night and minute resources)")
	fs.StringVar(&l.To, "to", "", "to of every hold and availability read (night and minute resources)")
	fs.IntVar(&l.Requests, "requests", 10000, "most hold attempts")
	fs.DurationVar(&l.Duration, "duration", 30*time.Second, "most time for the sale (and for the ceiling)")
	fs.DurationVar(&l.Timeout, "timeout", 5*time.Second, "timeout of one request")
	fs.Float64Var(&l.ConfirmShare, "confirm-share", 0, "share (0..1) of accepted holds to confirm right after")
	fs.BoolVar(&l.Idempotency, "idempotency", true, "send an Idempotency-Key with every hold attempt")
	fs.IntVar(&l.LivezRequests, "livez-requests", 0, "GET /livez requests that measure the HTTP ceiling (0: as many as --requests, -1: skip)")
	fs.BoolVar(&l.JSON, "json", false, "print the summary as JSON")
	fs.StringVar(&l.Token, "token", os.Getenv("BOOKD_TOKEN"), "access token to place holds with (default $BOOKD_TOKEN)")
	fs.BoolVar(&l.Register, "register", false, "register a fresh customer and log in to place holds (the node's rate limit for holds must allow the sale)")
	fs.Usage = func() {
		fmt.Fprintln(l.Stderr, `Usage: bookd loadgen --resources ID[,ID…] [flags]

A flash sale against a running node: measure GET /livez as the HTTP ceiling, place
holds with concurrent keep-alive clients until --requests or --duration, then check
that the accepted units are exactly what availability reports as newly taken. The
check assumes nobody else books these resources meanwhile. It exits non-zero when
the check fails.`)
		fs.PrintDefaults()
	}
	return fs
}

// Validate reports the first field that is out of range, by its flag name.
func (l *Loadgen) Validate() error {
	u, err := url.Parse(l.Target)
	switch {
	case err != nil:
		return fmt.Errorf("--target: %w", err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("--target: want a base URL like http://127.0.0.1:3000, got %q", l.Target)
	case len(l.Resources) == 0:
		return errors.New("--resources: name at least one resource id")
	case l.Clients < 1:
		return fmt.Errorf("--clients: must be at least 1, got %d", l.Clients)
	case l.Quantity < 1:
		return fmt.Errorf("--quantity: must be at least 1, got %d", l.Quantity)
	case l.Requests < 1:
		return fmt.Errorf("--requests: must be at least 1, got %d", l.Requests)
	case l.Duration <= 0:
		return fmt.Errorf("--duration: must be positive, got %v", l.Duration)
	case l.Timeout <= 0:
		return fmt.Errorf("--timeout: must be positive, got %v", l.Timeout)
	case !(l.ConfirmShare >= 0 && l.ConfirmShare <= 1):
		return fmt.Errorf("--confirm-share: must be between 0 and 1, got %v", l.ConfirmShare)
	case (l.From == "") != (l.To == ""):
		return errors.New("--from and --to: give both or neither")
	}
	seen := map[string]bool{}
	for _, id := range l.Resources {
		if seen[id] {
			return fmt.Errorf("--resources: %s is named twice", id)
		}
		seen[id] = true
	}
	return nil
}

// Run parses args, runs the ceiling and the sale, and prints the summary
// on Stdout. When ctx ends early, the run stops, checks and prints what it
// has. It returns an error when the check fails.
func (l *Loadgen) Run(ctx context.Context, args []string) error {
	if l.Stdout == nil {
		l.Stdout = io.Discard
	}
	if l.Stderr == nil {
		l.Stderr = io.Discard
	}
	fs := l.flags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected argument %q", fs.Arg(0))
	}
	if err := l.Validate(); err != nil {
		return err
	}
	r := &loadRun{Loadgen: l, base: strings.TrimSuffix(l.Target, "/"), runID: fmt.Sprintf("%016x", rand.Uint64())}
	r.client = l.newClient()
	defer r.client.CloseIdleConnections()
	if l.Register {
		tok, err := registerCustomer(ctx, r.client, r.base)
		if err != nil {
			return fmt.Errorf("--register: %w", err)
		}
		l.Token = tok
	}
	r.holdHeader = []string{"Content-Type: application/json"}
	if l.Token != "" {
		r.authHeader = []string{"Authorization: Bearer " + l.Token}
		r.holdHeader = append(r.holdHeader, r.authHeader...)
	}
	r.conns = make([]*keepAliveConn, l.Clients)
	for i := range r.conns {
		c, err := newKeepAliveConn(r.base, l.Timeout)
		if err != nil {
			return fmt.Errorf("--target: %w", err)
		}
		r.conns[i] = c
	}
	defer func() {
		for _, c := range r.conns {
			c.close()
		}
	}()

	// Read every resource first: this fails fast on a wrong target or id,
	// and it is the "before" of the check.
	before := make([][]slotTaken, len(l.Resources))
	for i, id := range l.Resources {
		slots, err := r.taken(ctx, id)
		if err != nil {
			return err
		}
		before[i] = slots
	}

	r.warmUp(ctx)

	sum := &loadgenSummary{Target: r.base, Clients: l.Clients, Resources: l.Resources, Quantity: l.Quantity}
	if l.LivezRequests >= 0 && ctx.Err() == nil {
		n := l.LivezRequests
		if n == 0 {
			n = l.Requests
		}
		fmt.Fprintf(l.Stderr, "ceiling: GET /livez × %d with %d clients\n", n, l.Clients)
		var st phaseStats
		elapsed, _ := r.drive(ctx, "ceiling", int64(n), &st, func(c *keepAliveConn, _ int64) { r.livez(ctx, c, &st) })
		sum.Ceiling = &ceilingSummary{Requests: st.attempts.Load(), Seconds: elapsed.Seconds(),
			RequestsPerSecond: perSecond(st.attempts.Load(), elapsed), Errors: st.errors(), Latency: latencyOf(&st.latency)}
	}

	fmt.Fprintf(l.Stderr, "sale: POST /v1/holds × %d with %d clients on %s\n", l.Requests, l.Clients, strings.Join(l.Resources, ","))
	r.perResource = make([]resourceStats, len(l.Resources))
	r.bodies = make([][]byte, len(l.Resources))
	for i, id := range l.Resources {
		r.bodies[i] = holdBody(id, l.From, l.To, l.Quantity)
	}
	st := &r.sale
	elapsed, stopped := r.drive(ctx, "sale", int64(l.Requests), st, func(c *keepAliveConn, i int64) { r.hold(ctx, c, i) })
	sum.Attempts, sum.Seconds, sum.AttemptsPerSecond, sum.Stopped = st.attempts.Load(), elapsed.Seconds(), perSecond(st.attempts.Load(), elapsed), stopped
	sum.Accepted, sum.Rejected, sum.Errors, sum.ErrorKinds = st.ok.Load(), st.rejected.Load(), st.errors(), st.errorKinds()
	sum.Confirmed, sum.ConfirmErrors = r.confirmed.Load(), r.confirmErrors.Load()
	sum.Latency = latencyOf(&st.latency)
	if c := sum.Ceiling; c != nil && c.RequestsPerSecond > 0 {
		sum.CeilingShare = sum.AttemptsPerSecond / c.RequestsPerSecond
	}

	// The check runs also after an interrupt: its reads are bounded by Timeout.
	checkCtx := context.WithoutCancel(ctx)
	sum.Check.OK = true
	for i, id := range l.Resources {
		rs := &r.perResource[i]
		sum.Unknown += rs.unknown.Load()
		rc := resourceCheck{Resource: id, Accepted: rs.accepted.Load()}
		rc.Units, rc.Unknown = rc.Accepted*int64(l.Quantity), rs.unknown.Load()*int64(l.Quantity)
		after, err := r.taken(checkCtx, id)
		if err != nil {
			rc.Problem = err.Error()
		} else {
			rc.Slots, rc.Problem = checkSlots(rc.Units, rc.Unknown, before[i], after)
		}
		rc.OK = rc.Problem == ""
		sum.Check.OK = sum.Check.OK && rc.OK
		sum.Check.Resources = append(sum.Check.Resources, rc)
	}

	if l.JSON {
		enc := json.NewEncoder(l.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		sum.writeText(l.Stdout)
	}
	if !sum.Check.OK {
		return fmt.Errorf("loadgen: check failed: %s", sum.checkProblems())
	}
	return nil
}

// newClient is the HTTP client of the check's reads (the load itself goes
// through keepAliveConn), never through a proxy.
func (l *Loadgen) newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:        (&net.Dialer{Timeout: l.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		IdleConnTimeout:    90 * time.Second,
		DisableCompression: true,
	}}
}

// loadRun is the state of one Run.
type loadRun struct {
	*Loadgen
	base   string
	runID  string       // makes this run's Idempotency-Keys its own
	client *http.Client // for the reads of the check
	conns  []*keepAliveConn
	// The header lines of every hold and of every confirmation, made once.
	holdHeader, authHeader []string

	bodies        [][]byte // the POST /v1/holds body of each resource
	sale          phaseStats
	perResource   []resourceStats
	confirmed     atomic.Int64
	confirmErrors atomic.Int64
}

// resourceStats is what the check needs of one resource.
type resourceStats struct {
	accepted atomic.Int64
	unknown  atomic.Int64 // attempts the server may have held without telling us
}

// warmUp opens the clients' connections with one GET /livez each, all at
// once, so that neither the ceiling nor the sale pays for dialing.
func (r *loadRun) warmUp(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range r.conns {
		wg.Go(func() { _, _, _ = c.do(ctx, http.MethodGet, "/livez", nil, nil) })
	}
	wg.Wait()
}

// drive calls do(c, i) for i = 0 … n−1 on Clients workers, one per load
// client c, until all n are made,
// Duration has passed or ctx ends, printing a progress line every second.
// It returns when every worker has returned, with the time taken and what
// stopped it: "requests", "duration" or "interrupted". The workers are the
// coroutines of a client loop (see clientLoop) where it can run them, and
// goroutines elsewhere.
func (r *loadRun) drive(ctx context.Context, name string, n int64, st *phaseStats, do func(c *keepAliveConn, i int64)) (time.Duration, string) {
	stop, cancel := context.WithTimeout(ctx, r.Duration)
	defer cancel()
	var next atomic.Int64
	worker := func(c *keepAliveConn) {
		for stop.Err() == nil && !c.halted() {
			i := next.Add(1) - 1
			if i >= n {
				return
			}
			do(c, i)
		}
	}
	start := time.Now()
	done := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() { r.progress(name, start, st, done) })
	// A loop per P but one (a loop holds its P while it waits), each with
	// its share of the clients.
	loops := min(max(runtime.GOMAXPROCS(0)-1, 1), len(r.conns))
	var groups sync.WaitGroup
	for g := range loops {
		conns := r.conns[g*len(r.conns)/loops : (g+1)*len(r.conns)/loops]
		groups.Go(func() {
			err := runClientLoop(conns, worker)
			if err == nil {
				return
			}
			if !errors.Is(err, errLoopUnsupported) {
				fmt.Fprintf(r.Stderr, "%s: %v; a goroutine per client instead\n", name, err)
			}
			var workers sync.WaitGroup
			for _, c := range conns {
				workers.Go(func() { worker(c) })
			}
			workers.Wait()
		})
	}
	groups.Wait()
	elapsed := time.Since(start)
	close(done)
	progress.Wait()

	switch {
	case ctx.Err() != nil:
		return elapsed, "interrupted"
	case next.Load() >= n:
		return elapsed, "requests"
	}
	return elapsed, "duration"
}

// progress prints a line a second until done closes: the rate and p99 are
// those of the last second.
func (r *loadRun) progress(name string, start time.Time, st *phaseStats, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prevAt, prevN, prevH := start, int64(0), st.latency.snapshot()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			// Outcomes first: attempts count before them, so n ≥ their sum.
			accepted, rejected, errs := st.ok.Load(), st.rejected.Load(), st.errors()
			n, h := st.attempts.Load(), st.latency.snapshot()
			p99 := "-"
			if d, ok := h.minus(prevH).quantile(0.99); ok {
				p99 = fmt.Sprintf("%.2f ms", ms(d))
			}
			rate := perSecond(n-prevN, now.Sub(prevAt))
			if name == "sale" {
				fmt.Fprintf(r.Stderr, "%s %3.0fs: %d attempts (%.0f/s), accepted %d, rejected %d, errors %d, p99 %s\n",
					name, now.Sub(start).Seconds(), n, rate, accepted, rejected, errs, p99)
			} else {
				fmt.Fprintf(r.Stderr, "%s %3.0fs: %d requests (%.0f/s), errors %d, p99 %s\n",
					name, now.Sub(start).Seconds(), n, rate, errs, p99)
			}
			prevAt, prevN, prevH = now, n, h
		}
	}
}

// hold makes attempt i: a hold on resource i mod len, confirmed right after
// for ConfirmShare of the accepted ones.
func (r *loadRun) hold(ctx context.Context, c *keepAliveConn, i int64) {
	ri := int(i % int64(len(r.Resources)))
	rs := &r.perResource[ri]
	h := r.holdHeader
	if r.Idempotency {
		h = append(h[:len(h):len(h)], "Idempotency-Key: loadgen-"+r.runID+"-"+strconv.FormatInt(i, 10))
	}
	began := time.Now()
	status, body, err := c.do(ctx, http.MethodPost, "/v1/holds", h, r.bodies[ri])
	st := &r.sale
	st.attempts.Add(1) // before the outcome, so that progress never shows more outcomes than attempts
	switch {
	case err != nil:
		kind := errKind(ctx, err)
		if kind != errKindStopped {
			st.latency.Record(time.Since(began))
		}
		st.fail(kind)
		rs.unknown.Add(1)
	case status == http.StatusCreated:
		st.latency.Record(time.Since(began))
		rs.accepted.Add(1)
		if k := st.ok.Add(1); r.shouldConfirm(k) {
			r.confirm(ctx, c, body)
		}
	case status == http.StatusConflict && bytes.Contains(body, []byte(`"/problems/sold-out"`)):
		st.latency.Record(time.Since(began))
		st.rejected.Add(1)
	default:
		st.latency.Record(time.Since(began))
		st.status(status)
		if status >= 500 {
			rs.unknown.Add(1) // 503 and 500 may come after the resource decided
		}
	}
}

// shouldConfirm is true for the k-th accepted hold (1-based) when confirming
// it keeps the confirmed share at ConfirmShare: exactly ⌊k·share⌋ of the
// first k are confirmed.
func (r *loadRun) shouldConfirm(k int64) bool {
	s := r.ConfirmShare
	return s > 0 && int64(float64(k)*s) > int64(float64(k-1)*s)
}

func (r *loadRun) confirm(ctx context.Context, c *keepAliveConn, holdBody []byte) {
	var hold struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(holdBody, &hold); err != nil || hold.ID == "" {
		r.confirmErrors.Add(1)
		return
	}
	status, _, err := c.do(ctx, http.MethodPost, "/v1/holds/"+url.PathEscape(hold.ID)+"/confirm", r.authHeader, nil)
	if err != nil || status != http.StatusOK {
		r.confirmErrors.Add(1)
		return
	}
	r.confirmed.Add(1)
}

// livez makes one request of the ceiling.
func (r *loadRun) livez(ctx context.Context, c *keepAliveConn, st *phaseStats) {
	began := time.Now()
	status, _, err := c.do(ctx, http.MethodGet, "/livez", nil, nil)
	st.attempts.Add(1)
	switch {
	case err != nil:
		kind := errKind(ctx, err)
		if kind != errKindStopped {
			st.latency.Record(time.Since(began))
		}
		st.fail(kind)
	case status == http.StatusOK:
		st.latency.Record(time.Since(began))
		st.ok.Add(1)
	default:
		st.latency.Record(time.Since(began))
		st.status(status)
	}
}

// send makes one request within Timeout and reads the answer whole, so that
// the connection goes back to the pool.
func (r *loadRun) send(ctx context.Context, method, path string, h http.Header, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if h != nil {
		req.Header = h
	}
	res, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return res.StatusCode, b, nil
}

// errKind classifies a failed request: the caller's context ended, the
// request timed out, or the transport failed otherwise.
func errKind(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return errKindStopped
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errKindTimeout
	}
	return errKindTransport
}

// taken reads GET /v1/resources/{id}/availability over From–To: the units
// held + confirmed per slot.
func (r *loadRun) taken(ctx context.Context, id string) ([]slotTaken, error) {
	path := "/v1/resources/" + url.PathEscape(id) + "/availability"
	if r.From != "" {
		path += "?" + url.Values{"from": {r.From}, "to": {r.To}}.Encode()
	}
	status, body, err := r.send(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("availability of %s: %w", id, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("availability of %s: %d %s", id, status, bytes.TrimSpace(body))
	}
	var a struct {
		Slots []struct {
			Start     string `json:"start"`
			Held      int64  `json:"held"`
			Confirmed int64  `json:"confirmed"`
		} `json:"slots"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("availability of %s: %w", id, err)
	}
	slots := make([]slotTaken, len(a.Slots))
	for i, s := range a.Slots {
		slots[i] = slotTaken{Start: s.Start, Taken: s.Held + s.Confirmed}
	}
	return slots, nil
}

// holdBody is the POST /v1/holds body for a resource.
func holdBody(id, from, to string, quantity int) []byte {
	b, _ := json.Marshal(struct {
		ResourceID string `json:"resource_id"`
		From       string `json:"from,omitempty"`
		To         string `json:"to,omitempty"`
		Quantity   int    `json:"quantity"`
	}{id, from, to, quantity})
	return b
}

// registerCustomer registers a customer with a random email and password
// at base, logs in and returns the access token.
func registerCustomer(ctx context.Context, client *http.Client, base string) (string, error) {
	email := fmt.Sprintf("loadgen-%016x@example.com", rand.Uint64())
	password := fmt.Sprintf("pw-%016x-%016x", rand.Uint64(), rand.Uint64())
	creds, _ := json.Marshal(map[string]string{"email": email, "password": password})
	post := func(path string, want int) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(creds))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if err == nil && res.StatusCode != want {
			err = fmt.Errorf("POST %s = %d %s", path, res.StatusCode, bytes.TrimSpace(b))
		}
		return b, err
	}
	if _, err := post("/v1/auth/register", http.StatusCreated); err != nil {
		return "", err
	}
	b, err := post("/v1/auth/login", http.StatusOK)
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("POST /v1/auth/login: no access token in %s", b)
	}
	return tok.AccessToken, nil
}
