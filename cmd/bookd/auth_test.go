package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence/testserver"
)

// TestOwnership: a customer sees and changes only its own holds; a provider
// changes only its own listings and resources; the changes of providers and
// admins are in the audit log — on both stores.
func TestOwnership(t *testing.T) {
	forEachStore(t, func(t *testing.T, store []string) {
		n := startNode(t, store...)
		n.newResource(t, "own-room", `{"unit":"single"}`, 5, 0)
		mine := n.placeHold(t, keyHeader("own-1"), `{"resource_id":"own-room","quantity":1}`)
		other := n.newCustomer(t)

		// Another customer: the hold does not exist for it.
		for _, tt := range []struct{ method, path string }{
			{"GET", "/v1/holds/" + mine.ID},
			{"POST", "/v1/holds/" + mine.ID + "/confirm"},
			{"POST", "/v1/holds/" + mine.ID + "/cancel"},
		} {
			r := n.do(t, tt.method, tt.path, bearer(nil, other), "")
			wantProblem(t, "another customer's "+tt.method+" "+tt.path, r, http.StatusNotFound, "/problems/not-found", "")
		}
		// The owner and an admin see it; it is still held (nothing above changed it).
		var h holdDoc
		n.mustJSON(t, "GET", "/v1/holds/"+mine.ID, nil, "", http.StatusOK, &h)
		n.mustJSON(t, "GET", "/v1/holds/"+mine.ID, bearer(nil, n.admin), "", http.StatusOK, &h)
		if h.Status != "held" {
			t.Errorf("the hold after the others tried = %s, want held", h.Status)
		}
		// The same Idempotency-Key by another customer is another hold.
		var theirs holdDoc
		n.mustJSON(t, "POST", "/v1/holds", bearer(keyHeader("own-1"), other), `{"resource_id":"own-room","quantity":1}`, http.StatusCreated, &theirs)
		if theirs.ID == mine.ID {
			t.Errorf("two customers' holds with one Idempotency-Key are the same hold %s: keys must be per user", mine.ID)
		}

		// Providers.
		p1ID, p1 := n.register(t, "provider")
		_, p2 := n.register(t, "provider")
		n.mustJSON(t, "POST", "/v1/admin/providers", bearer(jsonHeader(), p1), `{"id":"prv-p1","name":"P1"}`, http.StatusCreated, nil)
		n.mustJSON(t, "POST", "/v1/admin/listings", bearer(jsonHeader(), p1),
			`{"id":"lst-p1","provider_id":"prv-p1","kind":"event","name":"P1's","city":"Porto","time_zone":"Europe/Lisbon"}`, http.StatusCreated, nil)
		n.mustJSON(t, "POST", "/v1/admin/listings/lst-p1/resources", bearer(jsonHeader(), p1),
			`{"id":"res-p1","name":"Seat","slot":{"unit":"single"},"capacity":3}`, http.StatusCreated, nil)
		ifMatch := bearer(jsonHeader(), p2)
		ifMatch.Set("If-Match", `"v1"`)
		for _, tt := range []struct {
			what, method, path string
			header             http.Header
			body               string
		}{
			{"a listing on another's provider", "POST", "/v1/admin/listings", bearer(jsonHeader(), p2),
				`{"id":"lst-p2","provider_id":"prv-p1","kind":"event","name":"Not mine","city":"Porto","time_zone":"Europe/Lisbon"}`},
			{"a resource on another's listing", "POST", "/v1/admin/listings/lst-p1/resources", bearer(jsonHeader(), p2),
				`{"id":"res-p2","name":"Seat","slot":{"unit":"single"},"capacity":3}`},
			{"a change of another's listing", "PATCH", "/v1/admin/listings/lst-p1", ifMatch, `{"name":"Mine now"}`},
			{"a provider owned by someone else", "POST", "/v1/admin/providers", bearer(jsonHeader(), p2), `{"id":"prv-x","name":"X","owner_id":"` + p1ID + `"}`},
			{"a customer in the admin API", "POST", "/v1/admin/providers", bearer(jsonHeader(), other), `{"id":"prv-c","name":"C"}`},
		} {
			r := n.do(t, tt.method, tt.path, tt.header, tt.body)
			wantProblem(t, tt.what, r, http.StatusForbidden, "/problems/forbidden", "")
		}
		var l struct{ Name string }
		n.mustJSON(t, "GET", "/v1/listings/lst-p1", nil, "", http.StatusOK, &l)
		if l.Name != "P1's" {
			t.Errorf("lst-p1 after the other provider tried = %q, want it unchanged", l.Name)
		}

		// The audit log has P1's changes, with who and from where.
		var audit struct {
			Items []struct {
				ActorID string `json:"actor_id"`
				Target  string `json:"target"`
				Remote  string `json:"remote"`
			} `json:"items"`
		}
		n.mustJSON(t, "GET", "/v1/admin/audit?limit=100", nil, "", http.StatusOK, &audit)
		found := 0
		for _, e := range audit.Items {
			if e.ActorID == p1ID && e.Remote == "127.0.0.1" && (e.Target == "prv-p1" || e.Target == "lst-p1" || e.Target == "res-p1") {
				found++
			}
		}
		if found != 3 {
			t.Errorf("the audit log has %d of P1's 3 changes: %+v", found, audit.Items)
		}
	})
}

