package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The acceptance tests of issue 2 through HTTP: each starts a whole node in
// this process and checks what a client sees.

// slowMachine gives a request more time to reach its resource than the
// default 5 s: these tests check what the resource decides, and a loaded CI
// machine running -race must not turn a queue into 503s.
var slowMachine = []string{"--request-timeout", "30s"}

// holdOutcome is what one concurrent POST /v1/holds got.
type holdOutcome struct {
	status  int
	problem string // the problem type, for errors
	hold    holdDoc
	err     error
}

// placeConcurrently posts every body at once (all goroutines released
// together) and returns the outcomes in the order of bodies.
func (n *testNode) placeConcurrently(bodies []string) []holdOutcome {
	out := make([]holdOutcome, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			<-start
			r, err := n.send("POST", "/v1/holds", jsonHeader(), body)
			o := holdOutcome{status: r.Status, err: err}
			switch {
			case err != nil:
			case r.Status == http.StatusCreated:
				o.err = json.Unmarshal(r.Body, &o.hold)
			default:
				p, perr := asProblem(r)
				o.problem, o.err = p.Type, perr
			}
			out[i] = o
		})
	}
	close(start)
	wg.Wait()
	return out
}

// Done when 4: 2,000 concurrent holds of 1 unit on a resource of capacity
// 50 → exactly 50 × 201, the rest 409 sold-out, availability shows 0 free.
func TestConcurrentHoldsNeverOversell(t *testing.T) {
	forEachStore(t, func(t *testing.T, store []string) {
		concurrentHoldsNeverOversell(t, startNode(t, append(store, slowMachine...)...))
	})
}

func concurrentHoldsNeverOversell(t *testing.T, n *testNode) {
	const capacity, clients = 50, 2000
	n.newResource(t, "flash-pool", `{"unit":"single"}`, capacity, 0)

	bodies := make([]string, clients)
	for i := range bodies {
		bodies[i] = `{"resource_id":"flash-pool","quantity":1}`
	}
	outcomes := n.placeConcurrently(bodies)

	ids := map[string]bool{}
	soldOut := 0
	errs := &errorBudget{t: t, show: 10}
	for i, o := range outcomes {
		switch {
		case o.err != nil:
			errs.Errorf("hold %d: %d: %v", i, o.status, o.err)
		case o.status == http.StatusCreated:
			if o.hold.Status != "held" || o.hold.Quantity != 1 || o.hold.ResourceID != "flash-pool" || !strings.HasPrefix(o.hold.ID, "flash-pool.") {
				errs.Errorf("hold %d = %+v, want a held hold of 1 on flash-pool", i, o.hold)
			}
			if ids[o.hold.ID] {
				errs.Errorf("hold id %s answered twice", o.hold.ID)
			}
			ids[o.hold.ID] = true
		case o.status == http.StatusConflict && o.problem == "/problems/sold-out":
			soldOut++
		default:
			errs.Errorf("hold %d = %d %s, want 201 or 409 /problems/sold-out", i, o.status, o.problem)
		}
	}
	errs.flush()
	if len(ids) != capacity || soldOut != clients-capacity {
		t.Errorf("%d concurrent holds on capacity %d: %d × 201 and %d × 409 sold-out, want %d and %d",
			clients, capacity, len(ids), soldOut, capacity, clients-capacity)
	}
	if got := n.singleSlot(t, "flash-pool"); got != (slotDoc{Free: 0, Held: capacity}) {
		t.Errorf("availability after the sale = %+v, want free 0, held %d", got, capacity)
	}
	// Every hold that was answered yes is there.
	for id := range ids {
		var h holdDoc
		n.mustJSON(t, "GET", "/v1/holds/"+id, nil, "", http.StatusOK, &h)
		if h.ID != id || h.Status != "held" {
			errs.Errorf("GET /v1/holds/%s = %+v, want it held", id, h)
		}
	}
	errs.flush()
}

// Done when 4, second part: quantities above 1 on night ranges that overlap.
func TestConcurrentNightHoldsNeverOversell(t *testing.T) {
	forEachStore(t, func(t *testing.T, store []string) {
		concurrentNightHoldsNeverOversell(t, startNode(t, append(store, slowMachine...)...))
	})
}

