package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bookd/bookd/cluster"
	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/sqlite"
)

func TestActorProblem(t *testing.T) {
	tests := []struct {
		err        *bookdv1.Error
		wantStatus int
		wantType   string
		wantField  string
		wantRetry  int
	}{
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT, Detail: "the slot has 0 free, 1 asked"}, 409, "/problems/sold-out", "", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_HOLD_EXPIRED, Detail: "hold x expired"}, 409, "/problems/hold-expired", "", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND, Detail: "hold x does not exist"}, 404, "/problems/not-found", "", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND, Field: "resource_id", Detail: "no such resource"}, 400, "/problems/invalid-request", "resource_id", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Field: "from", Detail: "is not a date"}, 400, "/problems/invalid-request", "from", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Detail: "something is off"}, 400, "/problems/invalid-request", "", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT, Detail: "other parameters"}, 422, "/problems/idempotency-conflict", "", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE, Detail: "cancelled"}, 409, "/problems/hold-not-active", "", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE, Detail: "retry"}, 503, "/problems/unavailable", "", 1},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_IN_FLIGHT, Detail: "still being placed"}, 409, "/problems/idempotency-in-flight", "", 1},
		{&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_UNSPECIFIED, Detail: "?"}, 500, "/problems/internal", "", 0},
		{&bookdv1.Error{Code: bookdv1.ErrorCode(99), Detail: "from the future"}, 500, "/problems/internal", "", 0},
		{nil, 500, "/problems/internal", "", 0},
	}
	covered := map[bookdv1.ErrorCode]bool{}
	for _, tt := range tests {
		covered[tt.err.GetCode()] = true
		p := actorProblem(tt.err)
		if p.Status != tt.wantStatus || p.Type != tt.wantType || problemField(p) != tt.wantField || p.retryAfter != tt.wantRetry {
			t.Errorf("actorProblem(%v) = %d %s field %q retry %d, want %d %s field %q retry %d",
				tt.err, p.Status, p.Type, problemField(p), p.retryAfter, tt.wantStatus, tt.wantType, tt.wantField, tt.wantRetry)
		}
		if k, ok := problemsBySlug[strings.TrimPrefix(p.Type, "/problems/")]; !ok || k.title != p.Title || k.status != p.Status {
			t.Errorf("actorProblem(%v) = %s %q %d, which is not in the problem catalog", tt.err, p.Type, p.Title, p.Status)
		}
		if tt.err.GetDetail() != "" && !strings.Contains(p.Detail, tt.err.GetDetail()) {
			t.Errorf("actorProblem(%v).Detail = %q, want it to carry %q", tt.err, p.Detail, tt.err.GetDetail())
		}
	}
	// A new error code must get a mapping and a row here.
	for n := range bookdv1.ErrorCode_name {
		if !covered[bookdv1.ErrorCode(n)] {
			t.Errorf("actorProblem: error code %v has no test", bookdv1.ErrorCode(n))
		}
	}
}

func TestErrorProblem(t *testing.T) {
	own := newProblem(probSoldOut, "x")
	tests := []struct {
		err        error
		wantStatus int
		wantType   string
		wantRetry  int
	}{
		{own, 409, "/problems/sold-out", 0},
		{fmt.Errorf("wrapped: %w", own), 409, "/problems/sold-out", 0},
		{fmt.Errorf("listing x: %w", persistence.ErrNotFound), 404, "/problems/not-found", 0},
		{fmt.Errorf("listing x: %w", persistence.ErrExists), 409, "/problems/conflict", 0},
		{fmt.Errorf("listing x: %w", persistence.ErrPrecondition), 412, "/problems/precondition-failed", 0},
		{fmt.Errorf("%w: resource/x: timeout", cluster.ErrUnavailable), 503, "/problems/unavailable", 1},
		{errors.New("disk on fire"), 500, "/problems/internal", 0},
	}
	for _, tt := range tests {
		p := errorProblem(tt.err)
		if p.Status != tt.wantStatus || p.Type != tt.wantType || p.retryAfter != tt.wantRetry {
			t.Errorf("errorProblem(%v) = %d %s retry %d, want %d %s retry %d", tt.err, p.Status, p.Type, p.retryAfter, tt.wantStatus, tt.wantType, tt.wantRetry)
		}
	}
	if p := errorProblem(errors.New("secret path /var/lib/x")); strings.Contains(p.Detail, "secret") {
		t.Errorf("errorProblem(internal) leaks %q to the client", p.Detail)
	}
}

func TestProblemCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range problemCatalog {
		if seen[k.slug] {
			t.Errorf("problem slug %q is in the catalog twice", k.slug)
		}
		seen[k.slug] = true
		if k.title == "" || k.explain == "" || k.status < 400 || k.status > 599 || !validID(k.slug) {
			t.Errorf("problem %+v: want a slug, a title, an explanation and a 4xx/5xx status", k)
		}
	}
}

func TestWriteProblem(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/holds", nil)
	p := actorProblem(&bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE, Detail: "moving"})
	writeProblem(w, r, p)
	if w.Code != 503 || w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Retry-After") != "1" {
		t.Errorf("writeProblem = %d %q Retry-After %q, want 503 application/problem+json Retry-After 1",
			w.Code, w.Header().Get("Content-Type"), w.Header().Get("Retry-After"))
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("writeProblem wrote %q: %v", w.Body, err)
	}
	if got["type"] != "/problems/unavailable" || got["title"] != "Service unavailable" || got["status"] != 503.0 || got["instance"] != "/v1/holds" {
		t.Errorf("writeProblem wrote %v, want type, title, status and instance", got)
	}
	if _, ok := got["retryAfter"]; ok {
		t.Errorf("writeProblem wrote the private retryAfter: %v", got)
	}
}

// fakeActors answers requests with reply and records what it was sent,
// and within what timeout.
type fakeActors struct {
	reply    func(kind, identity string, msg any) (any, error)
	sent     []any
	timeouts []time.Duration
}

func (f *fakeActors) RequestWithin(_ context.Context, timeout time.Duration, kind, identity string, msg any) (any, error) {
	f.sent = append(f.sent, msg)
	f.timeouts = append(f.timeouts, timeout)
	return f.reply(kind, identity, msg)
}

// testArgon2 is cheap: tests hash many passwords.
var testArgon2 = Argon2{MemoryKiB: 64, Time: 1, Threads: 1}

func openTestStore(dir string) (*sqlite.Store, error) {
	return sqlite.Open(context.Background(), filepath.Join(dir, "bookd.db"), sqlite.Options{})
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestServer serves over a fresh SQLite store, with cheap password
// hashing and no rate limits.
func newTestServer(t *testing.T, actors Actors) *Server {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bookd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Argon2 = testArgon2
	cfg.RateLimits = map[string]Rate{ClassDefault: {}, ClassLogin: {}, ClassHolds: {}}
	s, err := New(cfg, st, actors)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// testUser creates a user of role and returns its id and an access token.
func testUser(t *testing.T, s *Server, role persistence.Role) (id, token string) {
	t.Helper()
	u := persistence.User{ID: NewUserID(), Email: newID("u") + "@example.com", Role: role, PasswordHash: testArgon2.hashPassword("password-123")}
	if err := s.store.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.keys.sign(u)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, tok
}

// withAuth returns h with a customer's bearer token.
func withAuth(t *testing.T, s *Server, h http.Header) http.Header {
	t.Helper()
	_, tok := testUser(t, s, persistence.RoleCustomer)
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+tok)
	return h
}

// serve runs one request through s and decodes a problem answer.
func serve(s *Server, method, path string, header http.Header, body string) (*httptest.ResponseRecorder, *Problem) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Header().Get("Content-Type") != "application/problem+json" {
		return w, nil
	}
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		return w, nil
	}
	return w, &p
}

