package main

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// createResources creates count single-slot resources named prefix-0 … on
// one listing, straight in the store (the admin API would take a request
// each), and returns their ids.
func createResources(t *testing.T, store persistence.Catalog, prefix string, count, capacity int) []string {
	t.Helper()
	ctx := t.Context()
	if err := store.CreateProvider(ctx, persistence.Provider{ID: "prv-" + prefix, Name: prefix}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateListing(ctx, persistence.Listing{ID: "lst-" + prefix, ProviderID: "prv-" + prefix, Kind: persistence.KindEvent,
		Name: prefix, City: "Lisbon", TimeZone: "Europe/Lisbon"}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, count)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < count; i = int(next.Add(1)) - 1 {
				ids[i] = fmt.Sprintf("%s-%d", prefix, i)
				if err := store.CreateResource(ctx, persistence.Resource{ID: ids[i], ListingID: "lst-" + prefix, Name: ids[i],
					Unit: persistence.SlotSingle, Capacity: capacity, HoldTTL: time.Hour}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// saleBuyer is one hold attempt of a sale, named by its Idempotency-Key.
type saleBuyer struct {
	key, resource string
	status        int // 201, 409 or anything else while not known
	id            string
	confirmed     bool // told the booking is confirmed
}

// clusterSale is a flash sale over several resources, driven through the
// nodes that entry returns. Every answer that is not a decision (201 or
// 409 for a hold, 200 for a confirm) is a client-visible error: counted,
// and the request is asked again with the same key until it is decided,
// as a client following the API's advice would.
type clusterSale struct {
	client    *http.Client
	resources []string
	qty       int
	// entry picks the node for the attempt-th request; "" means none now.
	entry func(attempt int) string

	attempts  atomic.Int64
	decided   atomic.Int64
	answered  atomic.Int64 // client-visible errors with an HTTP answer (5xx …)
	transport atomic.Int64 // client-visible errors without one (refused, reset)
	stop      atomic.Bool

	mu      sync.Mutex
	buyers  []*saleBuyer
	samples []string // the first few errors
}

// run drives the sale with workers until stop is set or maxAttempts
// buyers have come; it returns when every worker has finished its buyer.
func (s *clusterSale) run(workers, maxAttempts int, prefix string) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !s.stop.Load() {
				i := int(s.attempts.Add(1)) - 1
				if i >= maxAttempts {
					return
				}
				b := &saleBuyer{key: fmt.Sprintf("%s-%d", prefix, i), resource: s.resources[i%len(s.resources)]}
				s.hold(b, i)
				if b.status == http.StatusCreated && i%3 == 0 {
					s.confirm(b, i)
				}
				s.mu.Lock()
				s.buyers = append(s.buyers, b)
				s.mu.Unlock()
			}
		})
	}
	return wg.Wait
}

// hold asks until the hold is decided.
func (s *clusterSale) hold(b *saleBuyer, attempt int) {
	s.ask(attempt, "hold "+b.key, func(base string) (int, bool) {
		b.status, b.id = tryKeyedHold(s.client, base, b.resource, b.key, s.qty)
		return b.status, b.status == http.StatusCreated || b.status == http.StatusConflict
	})
	if b.status == http.StatusCreated || b.status == http.StatusConflict {
		s.decided.Add(1)
	}
}

// confirm asks until the confirmation is answered 200.
func (s *clusterSale) confirm(b *saleBuyer, attempt int) {
	s.ask(attempt, "confirm "+b.id, func(base string) (int, bool) {
		code := confirmStatus(s.client, base, b.id)
		b.confirmed = code == http.StatusOK
		return code, b.confirmed
	})
}

// ask sends one request through the entry nodes until try reports it
// decided, or 60 s of retries have passed; every other answer is a
// client-visible error.
func (s *clusterSale) ask(attempt int, what string, try func(base string) (status int, decided bool)) {
	deadline := time.Now().Add(60 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		base := s.entry(attempt + n)
		if base == "" {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		status, decided := try(base)
		if decided {
			return
		}
		s.visible(fmt.Sprintf("%s via %s: %d", what, base, status), status)
		time.Sleep(50 * time.Millisecond)
	}
}

func confirmStatus(c *http.Client, base, id string) int {
	resp, err := c.Post(base+"/v1/holds/"+id+"/confirm", "application/json", nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (s *clusterSale) visible(what string, status int) {
	if status == 0 {
		s.transport.Add(1)
	} else {
		s.answered.Add(1)
	}
	s.mu.Lock()
	if len(s.samples) < 5 {
		s.samples = append(s.samples, what)
	}
	s.mu.Unlock()
}

// errors is the number of client-visible errors so far.
func (s *clusterSale) errors() int64 { return s.answered.Load() + s.transport.Load() }

func (s *clusterSale) report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d buyers, %d decided, client-visible errors: %d answered (5xx), %d without an answer; first: %v",
		len(s.buyers), s.decided.Load(), s.answered.Load(), s.transport.Load(), s.samples)
}

// check verifies the sale through base after it has ended: every buyer was
// decided; every yes is in the journal (held, or confirmed when the buyer
// was told so); on every resource the units taken are exactly the yeses
// and never more than capacity.
func (s *clusterSale) check(t *testing.T, base string, capacity int) (yes, confirmed int) {
	t.Helper()
	bad := &errorBudget{t: t, show: 5}
	perResource := map[string]int{}
	for _, b := range s.buyers {
		switch b.status {
		case http.StatusCreated:
		case http.StatusConflict:
			continue
		default:
			bad.Errorf("buyer %s was never decided (last status %d)", b.key, b.status)
			continue
		}
		yes++
		perResource[b.resource]++
		want := "held"
		if b.confirmed {
			want = "confirmed"
			confirmed++
		}
		var h holdAnswer
		if code := getJSON(s.client, base+"/v1/holds/"+b.id, &h); code != http.StatusOK ||
			(h.Status != want && !(want == "held" && h.Status == "confirmed")) {
			bad.Errorf("GET /v1/holds/%s = %d %q, want %s: a yes that was lost", b.id, code, h.Status, want)
		}
	}
	bad.flush()
	ids := append([]string(nil), s.resources...)
	sort.Strings(ids)
	for _, id := range ids {
		var a availabilityAnswer
		if code := getJSON(s.client, base+"/v1/resources/"+id+"/availability", &a); code != http.StatusOK || len(a.Slots) != 1 {
			bad.Errorf("availability of %s = %d %+v", id, code, a)
			continue
		}
		sl := a.Slots[0]
		if taken := sl.Held + sl.Confirmed; taken != s.qty*perResource[id] || taken > capacity {
			bad.Errorf("%s takes %d units (held %d, confirmed %d), want exactly the %d × %d told yes, at most %d",
				id, taken, sl.Held, sl.Confirmed, perResource[id], s.qty, capacity)
		}
	}
	bad.flush()
	return yes, confirmed
}

// roundRobin returns an entry function over the bases that ok accepts now.
func roundRobin(bases func() []string) func(int) string {
	return func(i int) string {
		b := bases()
		if len(b) == 0 {
			return ""
		}
		return b[i%len(b)]
	}
}

// waitFor polls cond every 20ms until it holds or within passes.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