func concurrentNightHoldsNeverOversell(t *testing.T, n *testNode) {
	const capacity, clients, nights = 25, 400, 10
	n.newResource(t, "flash-nights", `{"unit":"night"}`, capacity, 0)
	first := time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)
	date := func(i int) string { return first.AddDate(0, 0, i).Format(time.DateOnly) }

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2031))
	type ask struct{ from, to, qty int } // nights [from, to) of the window
	asks := make([]ask, clients)
	bodies := make([]string, clients)
	for i := range asks {
		from := rng.IntN(nights)
		to := from + 1 + rng.IntN(min(4, nights-from))
		asks[i] = ask{from, to, 1 + rng.IntN(3)}
		bodies[i] = fmt.Sprintf(`{"resource_id":"flash-nights","from":%q,"to":%q,"quantity":%d}`, date(from), date(to), asks[i].qty)
	}
	outcomes := n.placeConcurrently(bodies)

	var granted [nights]int
	var refused []ask
	yes := 0
	errs := &errorBudget{t: t, show: 10}
	for i, o := range outcomes {
		a := asks[i]
		switch {
		case o.err != nil:
			errs.Errorf("hold %d: %d: %v", i, o.status, o.err)
		case o.status == http.StatusCreated:
			if o.hold.Quantity != a.qty || o.hold.From != date(a.from) || o.hold.To != date(a.to) || o.hold.Status != "held" {
				errs.Errorf("hold %d = %+v, want %d held on %s..%s", i, o.hold, a.qty, date(a.from), date(a.to))
			}
			yes++
			for d := a.from; d < a.to; d++ {
				granted[d] += a.qty
			}
		case o.status == http.StatusConflict && o.problem == "/problems/sold-out":
			refused = append(refused, a)
		default:
			errs.Errorf("hold %d = %d %s, want 201 or 409 /problems/sold-out", i, o.status, o.problem)
		}
	}

	errs.flush()
	av := n.availability(t, "flash-nights", date(0), date(nights))
	if len(av.Slots) != nights || av.Capacity != capacity {
		t.Fatalf("availability = %+v, want %d nights of capacity %d", av, nights, capacity)
	}
	full := 0
	for d, s := range av.Slots {
		if s.Start != date(d) {
			t.Errorf("slot %d starts %q, want %s", d, s.Start, date(d))
		}
		if s.Held != granted[d] || s.Held > capacity || s.Free != capacity-s.Held || s.Confirmed != 0 {
			t.Errorf("night %s = %+v; the 201 answers hold %d of capacity %d", date(d), s, granted[d], capacity)
		}
		if s.Free == 0 {
			full++
		}
	}
	if full == 0 {
		t.Errorf("no night is full (%v): the test did not contend", granted)
	}
	// Units are only ever taken here, so a refusal was right only if some
	// night of its range has fewer free units now than it asked for.
	for _, a := range refused {
		justified := false
		for d := a.from; d < a.to; d++ {
			justified = justified || av.Slots[d].Free < a.qty
		}
		if !justified {
			errs.Errorf("hold of %d on %s..%s was refused sold-out, but every night has at least that many free", a.qty, date(a.from), date(a.to))
		}
	}
	errs.flush()
	t.Logf("%d granted, %d sold out, %d of %d nights full", yes, len(refused), full, nights)
}

