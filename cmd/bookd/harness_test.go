package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"strings"
	"sync"
	"testing"
	"time"
)

// testNode is a whole bookd node serving in this process, as `bookd serve`
// runs it, on a loopback port and a fresh data folder.
type testNode struct {
	base   string // http://127.0.0.1:port
	client *http.Client
	// customer and admin are access tokens: send adds the admin's to
	// /v1/admin requests and the customer's to the others, unless the
	// request sets Authorization itself (to "" for an anonymous one).
	customer, admin string
	openapi         *openapiCheck
	seq             int
}

// startNode starts Serve.Run with args after the defaults and stops it when
// the test ends, failing the test if it does not shut down cleanly.
func startNode(t *testing.T, args ...string) *testNode {
	t.Helper()
	logs := &syncBuffer{}
	listening := make(chan string, 1)
	s := &Serve{Stdout: logs, Stderr: logs, OnListen: func(addr string) { listening <- addr }}
	data := t.TempDir()
	// The first admin comes from `bookd admin create`, as in production;
	// the tests hash passwords cheaply and are not rate limited (the rate
	// limit tests start their own nodes with limits).
	adminArgs := append([]string{"create", "--email", "admin@example.com", "--data", data}, testArgon2Flags...)
	for i, a := range args {
		if a == "--postgres" && i+1 < len(args) {
			adminArgs = append(adminArgs, "--postgres", args[i+1])
		}
	}
	if err := (&AdminCmd{Stdin: strings.NewReader(testPassword + "\n"), Stdout: io.Discard, Stderr: io.Discard}).Run(t.Context(), adminArgs); err != nil {
		t.Fatalf("bookd admin create: %v", err)
	}
	args = append(append([]string{"--http", "127.0.0.1:0", "--data", data, "--log-level", "warn"}, testServeFlags...), args...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, args) }()

	n := &testNode{client: &http.Client{
		Transport: &http.Transport{MaxConnsPerHost: 256, MaxIdleConnsPerHost: 256},
		Timeout:   time.Minute,
	}, openapi: newOpenAPICheck(t)}
	select {
	case addr := <-listening:
		n.base = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("serve %v ended before listening: %v\n%s", args, err, logs)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("serve %v did not listen within 60 s\n%s", args, logs)
	}
	t.Cleanup(func() {
		n.client.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("serve did not return within 60 s of its context ending")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	t.Cleanup(func() { n.openapi.report(t) })
	n.admin = n.login(t, "admin@example.com", testPassword)
	n.customer = n.newCustomer(t)
	// Plain clients (without a Transport of their own) get these too.
	processAuth.set(t, strings.TrimPrefix(n.base, "http://"), nodeTokens{customer: n.customer, admin: n.admin})
	return n
}

// testPassword is every test account's password.
const testPassword = "correct horse battery"

// signed returns a client whose requests to n carry the customer's token
// (the admin's for /v1/admin), for tests that build their own requests.
func (n *testNode) signed() *http.Client {
	return &http.Client{Transport: processAuth, Timeout: n.client.Timeout}
}

// anonymous is the header of a request without credentials.
func anonymous(h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h["Authorization"] = []string{""}
	return h
}

// bearer returns h with the access token tok.
func bearer(h http.Header, tok string) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+tok)
	return h
}

// login logs in and returns the access token.
func (n *testNode) login(t *testing.T, email, password string) string {
	t.Helper()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	n.mustJSON(t, "POST", "/v1/auth/login", anonymous(jsonHeader()), fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), http.StatusOK, &tok)
	return tok.AccessToken
}

// register creates an account of role and returns its id and access token.
func (n *testNode) register(t *testing.T, role string) (id, token string) {
	t.Helper()
	n.seq++
	email := fmt.Sprintf("%s-%d-%d@example.com", role, time.Now().UnixNano(), n.seq)
	var u struct {
		ID string `json:"id"`
	}
	n.mustJSON(t, "POST", "/v1/auth/register", anonymous(jsonHeader()), fmt.Sprintf(`{"email":%q,"password":%q,"role":%q}`, email, testPassword, role), http.StatusCreated, &u)
	return u.ID, n.login(t, email, testPassword)
}

