package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func TestGossipConfigValidate(t *testing.T) {
	ok := DefaultGossipConfig()
	ok.BindAddr = "127.0.0.1:7946"
	tests := []struct {
		name   string
		change func(*GossipConfig)
		want   string // "" means valid
	}{
		{"defaults with an address", func(*GossipConfig) {}, ""},
		{"no bind address", func(c *GossipConfig) { c.BindAddr = "" }, "BindAddr"},
		{"bad advertise address", func(c *GossipConfig) { c.AdvertiseAddr = "host" }, "AdvertiseAddr"},
		{"bad seed", func(c *GossipConfig) { c.Join = []string{"127.0.0.1:x"} }, "Join"},
		{"short key", func(c *GossipConfig) { c.SecretKey = make([]byte, 10) }, "SecretKey"},
		{"32-byte key", func(c *GossipConfig) { c.SecretKey = make([]byte, 32) }, ""},
		{"probe timeout above interval", func(c *GossipConfig) { c.ProbeTimeout = time.Second }, "ProbeTimeout"},
		{"no suspicion", func(c *GossipConfig) { c.SuspicionMult = 0 }, "SuspicionMult"},
		{"no refresh", func(c *GossipConfig) { c.RefreshInterval = 0 }, "RefreshInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// TestOwnerOfSpread: rendezvous hashing over random member ids spreads
// identities evenly, and removing a member moves only that member's.
func TestOwnerOfSpread(t *testing.T) {
	members := []string{"8wZWhwcxsgbpXxjCui5HM3", "N7vY92cikD5M3Gd6TREzwd", "jGNk4PERrqRSkn7mtAQGLW"}
	const n = 30000
	count := map[string]int{}
	moved := 0
	for i := range n {
		id := fmt.Sprintf("room-%d", i)
		o := OwnerOf(members, "resource", id)
		count[o]++
		if after := OwnerOf(members[:2], "resource", id); after != o && o != members[2] {
			moved++
		}
	}
	for _, m := range members {
		if share := float64(count[m]) / n; share < 0.31 || share > 0.36 {
			t.Errorf("member %s owns %.1f%% of %d identities, want about a third", m, 100*share, n)
		}
	}
	if moved != 0 {
		t.Errorf("removing one member moved %d identities of the others, want 0", moved)
	}
	if got := OwnerOf(nil, "resource", "room-1"); got != "" {
		t.Errorf("OwnerOf(no members) = %q, want \"\"", got)
	}
}

// TestMemberlistLogSeesDeath: memberlist's refutation of a death is how a
// node learns the others declared it dead.
func TestMemberlistLogSeesDeath(t *testing.T) {
	var seen []string
	w := &memberlistLog{log: slog.New(slog.NewTextHandler(io.Discard, nil)), onDeath: func(s string) { seen = append(seen, s) }}
	for _, line := range []string{
		"2026/11/24 02:17:08 [WARN] memberlist: Refuting a suspect message (from: a)\n",
		"2026/11/24 02:17:09 [WARN] memberlist: Refuting a dead message (from: b)\n",
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n",
	} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 1 || !strings.Contains(seen[0], "from: b") {
		t.Errorf("deaths seen = %q, want the one dead message from b", seen)
	}
}

// echo answers every string with itself.
type echo struct{}

func (echo) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		ctx.Respond(s)
	}
}

// TestSingleNode: a node alone owns every identity, answers requests,
// counts its activations, retries replies it is told to retry until its
// deadline, and stops owning anything once it drains.
func TestSingleNode(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	retries := 0
	cfg.Retryable = func(reply any) bool {
		if reply == "again" {
			retries++
			return true
		}
		return false
	}
	n, err := Start(cfg, Kind{Name: "echo", Props: actor.PropsFromProducer(func() actor.Actor { return echo{} })})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if !n.Owns("echo", "a") {
		t.Error("Owns(echo, a) = false on a node alone, want true")
	}
	for _, id := range []string{"a", "b", "c"} {
		if res, err := n.Request(t.Context(), "echo", id, "hi "+id); err != nil || res != "hi "+id {
			t.Errorf("Request(%s) = %v, %v, want %q", id, res, err, "hi "+id)
		}
	}
	st := n.Status()
	if st.Mode != "single" || len(st.Members) != 1 || !st.Members[0].Self || st.Members[0].Active != 3 || !st.Members[0].Placement {
		t.Errorf("Status() = %+v, want this node alone with 3 activations in placement", st)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if res, err := n.Request(ctx, "echo", "a", "again"); err != nil || res != "again" || retries < 2 {
		t.Errorf("Request(retryable) = %v, %v after %d tries, want the last reply after retries", res, err, retries)
	}
	if err := n.Drain(t.Context(), "bye"); err != nil {
		t.Errorf("Drain = %v", err)
	}
	if n.Owns("echo", "a") {
		t.Error("Owns(echo, a) = true after Drain, want false: a leaving node takes no activations")
	}
}
