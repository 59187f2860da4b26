package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bookd/bookd/persistence"
)

// liveClient is a WebSocket client that keeps a liveView of one topic and
// records every protocol break.
type liveClient struct {
	t     *testing.T
	topic string
	from  string
	to    string

	mu    sync.Mutex
	view  *liveView
	conn  *websocket.Conn
	types map[string]int
	errs  []string
	done  chan struct{}
}

// dialLive connects to base's /v1/ws and subscribes to topic, resuming
// from the view's positions when it has any.
func (c *liveClient) dial(base string) {
	c.t.Helper()
	u, err := liveURL(base)
	if err != nil {
		c.t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		c.t.Fatalf("dial %s: %v", u, err)
	}
	c.mu.Lock()
	msg := c.view.subscribeMsg(c.topic, c.from, c.to)
	c.conn, c.done = conn, make(chan struct{})
	done := c.done
	c.mu.Unlock()
	if err := conn.WriteJSON(msg); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		defer close(done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m liveMsg
			if err := json.Unmarshal(data, &m); err != nil {
				c.fail("undecodable %s", data)
				continue
			}
			c.mu.Lock()
			c.types[m.Type]++
			if m.Type == "error" {
				c.errs = append(c.errs, fmt.Sprintf("error message %s: %s", m.Code, m.Detail))
			}
			if err := c.view.apply(m); err != nil {
				c.errs = append(c.errs, err.Error())
			}
			c.mu.Unlock()
		}
	}()
}

func newLiveClient(t *testing.T, base, topic, from, to string) *liveClient {
	c := &liveClient{t: t, topic: topic, from: from, to: to, view: newLiveView(), types: map[string]int{}}
	c.dial(base)
	t.Cleanup(c.drop)
	return c
}

func (c *liveClient) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// drop closes the connection abruptly and waits for the reader.
func (c *liveClient) drop() {
	c.mu.Lock()
	conn, done := c.conn, c.done
	c.mu.Unlock()
	conn.Close()
	<-done
}

// slots returns the view's slots of resource id as "start:free/held/confirmed".
func (c *liveClient) slots(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.view.resources[id]
	if r == nil {
		return "none"
	}
	var b strings.Builder
	for _, s := range sortedSlots(r.Slots) {
		fmt.Fprintf(&b, "%s:%d/%d/%d ", s.Start, s.Free, s.Held, s.Confirmed)
	}
	return b.String()
}

func sortedSlots(m map[string]liveSlot) []liveSlot {
	out := make([]liveSlot, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Start < out[i].Start {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// restSlots reads resource id's availability over REST in the same form.
func restSlots(t *testing.T, client *http.Client, base, id, from, to string) string {
	var doc struct {
		Slots []liveSlot `json:"slots"`
	}
	if st := getJSON(client, fmt.Sprintf("%s/v1/resources/%s/availability?from=%s&to=%s", base, id, from, to), &doc); st != http.StatusOK {
		t.Fatalf("GET availability of %s = %d", id, st)
	}
	m := map[string]liveSlot{}
	for _, s := range doc.Slots {
		m[s.Start] = s
	}
	var b strings.Builder
	for _, s := range sortedSlots(m) {
		fmt.Fprintf(&b, "%s:%d/%d/%d ", s.Start, s.Free, s.Held, s.Confirmed)
	}
	return b.String()
}

func postJSON(client *http.Client, url string, body any) (int, map[string]any) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	resp, err := client.Post(url, "application/json", rd)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestLiveAcrossCluster is the acceptance 1, 2 and 4 on the
// cluster profile (three processes, PostgreSQL, real Redis): clients on
// node 1 and node 2 watch a listing while 1,000 holds, confirmations and
// cancels go through all three nodes; halfway, the client on node 1 drops
// its connection and resumes from its last positions. In the end each
// client's snapshot plus deltas equal the availability every node reports,
// and no delta ever failed to follow the one before (nothing missed,
// nothing applied twice).
func TestLiveAcrossCluster(t *testing.T) {
	c := newTestCluster(t, 3)
	store := c.openStore(t)
	ctx := t.Context()
	const listing = "live-hotel"
	if err := store.CreateProvider(ctx, persistence.Provider{ID: "live-prov", Name: "Live"}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateListing(ctx, persistence.Listing{ID: listing, ProviderID: "live-prov", Kind: persistence.KindAccommodation, Name: "Live hotel", City: "Lisbon", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("live-room-%d", i)
		ids = append(ids, id)
		if err := store.CreateResource(ctx, persistence.Resource{ID: id, ListingID: listing, Name: id, Unit: persistence.SlotNight, Capacity: 4, HoldTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	day := func(n int) string { return time.Now().UTC().AddDate(0, 0, 20+n).Format("2006-01-02") }
	from, to := day(0), day(10)
	nodes := c.running()
	onA := newLiveClient(t, nodes[0].base(), "listing:"+listing, from, to)
	onB := newLiveClient(t, nodes[1].base(), "listing:"+listing, from, to)
	waitSnap := func(cl *liveClient) {
		eventually(t, 30*time.Second, "the first snapshot", func() bool {
			cl.mu.Lock()
			defer cl.mu.Unlock()
			return len(cl.view.resources) == len(ids)
		})
	}
	waitSnap(onA)
	waitSnap(onB)

	const total = 1000
	var ops atomic.Int64
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ops.Load() < total; i++ {
				base := nodes[(w+i)%len(nodes)].base()
				a := rng.IntN(9)
				status, hold := postJSON(c.client, base+"/v1/holds", map[string]any{
					"resource_id": ids[rng.IntN(len(ids))], "from": day(a), "to": day(a + 1 + rng.IntN(10-a)), "quantity": 1})
				ops.Add(1)
				if status != http.StatusCreated && status != http.StatusOK {
					continue // sold out
				}
				hid, _ := hold["id"].(string)
				next := nodes[(w+i+1)%len(nodes)].base()
				switch rng.IntN(3) {
				case 0:
					postJSON(c.client, next+"/v1/holds/"+hid+"/confirm", nil)
					ops.Add(1)
				case 1:
					postJSON(c.client, next+"/v1/holds/"+hid+"/cancel", nil)
					ops.Add(1)
				}
			}
		})
	}
	// Halfway, the client on node 1 drops and resumes while changes go on.
	eventually(t, 2*time.Minute, "half of the operations", func() bool { return ops.Load() >= total/2 })
	onA.drop()
	onA.dial(nodes[0].base())
	wg.Wait()
	t.Logf("%d operations", ops.Load())

	for _, cl := range []*liveClient{onA, onB} {
		for _, id := range ids {
			want := restSlots(t, c.client, nodes[2].base(), id, from, to)
			eventually(t, 30*time.Second, "the client's view of "+id+" to equal GET availability", func() bool { return cl.slots(id) == want })
		}
		cl.mu.Lock()
		if len(cl.errs) > 0 {
			t.Errorf("protocol breaks: %v", cl.errs[:min(len(cl.errs), 5)])
		}
		t.Logf("client saw %v, applied %d deltas", cl.types, cl.view.deltas)
		cl.mu.Unlock()
	}
	onA.mu.Lock()
	resumed := onA.types["resumed"]
	onA.mu.Unlock()
	if resumed != 1 {
		t.Errorf("the client that dropped halfway got %d resumed answers, want 1 (its missed deltas from the node's ring)", resumed)
	}
}