// Done when 6: the same Idempotency-Key twice → one hold, the same answer.
func TestIdempotentHolds(t *testing.T) {
	n := startNode(t)
	n.newResource(t, "idem-pool", `{"unit":"single"}`, 5, 0)
	body := `{"resource_id":"idem-pool","quantity":1}`

	first := n.do(t, "POST", "/v1/holds", keyHeader("order-1"), body)
	second := n.do(t, "POST", "/v1/holds", keyHeader("order-1"), body)
	if first.Status != http.StatusCreated || second.Status != http.StatusCreated {
		t.Fatalf("the same key twice = %v then %v, want 201 twice", first, second)
	}
	if string(first.Body) != string(second.Body) || first.Header.Get("Location") != second.Header.Get("Location") {
		t.Errorf("the same key twice answered\n%s\nthen\n%s\nwant the same answer", first.Body, second.Body)
	}
	var h holdDoc
	if err := json.Unmarshal(first.Body, &h); err != nil || h.Status != "held" || h.Quantity != 1 {
		t.Fatalf("hold = %s (%v), want held ×1", first.Body, err)
	}
	if got := n.singleSlot(t, "idem-pool"); got != (slotDoc{Free: 4, Held: 1}) {
		t.Errorf("availability after one key twice = %+v, want 1 held, 4 free", got)
	}

	// The same key with another body is refused and changes nothing.
	r := n.do(t, "POST", "/v1/holds", keyHeader("order-1"), `{"resource_id":"idem-pool","quantity":2}`)
	wantProblem(t, "the same key with quantity 2", r, http.StatusUnprocessableEntity, "/problems/idempotency-conflict", "")
	if got := n.singleSlot(t, "idem-pool"); got != (slotDoc{Free: 4, Held: 1}) {
		t.Errorf("availability after a conflicting key = %+v, want 1 held, 4 free", got)
	}
	var again holdDoc
	n.mustJSON(t, "GET", "/v1/holds/"+h.ID, nil, "", http.StatusOK, &again)
	if again.Quantity != 1 || again.Status != "held" {
		t.Errorf("the first hold after a conflicting key = %+v, want held ×1", again)
	}

	// A retry storm: one key sent by many clients at once is one hold. A
	// retry that arrives while the first is decided but not committed is
	// told so (409 idempotency-in-flight, Retry-After); the others get the
	// hold, and so does a retry after the storm.
	const retries = 25
	answers := make([]response, retries)
	errs := make([]error, retries)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range retries {
		wg.Go(func() {
			<-start
			answers[i], errs[i] = n.send("POST", "/v1/holds", keyHeader("order-2"), body)
		})
	}
	close(start)
	wg.Wait()
	after := n.placeHold(t, keyHeader("order-2"), body)
	created := 0
	for i, a := range answers {
		switch {
		case errs[i] != nil:
			t.Errorf("retry %d of order-2: %v", i, errs[i])
		case a.Status == http.StatusCreated:
			created++
			var h holdDoc
			if err := json.Unmarshal(a.Body, &h); err != nil || h.ID != after.ID {
				t.Errorf("retry %d of order-2 = %v, want hold %s", i, a, after.ID)
			}
		case a.Status == http.StatusConflict:
			if p := wantProblem(t, fmt.Sprintf("retry %d of order-2", i), a, http.StatusConflict, "/problems/idempotency-in-flight", ""); p.Type != "" && a.Header.Get("Retry-After") == "" {
				t.Errorf("retry %d of order-2 in flight has no Retry-After", i)
			}
		default:
			t.Errorf("retry %d of order-2 = %v, want 201 or 409 in flight", i, a)
		}
	}
	if created == 0 {
		t.Errorf("no retry of order-2 got the hold")
	}
	if got := n.singleSlot(t, "idem-pool"); got != (slotDoc{Free: 3, Held: 2}) {
		t.Errorf("availability after %d concurrent retries of one key = %+v, want 2 held, 3 free", retries, got)
	}
	// Without a key, the same body is a new hold each time.
	n.placeHold(t, jsonHeader(), body)
	if got := n.singleSlot(t, "idem-pool"); got != (slotDoc{Free: 2, Held: 3}) {
		t.Errorf("availability after a hold without a key = %+v, want 3 held, 2 free", got)
	}
}