// newCustomer registers a customer and returns its access token.
func (n *testNode) newCustomer(t *testing.T) string {
	t.Helper()
	_, tok := n.register(t, "customer")
	return tok
}

// syncBuffer is a bytes.Buffer that the server may write from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// response is one HTTP answer, read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

// jsonHeader is the header of a JSON request.
func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// keyHeader is the header of a JSON request with an Idempotency-Key.
func keyHeader(key string) http.Header {
	h := jsonHeader()
	h.Set("Idempotency-Key", key)
	return h
}

// send makes one request; it may run on any goroutine.
func (n *testNode) send(method, path string, header http.Header, body string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.base+path, rd)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if _, set := header["Authorization"]; !set {
		switch {
		case strings.HasPrefix(path, "/v1/admin") && n.admin != "":
			req.Header.Set("Authorization", "Bearer "+n.admin)
		case n.customer != "":
			req.Header.Set("Authorization", "Bearer "+n.customer)
		}
	} else if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	res, err := n.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	n.openapi.check(req, res, b)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// do makes one request from the test goroutine.
func (n *testNode) do(t *testing.T, method, path string, header http.Header, body string) response {
	t.Helper()
	r, err := n.send(method, path, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// mustJSON makes a request, wants status and decodes the JSON answer into v.
func (n *testNode) mustJSON(t *testing.T, method, path string, header http.Header, body string, status int, v any) response {
	t.Helper()
	r := n.do(t, method, path, header, body)
	if r.Status != status {
		t.Fatalf("%s %s %s = %v, want %d", method, path, body, r, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s Content-Type = %q, want application/json", method, path, ct)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, r.Body, err)
		}
	}
	return r
}

// problemDoc is an RFC 9457 problem as a client reads it.
type problemDoc struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func (p problemDoc) field() string {
	if len(p.Errors) == 0 {
		return ""
	}
	return p.Errors[0].Field
}

// asProblem decodes r as a problem; it reports what is wrong with it when r
// is not a well-formed application/problem+json answer.
func asProblem(r response) (problemDoc, error) {
	var p problemDoc
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		return p, fmt.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return p, fmt.Errorf("decode problem %s: %v", r.Body, err)
	}
	if !strings.HasPrefix(p.Type, "/problems/") || p.Title == "" || p.Status != r.Status {
		return p, fmt.Errorf("problem %s: want type /problems/…, a title and status %d", r.Body, r.Status)
	}
	return p, nil
}

// wantProblem checks that r is the problem status/type, naming field when
// field is not "".
func wantProblem(t *testing.T, what string, r response, status int, typ, field string) problemDoc {
	t.Helper()
	p, err := asProblem(r)
	if err != nil {
		t.Errorf("%s = %v: %v", what, r, err)
		return p
	}
	if r.Status != status || p.Type != typ || (field != "" && p.field() != field) {
		t.Errorf("%s = %d %s naming %q (%s), want %d %s naming %q", what, r.Status, p.Type, p.field(), p.Detail, status, typ, field)
	}
	return p
}

// ---- the API as a client sees it --------------------------------------

type holdDoc struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	Status     string `json:"status"`
	Quantity   int    `json:"quantity"`
	From       string `json:"from"`
	To         string `json:"to"`
	ExpiresAt  string `json:"expires_at"`
}

type slotDoc struct {
	Start     string `json:"start"`
	Free      int    `json:"free"`
	Held      int    `json:"held"`
	Confirmed int    `json:"confirmed"`
}

