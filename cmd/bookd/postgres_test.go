package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bookd/bookd/persistence/testserver"
)

// buyer is one hold attempt of a sale, named by its Idempotency-Key so that
// its outcome can always be learned by asking again.
type buyer struct {
	key    string
	status int // 201, 409, or anything else for "no answer known"
	id     string
}

// tryKeyedHold asks for qty units of resource under key; status 0 means no
// HTTP answer at all.
func tryKeyedHold(c *http.Client, base, resource, key string, qty int) (int, string) {
	req, err := http.NewRequest("POST", base+"/v1/holds", strings.NewReader(fmt.Sprintf(`{"resource_id":%q,"quantity":%d}`, resource, qty)))
	if err != nil {
		return 0, ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var h holdAnswer
	if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&h) != nil {
		return 0, ""
	}
	return resp.StatusCode, h.ID
}

// known reports whether a buyer's outcome is definite.
func (b *buyer) known() bool {
	return b.status == http.StatusCreated || b.status == http.StatusConflict
}

// resolve asks again, with the same key, for every buyer whose answer was
// lost: a retry is safe, so afterwards every buyer knows yes or no.
func resolve(t *testing.T, c *http.Client, base, resource string, qty int, buyers []*buyer) (retried int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, b := range buyers {
		if b.known() {
			continue
		}
		retried++
		for !b.known() {
			if time.Now().After(deadline) {
				t.Fatalf("buyer %s still has no answer after 60 s of retries (last status %d)", b.key, b.status)
			}
			b.status, b.id = tryKeyedHold(c, base, resource, b.key, qty)
			if !b.known() {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return retried
}

func yesCount(buyers []*buyer) int {
	n := 0
	for _, b := range buyers {
		if b.status == http.StatusCreated {
			n++
		}
	}
	return n
}

// terminateBackends ends every server connection to dbURL's database but the
// caller's and returns how many it ended.
func terminateBackends(ctx context.Context, admin *pgx.Conn, dbURL string) (int, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return 0, err
	}
	var n int
	err = admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, strings.TrimPrefix(u.Path, "/")).Scan(&n)
	return n, err
}

// TestPostgresBackendsTerminatedMidSale: while buyers hold on one hot
// resource, the node's database connections are terminated again and again
// (pg_terminate_backend), batches in flight included. No buyer is told yes
// for anything that was not committed, nothing is oversold, and the
// resource serves again afterwards: once the buyers whose answers were lost
// ask again with their keys, the units taken equal the yeses exactly.
func TestPostgresBackendsTerminatedMidSale(t *testing.T) {
	pg := testserver.PostgresT(t)
	dbURL := testserver.DatabaseT(t)
	n := startNode(t, "--postgres", dbURL, "--request-timeout", "30s")
	const capacity, buyers = 1000, 1200
	n.newResource(t, "pg-flash", `{"unit":"single"}`, capacity, 0)

	admin, err := pgx.Connect(t.Context(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	all := make([]*buyer, buyers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < buyers; i = int(next.Add(1)) - 1 {
				b := &buyer{key: fmt.Sprintf("pg-fault-%d", i)}
				b.status, b.id = tryKeyedHold(n.signed(), n.base, "pg-flash", b.key, 1)
				all[i] = b
			}
		})
	}
	killed := 0
	for range 8 {
		time.Sleep(40 * time.Millisecond)
		k, err := terminateBackends(t.Context(), admin, dbURL)
		if err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		killed += k
	}
	wg.Wait()
	if killed == 0 {
		t.Fatal("no backend was terminated: the fault never happened")
	}
	lost := 0
	for _, b := range all {
		if !b.known() {
			lost++
		}
	}

	// Every yes given during the faults is in the store.
	firstYes := 0
	for _, b := range all {
		if b.status != http.StatusCreated {
			continue
		}
		firstYes++
		var h holdDoc
		if r := n.mustJSON(t, "GET", "/v1/holds/"+b.id, nil, "", http.StatusOK, &h); h.Status != "held" {
			t.Errorf("GET /v1/holds/%s after the faults = %v, want held: a yes that was not committed", b.id, r)
		}
	}
	retried := resolve(t, n.signed(), n.base, "pg-flash", 1, all)
	yes := yesCount(all)
	t.Logf("%d backends terminated; %d yes during the faults, %d answers lost and asked again, %d yes in all", killed, firstYes, lost, yes)
	if retried != lost {
		t.Errorf("retried %d buyers, want the %d whose answer was lost", retried, lost)
	}
	got := n.singleSlot(t, "pg-flash")
	if got.Held+got.Confirmed != yes || got.Held+got.Confirmed > capacity || got.Free != capacity-got.Held-got.Confirmed {
		t.Errorf("after the sale = %+v with %d buyers told yes, capacity %d: want taken == yes ≤ capacity", got, yes, capacity)
	}
	// The resource serves again: a cancel frees a unit and a new hold takes it.
	if code := n.do(t, "POST", "/v1/holds/"+firstYesID(all)+"/cancel", nil, "").Status; code != http.StatusOK {
		t.Fatalf("cancel after the faults = %d, want 200", code)
	}
	if code, _ := tryKeyedHold(n.signed(), n.base, "pg-flash", "pg-fault-after", 1); code != http.StatusCreated {
		t.Errorf("a new hold after the faults = %d, want 201", code)
	}
}

func firstYesID(all []*buyer) string {
	for _, b := range all {
		if b.status == http.StatusCreated {
			return b.id
		}
	}
	return ""
}

// TestPostgresSIGKILLDuringSale: the node is killed with SIGKILL in the
// middle of a sale on PostgreSQL. After a restart, once the buyers whose
// answers were lost ask again with their keys, the units held and confirmed
// equal exactly what buyers were told yes to: nothing lost, nothing extra.
func TestPostgresSIGKILLDuringSale(t *testing.T) {
	dbURL := testserver.DatabaseT(t)
	p := startBookd(t, t.TempDir(), "--postgres", dbURL)
	base := "http://" + p.addr
	const capacity, qty = 600, 2
	createResource(t, base, "velodrom-concert", "pg-kill", capacity, 3600)

	client := &http.Client{Timeout: 5 * time.Second}
	var mu sync.Mutex
	var all []*buyer
	confirmed := map[string]bool{} // hold id → the buyer was told it is confirmed
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				b := &buyer{key: fmt.Sprintf("pg-kill-%d-%d", w, i)}
				b.status, b.id = tryKeyedHold(client, base, "pg-kill", b.key, qty)
				ok := b.status == http.StatusCreated && i%2 == 0 && tryConfirm(client, base, b.id)
				mu.Lock()
				all = append(all, b)
				if ok {
					confirmed[b.id] = true
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(400 * time.Millisecond)
	_ = p.kill(t, syscall.SIGKILL)
	stop.Store(true)
	wg.Wait()

	p2 := startBookd(t, t.TempDir(), "--postgres", dbURL)
	base = "http://" + p2.addr
	for _, b := range all {
		if b.status != http.StatusCreated {
			continue
		}
		var h holdAnswer
		want := "held"
		if confirmed[b.id] {
			want = "confirmed"
		}
		if code := call(t, "GET", base+"/v1/holds/"+b.id, nil, &h); code != 200 || (h.Status != want && !(want == "held" && h.Status == "confirmed")) {
			t.Errorf("after restart GET /v1/holds/%s = %d %q, want %s", b.id, code, h.Status, want)
		}
	}
	retried := resolve(t, client, base, "pg-kill", qty, all)
	yes := yesCount(all)
	t.Logf("%d attempts, %d told yes (%d confirmed), %d answers lost at the kill and asked again", len(all), yes, len(confirmed), retried)
	if yes == 0 {
		t.Fatal("no buyer was told yes before the kill: the sale never ran")
	}
	var a availabilityAnswer
	call(t, "GET", base+"/v1/resources/pg-kill/availability", nil, &a)
	s := a.Slots[0]
	if s.Held+s.Confirmed != qty*yes || s.Held+s.Confirmed > capacity {
		t.Errorf("after restart pg-kill takes %d units (held %d, confirmed %d), want exactly the %d × %d told yes, at most %d",
			s.Held+s.Confirmed, s.Held, s.Confirmed, yes, qty, capacity)
	}
	if s.Confirmed < qty*len(confirmed) {
		t.Errorf("after restart pg-kill has %d confirmed units, want at least the %d × %d told confirmed", s.Confirmed, len(confirmed), qty)
	}
}