func TestRoutingProblems(t *testing.T) {
	s := newTestServer(t, &fakeActors{reply: func(string, string, any) (any, error) { return nil, errors.New("not reached") }})
	tests := []struct {
		method, path string
		wantStatus   int
		wantType     string
		wantAllow    string
	}{
		{"GET", "/nowhere", 404, "/problems/not-found", ""},
		{"GET", "/v1/holds/not-a-hold-id", 404, "/problems/not-found", ""},
		{"POST", "/v1/holds/r.aaaaaaaaaaaaaaaaaaaa/refund", 404, "/problems/not-found", ""},
		{"DELETE", "/v1/holds", 405, "/problems/method-not-allowed", "POST"},
		{"PUT", "/v1/listings", 405, "/problems/method-not-allowed", "GET, HEAD"},
		{"GET", "/problems/nope", 404, "/problems/not-found", ""},
	}
	for _, tt := range tests {
		w, p := serve(s, tt.method, tt.path, withAuth(t, s, nil), "")
		if p == nil || w.Code != tt.wantStatus || p.Status != tt.wantStatus || p.Type != tt.wantType || p.Title == "" {
			t.Errorf("%s %s = %d %q %+v, want a %d %s problem", tt.method, tt.path, w.Code, w.Header().Get("Content-Type"), p, tt.wantStatus, tt.wantType)
			continue
		}
		if got := w.Header().Get("Allow"); got != tt.wantAllow {
			t.Errorf("%s %s Allow = %q, want %q", tt.method, tt.path, got, tt.wantAllow)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s has no X-Content-Type-Options: nosniff", tt.method, tt.path)
		}
	}
	// A path that is not clean is redirected to the clean one, routed or
	// not, keeping the method (as net/http's ServeMux does); HEAD is
	// served by the GET route.
	for _, tt := range []struct{ method, path, want string }{
		{"GET", "//v1/listings", "/v1/listings"},
		{"GET", "/v1/../nowhere", "/nowhere"},
		{"POST", "//v1/holds", "/v1/holds"},
	} {
		if w, _ := serve(s, tt.method, tt.path, nil, ""); w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != tt.want {
			t.Errorf("%s %s = %d to %q, want 307 to %s", tt.method, tt.path, w.Code, w.Header().Get("Location"), tt.want)
		}
	}
	if w, _ := serve(s, "HEAD", "/livez", nil, ""); w.Code != http.StatusOK {
		t.Errorf("HEAD /livez = %d, want 200", w.Code)
	}
}