type availabilityDoc struct {
	ResourceID string    `json:"resource_id"`
	Capacity   int       `json:"capacity"`
	Slots      []slotDoc `json:"slots"`
	Seq        uint64    `json:"seq"`
	Epoch      string    `json:"epoch"`
}

// availability reads a resource's availability over [from, to) ("" for the
// default window).
func (n *testNode) availability(t *testing.T, resourceID, from, to string) availabilityDoc {
	t.Helper()
	path := "/v1/resources/" + resourceID + "/availability"
	if from != "" || to != "" {
		path += "?" + url.Values{"from": {from}, "to": {to}}.Encode()
	}
	var a availabilityDoc
	n.mustJSON(t, "GET", path, nil, "", http.StatusOK, &a)
	return a
}

// singleSlot reads the one slot of a single-slot resource.
func (n *testNode) singleSlot(t *testing.T, resourceID string) slotDoc {
	t.Helper()
	a := n.availability(t, resourceID, "", "")
	if len(a.Slots) != 1 {
		t.Fatalf("availability of %s has %d slots, want 1: %+v", resourceID, len(a.Slots), a)
	}
	return a.Slots[0]
}

// newResource creates, through the admin API, a provider and a listing in
// Europe/Lisbon named after id and a resource id on it. slot is the slot
// object (`{"unit":"night"}`); ttlSeconds 0 keeps the default hold TTL.
func (n *testNode) newResource(t *testing.T, id, slot string, capacity, ttlSeconds int) {
	t.Helper()
	n.mustJSON(t, "POST", "/v1/admin/providers", jsonHeader(), fmt.Sprintf(`{"id":"prv-%s","name":"Provider of %s"}`, id, id), http.StatusCreated, nil)
	n.mustJSON(t, "POST", "/v1/admin/listings", jsonHeader(),
		fmt.Sprintf(`{"id":"lst-%s","provider_id":"prv-%s","kind":"accommodation","name":"Listing of %s","city":"Lisbon","time_zone":"Europe/Lisbon"}`, id, id, id),
		http.StatusCreated, nil)
	ttl := ""
	if ttlSeconds > 0 {
		ttl = fmt.Sprintf(`,"hold_ttl_seconds":%d`, ttlSeconds)
	}
	var got struct {
		ID       string `json:"id"`
		Capacity int    `json:"capacity"`
	}
	n.mustJSON(t, "POST", "/v1/admin/listings/lst-"+id+"/resources", jsonHeader(),
		fmt.Sprintf(`{"id":%q,"name":"Resource %s","slot":%s,"capacity":%d%s}`, id, id, slot, capacity, ttl), http.StatusCreated, &got)
	if got.ID != id || got.Capacity != capacity {
		t.Fatalf("created resource %+v, want id %s capacity %d", got, id, capacity)
	}
}

// placeHold posts a hold and wants 201.
func (n *testNode) placeHold(t *testing.T, header http.Header, body string) holdDoc {
	t.Helper()
	var h holdDoc
	r := n.mustJSON(t, "POST", "/v1/holds", header, body, http.StatusCreated, &h)
	if loc := r.Header.Get("Location"); loc != "/v1/holds/"+h.ID {
		t.Errorf("POST /v1/holds Location = %q, want /v1/holds/%s", loc, h.ID)
	}
	return h
}

// eventually polls cond until it returns true or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errorBudget reports the first few of many similar errors and counts the
// rest, so that one broken invariant does not print two thousand lines.
type errorBudget struct {
	t      *testing.T
	show   int
	n      int
	hidden int
}

func (b *errorBudget) Errorf(format string, args ...any) {
	b.t.Helper()
	b.n++
	if b.n > b.show {
		b.hidden++
		return
	}
	b.t.Errorf(format, args...)
}

// flush reports how many errors were not shown since the last flush.
func (b *errorBudget) flush() {
	b.t.Helper()
	if b.hidden > 0 {
		b.t.Errorf("… and %d more errors like these", b.hidden)
		b.hidden = 0
	}
}
