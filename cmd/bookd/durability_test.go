package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type holdAnswer struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Quantity  int    `json:"quantity"`
	ExpiresAt string `json:"expires_at"`
}

type availabilityAnswer struct {
	Capacity int `json:"capacity"`
	Slots    []struct {
		Free, Held, Confirmed int
	} `json:"slots"`
}

func createResource(t *testing.T, base, listing, id string, capacity, ttlSeconds int) {
	t.Helper()
	body := map[string]any{"id": id, "name": id, "slot": map[string]string{"unit": "single"}, "capacity": capacity, "hold_ttl_seconds": ttlSeconds}
	if code := call(t, "POST", base+"/v1/admin/listings/"+listing+"/resources", body, nil); code != http.StatusCreated {
		t.Fatalf("create resource %s = %d, want 201", id, code)
	}
}

// TestSIGKILLDurability: holds and confirmations are made (some while the
// process is killed with SIGKILL); after a restart every confirmed booking
// and every unexpired hold that was answered "yes" is there, holds that
// expired while the node was down are freed, and no slot holds more than its
// capacity.
func TestSIGKILLDurability(t *testing.T) {
	dir := t.TempDir()
	p := startBookd(t, dir)
	base := "http://" + p.addr
	createResource(t, base, "velodrom-concert", "durable-long", 400, 3600)
	createResource(t, base, "velodrom-concert", "durable-short", 10, 2)

	// Settled before the kill: confirmed bookings, open holds, short holds.
	var confirmed, held, short []string
	for i := 0; i < 20; i++ {
		var h holdAnswer
		if code := call(t, "POST", base+"/v1/holds", map[string]any{"resource_id": "durable-long", "quantity": 2}, &h); code != 201 {
			t.Fatalf("hold %d = %d, want 201", i, code)
		}
		if i%2 == 0 {
			var c holdAnswer
			if code := call(t, "POST", base+"/v1/holds/"+h.ID+"/confirm", nil, &c); code != 200 || c.Status != "confirmed" {
				t.Fatalf("confirm %s = %d %q, want 200 confirmed", h.ID, code, c.Status)
			}
			confirmed = append(confirmed, h.ID)
		} else {
			held = append(held, h.ID)
		}
	}
	for i := 0; i < 3; i++ {
		var h holdAnswer
		if code := call(t, "POST", base+"/v1/holds", map[string]any{"resource_id": "durable-short", "quantity": 1}, &h); code != 201 {
			t.Fatalf("short hold = %d, want 201", code)
		}
		short = append(short, h.ID)
	}

	// In flight during the kill: clients keep holding and confirming.
	var mu sync.Mutex
	var yesHeld, yesConfirmed []string
	var stop atomic.Bool
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				id, ok := tryHold(client, base, "durable-long")
				if !ok {
					continue
				}
				if tryConfirm(client, base, id) {
					mu.Lock()
					yesConfirmed = append(yesConfirmed, id)
					mu.Unlock()
				} else {
					mu.Lock()
					yesHeld = append(yesHeld, id)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let the clients get going
	_ = p.kill(t, syscall.SIGKILL)
	stop.Store(true)
	wg.Wait()
	t.Logf("in flight at the kill: %d confirmed and %d held answered yes", len(yesConfirmed), len(yesHeld))

	// Let the short holds expire while the node is down.
	time.Sleep(2500 * time.Millisecond)

	p2 := startBookd(t, dir)
	base = "http://" + p2.addr
	expectStatus := func(id, want string) {
		t.Helper()
		var h holdAnswer
		if code := call(t, "GET", base+"/v1/holds/"+id, nil, &h); code != 200 || h.Status != want {
			t.Errorf("after restart GET /v1/holds/%s = %d %q, want 200 %q", id, code, h.Status, want)
		}
	}
	for _, id := range append(confirmed, yesConfirmed...) {
		expectStatus(id, "confirmed")
	}
	for _, id := range held {
		expectStatus(id, "held")
	}
	for _, id := range yesHeld {
		// Answered yes to the hold; the confirm's answer was lost, so either.
		var h holdAnswer
		if code := call(t, "GET", base+"/v1/holds/"+id, nil, &h); code != 200 || (h.Status != "held" && h.Status != "confirmed") {
			t.Errorf("after restart GET /v1/holds/%s = %d %q, want held or confirmed", id, code, h.Status)
		}
	}
	for _, id := range short {
		expectStatus(id, "expired")
	}
	var short0 availabilityAnswer
	call(t, "GET", base+"/v1/resources/durable-short/availability", nil, &short0)
	if len(short0.Slots) != 1 || short0.Slots[0].Free != 10 || short0.Slots[0].Held != 0 {
		t.Errorf("durable-short after restart = %+v, want all 10 free (the holds expired while the node was down)", short0.Slots)
	}
	var long availabilityAnswer
	call(t, "GET", base+"/v1/resources/durable-long/availability", nil, &long)
	s := long.Slots[0]
	yes := 2 * (len(confirmed) + len(held) + len(yesConfirmed) + len(yesHeld))
	if s.Held+s.Confirmed < yes {
		t.Errorf("durable-long after restart takes %d units, want at least the %d answered yes", s.Held+s.Confirmed, yes)
	}
	if s.Held+s.Confirmed+s.Free != long.Capacity || s.Free < 0 {
		t.Errorf("durable-long after restart = %+v, capacity %d: the counts do not add up", s, long.Capacity)
	}
	if s.Confirmed < 2*(len(confirmed)+len(yesConfirmed)) {
		t.Errorf("durable-long after restart has %d confirmed, want at least %d", s.Confirmed, 2*(len(confirmed)+len(yesConfirmed)))
	}
}

func tryHold(c *http.Client, base, resource string) (string, bool) {
	resp, err := c.Post(base+"/v1/holds", "application/json",
		stringsReader(fmt.Sprintf(`{"resource_id":%q,"quantity":2}`, resource)))
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var h holdAnswer
	if resp.StatusCode != http.StatusCreated || decodeJSON(resp, &h) != nil {
		return "", false
	}
	return h.ID, true
}

func tryConfirm(c *http.Client, base, id string) bool {
	resp, err := c.Post(base+"/v1/holds/"+id+"/confirm", "application/json", nil)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h holdAnswer
	return resp.StatusCode == http.StatusOK && decodeJSON(resp, &h) == nil && h.Status == "confirmed"
}