// TestListingETag: GET gives the listing's ETag; PATCH needs If-Match,
// 412 on another version, and gives the next ETag.
func TestListingETag(t *testing.T) {
	n := startNode(t)
	n.newResource(t, "etag-room", `{"unit":"night"}`, 1, 0)
	r := n.mustJSON(t, "GET", "/v1/listings/lst-etag-room", nil, "", http.StatusOK, nil)
	etag := r.Header.Get("ETag")
	if etag != `"v1"` {
		t.Fatalf("GET /v1/listings/lst-etag-room ETag = %q, want \"v1\"", etag)
	}
	withIfMatch := func(v string) http.Header {
		h := jsonHeader()
		if v != "" {
			h.Set("If-Match", v)
		}
		return h
	}
	for _, tt := range []struct {
		ifMatch, typ string
		status       int
	}{
		{"", "/problems/precondition-required", http.StatusPreconditionRequired},
		{`"v7"`, "/problems/precondition-failed", http.StatusPreconditionFailed},
		{`W/"v1"`, "/problems/precondition-failed", http.StatusPreconditionFailed},
	} {
		r := n.do(t, "PATCH", "/v1/admin/listings/lst-etag-room", withIfMatch(tt.ifMatch), `{"name":"Renamed"}`)
		wantProblem(t, "PATCH with If-Match "+tt.ifMatch, r, tt.status, tt.typ, "")
	}
	r = n.mustJSON(t, "PATCH", "/v1/admin/listings/lst-etag-room", withIfMatch(etag), `{"name":"Renamed"}`, http.StatusOK, nil)
	if r.Header.Get("ETag") != `"v2"` {
		t.Errorf("PATCH ETag = %q, want \"v2\"", r.Header.Get("ETag"))
	}
	// The old ETag is stale now.
	r = n.do(t, "PATCH", "/v1/admin/listings/lst-etag-room", withIfMatch(etag), `{"name":"Again"}`)
	wantProblem(t, "PATCH with a stale ETag", r, http.StatusPreconditionFailed, "/problems/precondition-failed", "")
	var l struct{ Name string }
	r = n.mustJSON(t, "GET", "/v1/listings/lst-etag-room", nil, "", http.StatusOK, &l)
	if l.Name != "Renamed" || r.Header.Get("ETag") != `"v2"` {
		t.Errorf("GET after PATCH = %q ETag %q, want Renamed, \"v2\"", l.Name, r.Header.Get("ETag"))
	}
}