func TestProblemDocs(t *testing.T) {
	s := newTestServer(t, nil)
	for _, k := range problemCatalog {
		w, _ := serve(s, "GET", "/problems/"+k.slug, nil, "")
		var doc struct {
			Type, Title, Description string
			Status                   int
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || w.Code != 200 {
			t.Errorf("GET /problems/%s = %d %q, want 200 JSON", k.slug, w.Code, w.Body)
			continue
		}
		if doc.Type != "/problems/"+k.slug || doc.Title != k.title || doc.Status != k.status || doc.Description == "" {
			t.Errorf("GET /problems/%s = %+v, want its catalog entry", k.slug, doc)
		}
	}
}

func TestPlaceHoldHandler(t *testing.T) {
	json := http.Header{"Content-Type": {"application/json"}}
	withKey := func(k string) http.Header {
		h := json.Clone()
		h.Set("Idempotency-Key", k)
		return h
	}
	notFound := func(string, string, any) (any, error) {
		return &bookdv1.HoldReply{Error: &bookdv1.Error{Code: bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND, Detail: "resource x does not exist"}}, nil
	}
	tests := []struct {
		name       string
		header     http.Header
		body       string
		reply      func(kind, identity string, msg any) (any, error)
		wantStatus int
		wantType   string
		wantField  string
		wantSent   bool
	}{
		{name: "unknown resource names resource_id", header: json, body: `{"resource_id":"nope"}`, reply: notFound,
			wantStatus: 400, wantType: "/problems/invalid-request", wantField: "resource_id", wantSent: true},
		{name: "bad key is refused before the actor", header: withKey("has space"), body: `{"resource_id":"r"}`,
			wantStatus: 400, wantType: "/problems/invalid-request", wantField: "Idempotency-Key"},
		{name: "bad body is refused before the actor", header: json, body: `{"resource_id":"r","quantity":0}`,
			wantStatus: 400, wantType: "/problems/invalid-request", wantField: "quantity"},
		{name: "cluster unavailable", header: json, body: `{"resource_id":"r"}`,
			reply:      func(string, string, any) (any, error) { return nil, cluster.ErrUnavailable },
			wantStatus: 503, wantType: "/problems/unavailable", wantSent: true},
		{name: "wrong reply type", header: json, body: `{"resource_id":"r"}`,
			reply:      func(string, string, any) (any, error) { return &bookdv1.AvailabilityReply{}, nil },
			wantStatus: 500, wantType: "/problems/internal", wantSent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := &fakeActors{reply: tt.reply}
			if fa.reply == nil {
				fa.reply = func(string, string, any) (any, error) { return nil, errors.New("not reached") }
			}
			s := newTestServer(t, fa)
			w, p := serve(s, "POST", "/v1/holds", withAuth(t, s, tt.header), tt.body)
			if p == nil || w.Code != tt.wantStatus || p.Type != tt.wantType || problemField(p) != tt.wantField {
				t.Errorf("POST /v1/holds %s = %d %s, want %d %s naming %q", tt.body, w.Code, w.Body, tt.wantStatus, tt.wantType, tt.wantField)
			}
			if got := len(fa.sent) > 0; got != tt.wantSent {
				t.Errorf("POST /v1/holds %s reached the actor: %v, want %v", tt.body, got, tt.wantSent)
			}
		})
	}
}

func TestPlaceHoldSendsDerivedHoldID(t *testing.T) {
	var got *bookdv1.PlaceHold
	fa := &fakeActors{reply: func(kind, identity string, msg any) (any, error) {
		got = msg.(*bookdv1.PlaceHold)
		if kind != resourceKind || identity != "hotel-alfama-standard" {
			return nil, fmt.Errorf("sent to %s/%s", kind, identity)
		}
		return &bookdv1.HoldReply{Hold: &bookdv1.Hold{HoldId: got.HoldId, ResourceId: identity, Status: bookdv1.HoldStatus_HOLD_STATUS_HELD,
			Quantity: got.Quantity, From: got.From, To: got.To}}, nil
	}}
	s := newTestServer(t, fa)
	user, tok := testUser(t, s, persistence.RoleCustomer)
	h := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"order-42"}, "Authorization": {"Bearer " + tok}}
	w, _ := serve(s, "POST", "/v1/holds", h, `{"resource_id":"hotel-alfama-standard","from":"2031-03-01","to":"2031-03-04","quantity":2}`)
	if w.Code != 201 {
		t.Fatalf("POST /v1/holds = %d %s, want 201", w.Code, w.Body)
	}
	// The hold id is derived from the user and the key: keys are per user.
	want := &bookdv1.PlaceHold{HoldId: newHoldID("hotel-alfama-standard", user, "order-42"), From: "2031-03-01", To: "2031-03-04", Quantity: 2, Owner: user}
	if got.HoldId != want.HoldId || got.From != want.From || got.To != want.To || got.Quantity != want.Quantity || got.Owner != user || got.Fingerprint == "" {
		t.Errorf("POST /v1/holds sent %v, want %v", got, want)
	}
	if loc := w.Header().Get("Location"); loc != "/v1/holds/"+want.HoldId {
		t.Errorf("POST /v1/holds Location = %q, want /v1/holds/%s", loc, want.HoldId)
	}
}