// Done when 8: bad input → a 4xx problem that names the field; nothing
// changes.
func TestBadInputChangesNothing(t *testing.T) {
	n := startNode(t)
	n.newResource(t, "bad-single", `{"unit":"single"}`, 5, 0)
	n.newResource(t, "bad-night", `{"unit":"night"}`, 2, 0)
	n.newResource(t, "bad-table", `{"unit":"minutes","minutes":30}`, 1, 0)
	held := n.placeHold(t, jsonHeader(), `{"resource_id":"bad-single"}`)
	watched := []struct{ id, from, to string }{
		{"bad-single", "", ""},
		{"bad-night", "2031-06-01", "2031-07-01"},
		{"bad-table", "2031-06-01T00:00:00+01:00", "2031-06-02T00:00:00+01:00"},
	}
	snapshot := func() []availabilityDoc {
		var out []availabilityDoc
		for _, w := range watched {
			out = append(out, n.availability(t, w.id, w.from, w.to))
		}
		return out
	}
	before := snapshot()

	unknownHold := "bad-single.aaaaaaaaaaaaaaaaaaaa"
	tests := []struct {
		name         string
		method, path string
		header       http.Header
		body         string
		wantStatus   int
		wantType     string
		wantField    string
	}{
		{"malformed JSON", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single"`, 400, "/problems/invalid-request", "body"},
		{"not JSON", "POST", "/v1/holds", jsonHeader(), `resource_id=bad-single`, 400, "/problems/invalid-request", "body"},
		{"empty body", "POST", "/v1/holds", jsonHeader(), ``, 400, "/problems/invalid-request", "body"},
		{"array body", "POST", "/v1/holds", jsonHeader(), `[{"resource_id":"bad-single"}]`, 400, "/problems/invalid-request", "body"},
		{"two values", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single"}{"resource_id":"bad-single"}`, 400, "/problems/invalid-request", "body"},
		{"unknown field", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","qty":1}`, 400, "/problems/invalid-request", "qty"},
		{"field with an empty name", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","":1}`, 400, "/problems/invalid-request", "body"},
		{"quantity 0", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","quantity":0}`, 400, "/problems/invalid-request", "quantity"},
		{"quantity -1", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","quantity":-1}`, 400, "/problems/invalid-request", "quantity"},
		{"quantity as string", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","quantity":"2"}`, 400, "/problems/invalid-request", "quantity"},
		{"quantity 1.5", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","quantity":1.5}`, 400, "/problems/invalid-request", "quantity"},
		{"quantity over capacity", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","quantity":6}`, 400, "/problems/invalid-request", "quantity"},
		{"from = to", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-night","from":"2031-06-05","to":"2031-06-05"}`, 400, "/problems/invalid-request", "to"},
		{"from after to", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-night","from":"2031-06-07","to":"2031-06-05"}`, 400, "/problems/invalid-request", "to"},
		{"from = to on minute slots", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-table","from":"2031-06-01T19:00:00+01:00","to":"2031-06-01T19:00:00+01:00"}`, 400, "/problems/invalid-request", "to"},
		{"nights without to", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-night","from":"2031-06-05"}`, 400, "/problems/invalid-request", "to"},
		{"nights without a range", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-night"}`, 400, "/problems/invalid-request", "from"},
		{"over 1000 nights", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-night","from":"2031-06-01","to":"2034-06-01"}`, 400, "/problems/invalid-request", "to"},
		{"nights in the past", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-night","from":"2020-01-01","to":"2020-01-02"}`, 400, "/problems/invalid-request", "from"},
		{"unknown resource", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"no-such-resource"}`, 400, "/problems/invalid-request", "resource_id"},
		{"malformed resource id", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"Bad_Single"}`, 400, "/problems/invalid-request", "resource_id"},
		{"missing resource id", "POST", "/v1/holds", jsonHeader(), `{"quantity":1}`, 400, "/problems/invalid-request", "resource_id"},
		{"a date for minute slots", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-table","from":"2031-06-01","to":"2031-06-02"}`, 400, "/problems/invalid-request", "from"},
		{"a time for nights", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-night","from":"2031-06-01T15:00:00+01:00","to":"2031-06-03T11:00:00+01:00"}`, 400, "/problems/invalid-request", "from"},
		{"a time off the slot grid", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-table","from":"2031-06-01T19:10:00+01:00","to":"2031-06-01T20:00:00+01:00"}`, 400, "/problems/invalid-request", "from"},
		{"from on a single slot", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","from":"2031-06-01","to":"2031-06-02"}`, 400, "/problems/invalid-request", "from"},
		{"to on a single slot", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","to":"2031-06-02"}`, 400, "/problems/invalid-request", "to"},
		{"no Content-Type", "POST", "/v1/holds", nil, `{"resource_id":"bad-single"}`, 415, "/problems/unsupported-media-type", ""},
		{"text/plain", "POST", "/v1/holds", http.Header{"Content-Type": {"text/plain"}}, `{"resource_id":"bad-single"}`, 415, "/problems/unsupported-media-type", ""},
		{"body over the limit", "POST", "/v1/holds", jsonHeader(), `{"resource_id":"bad-single","from":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "/problems/payload-too-large", ""},
		{"Idempotency-Key with a space", "POST", "/v1/holds", keyHeader("order 1"), `{"resource_id":"bad-single"}`, 400, "/problems/invalid-request", "Idempotency-Key"},
		{"Idempotency-Key too long", "POST", "/v1/holds", keyHeader(strings.Repeat("k", 256)), `{"resource_id":"bad-single"}`, 400, "/problems/invalid-request", "Idempotency-Key"},
		{"unknown listing", "GET", "/v1/listings/no-such-listing", nil, "", 404, "/problems/not-found", ""},
		{"malformed listing id", "GET", "/v1/listings/No_Such", nil, "", 404, "/problems/not-found", ""},
		{"unknown hold", "GET", "/v1/holds/" + unknownHold, nil, "", 404, "/problems/not-found", ""},
		{"hold of an unknown resource", "GET", "/v1/holds/no-such-resource.aaaaaaaaaaaaaaaaaaaa", nil, "", 404, "/problems/not-found", ""},
		{"malformed hold id", "GET", "/v1/holds/nonsense", nil, "", 404, "/problems/not-found", ""},
		{"confirm an unknown hold", "POST", "/v1/holds/" + unknownHold + "/confirm", nil, "", 404, "/problems/not-found", ""},
		{"cancel an unknown hold", "POST", "/v1/holds/" + unknownHold + "/cancel", nil, "", 404, "/problems/not-found", ""},
		{"unknown hold action", "POST", "/v1/holds/" + held.ID + "/refund", nil, "", 404, "/problems/not-found", ""},
		{"DELETE /v1/holds", "DELETE", "/v1/holds", nil, "", 405, "/problems/method-not-allowed", ""},
		{"DELETE a hold", "DELETE", "/v1/holds/" + held.ID, nil, "", 405, "/problems/method-not-allowed", ""},
		{"unknown path", "GET", "/v1/nothing-here", nil, "", 404, "/problems/not-found", ""},
		{"listings limit 0", "GET", "/v1/listings?limit=0", nil, "", 400, "/problems/invalid-request", "limit"},
		{"listings bad cursor", "GET", "/v1/listings?cursor=garbage", nil, "", 400, "/problems/invalid-request", "cursor"},
		{"listings unknown parameter", "GET", "/v1/listings?sort=name", nil, "", 400, "/problems/invalid-request", "sort"},
		{"availability without to", "GET", "/v1/resources/bad-night/availability?from=2031-06-01", nil, "", 400, "/problems/invalid-request", "to"},
		{"availability with a time for nights", "GET", "/v1/resources/bad-night/availability?from=2031-06-01T00:00:00Z&to=2031-06-02T00:00:00Z", nil, "", 400, "/problems/invalid-request", "from"},
		{"availability with a nameless parameter", "GET", "/v1/resources/bad-night/availability?=x", nil, "", 400, "/problems/invalid-request", "query"},
		{"listings with a nameless parameter", "GET", "/v1/listings?=x", nil, "", 400, "/problems/invalid-request", "query"},
		{"availability of an unknown resource", "GET", "/v1/resources/no-such-resource/availability", nil, "", 404, "/problems/not-found", ""},
		{"unknown resource", "GET", "/v1/resources/no-such-resource", nil, "", 404, "/problems/not-found", ""},
		{"resource on an unknown listing", "POST", "/v1/admin/listings/no-such-listing/resources", jsonHeader(), `{"name":"x","slot":{"unit":"single"},"capacity":1}`, 404, "/problems/not-found", ""},
		{"listing of an unknown provider", "POST", "/v1/admin/listings", jsonHeader(), `{"provider_id":"no-such-provider","kind":"event","name":"x","city":"y","time_zone":"UTC"}`, 400, "/problems/invalid-request", "provider_id"},
		{"resource with a bad slot", "POST", "/v1/admin/listings/lst-bad-single/resources", jsonHeader(), `{"name":"x","slot":{"unit":"minutes","minutes":7},"capacity":1}`, 400, "/problems/invalid-request", "slot.minutes"},
		{"resource with a taken id", "POST", "/v1/admin/listings/lst-bad-single/resources", jsonHeader(), `{"id":"bad-night","name":"x","slot":{"unit":"single"},"capacity":1}`, 409, "/problems/conflict", "id"},
	}
	for _, tt := range tests {
		r := n.do(t, tt.method, tt.path, tt.header, tt.body)
		what := tt.name + ": " + tt.method + " " + tt.path
		p := wantProblem(t, what, r, tt.wantStatus, tt.wantType, tt.wantField)
		if tt.wantStatus == 405 && !strings.Contains(r.Header.Get("Allow"), "POST") && !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Errorf("%s: Allow = %q, want the methods the path takes", what, r.Header.Get("Allow"))
		}
		if tt.wantStatus == 400 && p.field() == "" {
			t.Errorf("%s: a 400 that names no field: %v", what, r)
		}
		after := snapshot()
		for i := range watched {
			if !equalAvailability(before[i], after[i]) {
				t.Fatalf("%s changed the availability of %s:\nbefore %+v\nafter  %+v", what, watched[i].id, before[i], after[i])
			}
		}
	}
	if r := n.do(t, "DELETE", "/v1/holds", nil, ""); r.Header.Get("Allow") != "POST" {
		t.Errorf("DELETE /v1/holds Allow = %q, want POST", r.Header.Get("Allow"))
	}
	var h holdDoc
	n.mustJSON(t, "GET", "/v1/holds/"+held.ID, nil, "", http.StatusOK, &h)
	if h.Status != "held" {
		t.Errorf("the one good hold is %q after bad requests, want held", h.Status)
	}

	// A resource that did not exist when a hold named it can be held once
	// it is created.
	r := n.do(t, "POST", "/v1/holds", jsonHeader(), `{"resource_id":"late-resource"}`)
	wantProblem(t, "hold on late-resource before it exists", r, 400, "/problems/invalid-request", "resource_id")
	n.newResource(t, "late-resource", `{"unit":"single"}`, 1, 0)
	eventually(t, 10*time.Second, "late-resource can be held once created", func() bool {
		r, err := n.send("POST", "/v1/holds", jsonHeader(), `{"resource_id":"late-resource"}`)
		return err == nil && r.Status == http.StatusCreated
	})
}

func equalAvailability(a, b availabilityDoc) bool {
	return a.ResourceID == b.ResourceID && a.Capacity == b.Capacity && a.Seq == b.Seq && a.Epoch == b.Epoch && slices.Equal(a.Slots, b.Slots)
}

// A hold is held, confirmed, cancelled; and one that nobody confirms
// expires by itself.
func TestHoldLifecycle(t *testing.T) {
	n := startNode(t)
	n.newResource(t, "life-pool", `{"unit":"single"}`, 3, 0)

	h := n.placeHold(t, jsonHeader(), `{"resource_id":"life-pool"}`)
	if h.Status != "held" || h.Quantity != 1 || h.ExpiresAt == "" {
		t.Fatalf("new hold = %+v, want held ×1 with expires_at", h)
	}
	if exp, err := time.Parse(time.RFC3339, h.ExpiresAt); err != nil || time.Until(exp) < 9*time.Minute || time.Until(exp) > 11*time.Minute {
		t.Errorf("new hold expires_at = %q (%v), want about 10 minutes from now", h.ExpiresAt, err)
	}
	if got := n.singleSlot(t, "life-pool"); got != (slotDoc{Free: 2, Held: 1}) {
		t.Errorf("availability with one hold = %+v, want 1 held, 2 free", got)
	}

	var c holdDoc
	n.mustJSON(t, "POST", "/v1/holds/"+h.ID+"/confirm", nil, "", http.StatusOK, &c)
	if c.ID != h.ID || c.Status != "confirmed" || c.ExpiresAt != "" {
		t.Errorf("confirm = %+v, want confirmed without expires_at", c)
	}
	n.mustJSON(t, "GET", "/v1/holds/"+h.ID, nil, "", http.StatusOK, &c)
	if c.Status != "confirmed" {
		t.Errorf("GET after confirm = %+v, want confirmed", c)
	}
	n.mustJSON(t, "POST", "/v1/holds/"+h.ID+"/confirm", nil, "", http.StatusOK, &c)
	if c.Status != "confirmed" {
		t.Errorf("confirm twice = %+v, want confirmed", c)
	}
	if got := n.singleSlot(t, "life-pool"); got != (slotDoc{Free: 2, Confirmed: 1}) {
		t.Errorf("availability after confirm = %+v, want 1 confirmed, 2 free", got)
	}

	n.mustJSON(t, "POST", "/v1/holds/"+h.ID+"/cancel", nil, "", http.StatusOK, &c)
	if c.Status != "cancelled" {
		t.Errorf("cancel = %+v, want cancelled", c)
	}
	if got := n.singleSlot(t, "life-pool"); got != (slotDoc{Free: 3}) {
		t.Errorf("availability after cancel = %+v, want all 3 free", got)
	}
	r := n.do(t, "POST", "/v1/holds/"+h.ID+"/confirm", nil, "")
	wantProblem(t, "confirm after cancel", r, http.StatusConflict, "/problems/hold-not-active", "")
	n.mustJSON(t, "POST", "/v1/holds/"+h.ID+"/cancel", nil, "", http.StatusOK, &c)
	if c.Status != "cancelled" {
		t.Errorf("cancel twice = %+v, want cancelled", c)
	}
	if got := n.singleSlot(t, "life-pool"); got != (slotDoc{Free: 3}) {
		t.Errorf("availability after confirm-after-cancel = %+v, want all 3 free", got)
	}

	// A hold that lives one second expires by itself.
	n.newResource(t, "life-short", `{"unit":"single"}`, 1, 1)
	e := n.placeHold(t, jsonHeader(), `{"resource_id":"life-short"}`)
	if got := n.singleSlot(t, "life-short"); got.Held+got.Free != 1 {
		t.Errorf("availability with a short hold = %+v, want capacity 1", got)
	}
	eventually(t, 20*time.Second, "the 1 s hold is freed", func() bool {
		return n.singleSlot(t, "life-short") == slotDoc{Free: 1}
	})
	var x holdDoc
	n.mustJSON(t, "GET", "/v1/holds/"+e.ID, nil, "", http.StatusOK, &x)
	if x.Status != "expired" || x.ExpiresAt != e.ExpiresAt {
		t.Errorf("GET an expired hold = %+v, want expired at %s", x, e.ExpiresAt)
	}
	r = n.do(t, "POST", "/v1/holds/"+e.ID+"/confirm", nil, "")
	wantProblem(t, "confirm an expired hold", r, http.StatusConflict, "/problems/hold-expired", "")
	if got := n.singleSlot(t, "life-short"); got != (slotDoc{Free: 1}) {
		t.Errorf("availability after confirming an expired hold = %+v, want 1 free", got)
	}
	// The freed unit can be held again.
	n.placeHold(t, jsonHeader(), `{"resource_id":"life-short"}`)
}

// listingDoc is a listing as GET /v1/listings/{id} shows it.
type listingDoc struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	City      string `json:"city"`
	TimeZone  string `json:"time_zone"`
	Resources []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Slot struct {
			Unit    string `json:"unit"`
			Minutes int    `json:"minutes"`
		} `json:"slot"`
		Capacity int `json:"capacity"`
	} `json:"resources"`
}

// The demo catalog pages through GET /v1/listings and shows its resources.
func TestListings(t *testing.T) {
	n := startNode(t, "--demo=true")
	_, demo, _ := demoCatalog()
	var want []string
	for _, l := range demo {
		want = append(want, l.ID)
	}
	slices.Sort(want)

	var got []string
	seen := map[string]bool{}
	path := "/v1/listings?limit=2"
	for page := 0; ; page++ {
		if page > len(want) {
			t.Fatalf("more than %d pages of 2 for %d listings", page, len(want))
		}
		var p struct {
			Items      []listingDoc     `json:"items"`
			NextCursor *json.RawMessage `json:"next_cursor"`
		}
		r := n.mustJSON(t, "GET", path, nil, "", http.StatusOK, &p)
		if !strings.Contains(string(r.Body), `"next_cursor":`) {
			t.Errorf("GET %s = %s, want a next_cursor field", path, r.Body)
		}
		if len(p.Items) == 0 || len(p.Items) > 2 {
			t.Errorf("GET %s has %d items, want 1 or 2", path, len(p.Items))
		}
		for _, l := range p.Items {
			if seen[l.ID] {
				t.Errorf("listing %s on two pages", l.ID)
			}
			seen[l.ID] = true
			got = append(got, l.ID)
		}
		if p.NextCursor == nil || string(*p.NextCursor) == "null" {
			break
		}
		var c string
		if err := json.Unmarshal(*p.NextCursor, &c); err != nil || c == "" {
			t.Fatalf("GET %s next_cursor = %s, want a string or null", path, *p.NextCursor)
		}
		path = "/v1/listings?limit=2&cursor=" + c
	}
	if !slices.Equal(got, want) {
		t.Errorf("paging with limit=2 gave %v, want %v in id order", got, want)
	}

	var all struct {
		Items      []listingDoc `json:"items"`
		NextCursor *string      `json:"next_cursor"`
	}
	n.mustJSON(t, "GET", "/v1/listings?limit=100", nil, "", http.StatusOK, &all)
	if len(all.Items) != len(want) || all.NextCursor != nil {
		t.Errorf("one page of 100 = %d items, next_cursor %v, want %d and null", len(all.Items), all.NextCursor, len(want))
	}
	var lisbon struct {
		Items []listingDoc `json:"items"`
	}
	n.mustJSON(t, "GET", "/v1/listings?city=Lisbon&kind=restaurant", nil, "", http.StatusOK, &lisbon)
	if len(lisbon.Items) != 1 || lisbon.Items[0].ID != "tasca-do-chico" {
		t.Errorf("restaurants in Lisbon = %+v, want tasca-do-chico", lisbon.Items)
	}

	type res struct {
		unit     string
		minutes  int
		capacity int
	}
	for _, c := range []struct {
		listing, kind, tz string
		resources         map[string]res
	}{
		{"hotel-alfama", "accommodation", "Europe/Lisbon", map[string]res{
			"hotel-alfama-room-101": {"night", 0, 1}, "hotel-alfama-standard": {"night", 0, 20}}},
		{"tasca-do-chico", "restaurant", "Europe/Lisbon", map[string]res{"tasca-table-1": {"minutes", 30, 1}}},
		{"velodrom-concert", "event", "Europe/Berlin", map[string]res{"concert-standing": {"single", 0, 5000}}},
		{"bus-berlin-hamburg", "transport", "Europe/Berlin", map[string]res{"bus-berlin-hamburg-seat-01": {"single", 0, 1}}},
	} {
		var l listingDoc
		n.mustJSON(t, "GET", "/v1/listings/"+c.listing, nil, "", http.StatusOK, &l)
		if l.ID != c.listing || l.Kind != c.kind || l.TimeZone != c.tz || l.Name == "" || l.City == "" {
			t.Errorf("GET /v1/listings/%s = %+v, want kind %s in %s", c.listing, l, c.kind, c.tz)
		}
		found := map[string]res{}
		for _, r := range l.Resources {
			if r.Name == "" {
				t.Errorf("listing %s resource %s has no name", c.listing, r.ID)
			}
			found[r.ID] = res{r.Slot.Unit, r.Slot.Minutes, r.Capacity}
		}
		for id, want := range c.resources {
			if found[id] != want {
				t.Errorf("listing %s resource %s = %+v, want %+v", c.listing, id, found[id], want)
			}
		}
	}
}