// TestRateLimitSharedByRedis: two nodes on one real Redis share a client's
// budget: 50 requests on each, then the 101st on either is a 429. (The
// limit's period is long so that no request comes back into the budget
// while the test runs; the per-minute arithmetic is edge.TestRateLimit's.)
func TestRateLimitSharedByRedis(t *testing.T) {
	rd := testserver.RedisT(t)
	limits := []string{"--redis", rd.URL(), "--rate-limit", "default=100/100h"}
	// One node in this process, one in its own (two in one process would
	// share protoactor's globals).
	a := startNode(t, limits...)
	b := startBookd(t, t.TempDir(), limits...)
	plain := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute} // anonymous: no procAuth
	t.Cleanup(plain.CloseIdleConnections)
	get := func(i int) response {
		if i%2 == 0 {
			return a.do(t, "GET", "/v1/listings", anonymous(nil), "")
		}
		res, err := plain.Get("http://" + b.addr + "/v1/listings")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return response{Status: res.StatusCode, Header: res.Header, Body: body}
	}
	// The nodes' readiness probes may have taken a request or two already:
	// from the first answer on, every request on either node takes one
	// from the same budget, down to 0.
	first := get(0)
	left, err := strconv.Atoi(first.Header.Get("RateLimit-Remaining"))
	if first.Status != http.StatusOK || err != nil || left < 90 {
		t.Fatalf("the first request = %v, RateLimit-Remaining %q; want 200 and about 99 left", first, first.Header.Get("RateLimit-Remaining"))
	}
	for i := 1; left > 0; i++ {
		left--
		r := get(i)
		if r.Status != http.StatusOK || r.Header.Get("RateLimit-Remaining") != fmt.Sprint(left) {
			t.Fatalf("request %d = %d, RateLimit-Remaining %q; want 200 and %d left in the shared budget", i+1, r.Status, r.Header.Get("RateLimit-Remaining"), left)
		}
	}
	for i := range 2 {
		r := get(i)
		wantProblem(t, "the 101st request", r, http.StatusTooManyRequests, "/problems/rate-limited", "")
		if r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Limit") != "100" {
			t.Errorf("the 101st request: Retry-After %q RateLimit-Limit %q, want both", r.Header.Get("Retry-After"), r.Header.Get("RateLimit-Limit"))
		}
	}
	// A signed-in client has a budget of its own.
	if r := a.do(t, "GET", "/v1/listings", nil, ""); r.Status != http.StatusOK {
		t.Errorf("a signed-in client after the anonymous one ran out = %v, want 200", r)
	}
}

// TestHoldIdempotencyClaims: every Idempotency-Key case of POST /v1/holds
// on a real node, with the claims in memory (on SQLite and on PostgreSQL)
// and in Redis: the same key and body give the same hold, another body on the
// same resource (the actor's fingerprint) or on another resource (the
// claim) is 422. (A key in flight, 409, needs a batch held back: the
// resource actor's TestPlaceInFlight; keys per user: TestOwnership.)
func TestHoldIdempotencyClaims(t *testing.T) {
	rd := testserver.RedisT(t)
	for _, tt := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"memory", func(*testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string { return []string{"--postgres", testserver.DatabaseT(t)} }},
		{"redis", func(*testing.T) []string { return []string{"--redis", rd.URL()} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t, tt.args(t)...)
			n.newResource(t, "idem-a", `{"unit":"single"}`, 5, 0)
			n.newResource(t, "idem-b", `{"unit":"single"}`, 5, 0)
			first := n.placeHold(t, keyHeader("k-1"), `{"resource_id":"idem-a","quantity":1}`)
			again := n.placeHold(t, keyHeader("k-1"), `{"resource_id":"idem-a","quantity":1}`)
			if again.ID != first.ID {
				t.Errorf("the same key and body = hold %s, then %s; want the first again", first.ID, again.ID)
			}
			r := n.do(t, "POST", "/v1/holds", keyHeader("k-1"), `{"resource_id":"idem-a","quantity":2}`)
			wantProblem(t, "the same key with another quantity", r, http.StatusUnprocessableEntity, "/problems/idempotency-conflict", "")
			r = n.do(t, "POST", "/v1/holds", keyHeader("k-1"), `{"resource_id":"idem-b","quantity":1}`)
			wantProblem(t, "the same key on another resource", r, http.StatusUnprocessableEntity, "/problems/idempotency-conflict", "")
			if s := n.singleSlot(t, "idem-a"); s.Held != 1 {
				t.Errorf("idem-a has %d held, want 1: one hold for one key", s.Held)
			}
			if s := n.singleSlot(t, "idem-b"); s.Held != 0 {
				t.Errorf("idem-b has %d held, want 0", s.Held)
			}
		})
	}
}
