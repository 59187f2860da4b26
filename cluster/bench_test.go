package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookd/bookd/actors/resource"
	"github.com/bookd/bookd/cluster"
	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/sqlite"
)

// BenchmarkResourceCalls (issue 4, item 6) measures availability reads of
// a resource actor through Node.Request from node A, once for a resource
// that A owns (a local call) and once for one that node B owns (a remote
// call over actor remoting), with 1 and 64 callers, and reports both rates
// and their ratio. Both nodes run in this process and form a cluster by
// gossip on loopback; benchmarks run without -race (protoactor's gRPC
// logger is global and races when two nodes share a process).
func BenchmarkResourceCalls(b *testing.B) {
	a, bn, local, remote := twoNodes(b)
	defer a.Stop()
	defer bn.Stop()
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			const calls = 4000
			var localTime, remoteTime time.Duration
			for range b.N {
				localTime += drive(b, a, local, callers, calls)
				remoteTime += drive(b, a, remote, callers, calls)
			}
			l := float64(b.N*calls) / localTime.Seconds()
			r := float64(b.N*calls) / remoteTime.Seconds()
			b.ReportMetric(l, "local-calls/s")
			b.ReportMetric(r, "remote-calls/s")
			b.ReportMetric(l/r, "local/remote")
		})
	}
}

// drive makes calls availability reads of id from n with callers
// goroutines and returns how long they took.
func drive(b *testing.B, n *cluster.Node, id string, callers, calls int) time.Duration {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(calls) {
				res, err := n.Request(context.Background(), resource.Kind, id, &bookdv1.GetAvailability{})
				if err == nil {
					if r, ok := res.(*bookdv1.AvailabilityReply); !ok || r.GetError() != nil {
						err = fmt.Errorf("reply %v", res)
					}
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("GetAvailability(%s): %v", id, err)
	}
	return d
}

// twoNodes starts node a alone and node b joining it, both hosting
// resources on one SQLite store, and returns a resource each owns.
func twoNodes(b *testing.B) (a, bn *cluster.Node, onA, onB string) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bookd.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	ids := make([]string, 16)
	must(b, store.CreateProvider(ctx, persistence.Provider{ID: "p", Name: "p"}))
	must(b, store.CreateListing(ctx, persistence.Listing{ID: "l", ProviderID: "p", Kind: persistence.KindEvent, Name: "l", City: "Lisbon", TimeZone: "Europe/Lisbon"}))
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%d", i)
		must(b, store.CreateResource(ctx, persistence.Resource{ID: ids[i], ListingID: "l", Name: ids[i], Unit: persistence.SlotSingle, Capacity: 10, HoldTTL: time.Hour}))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rcfg := resource.DefaultConfig()
	rcfg.Logger = log
	kind := cluster.Kind{Name: resource.Kind, Props: resource.Props(rcfg, resource.Stores{Journal: store, Catalog: store})}
	start := func(join ...string) *cluster.Node {
		cfg := cluster.DefaultConfig()
		cfg.Logger = log
		g := cluster.DefaultGossipConfig()
		g.BindAddr, g.Join = freeAddr(b), join
		cfg.Gossip = &g
		n, err := cluster.Start(cfg, kind)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	a = start()
	bn = start(gossipAddrOf(a))
	deadline := time.Now().Add(20 * time.Second)
	for len(placed(a)) != 2 || len(placed(bn)) != 2 {
		if time.Now().After(deadline) {
			b.Fatalf("the two nodes did not see each other within 20s: %+v", a.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	members := placed(a)
	for _, id := range ids {
		switch cluster.OwnerOf(members, resource.Kind, id) {
		case a.ID():
			onA = id
		case bn.ID():
			onB = id
		}
	}
	if onA == "" || onB == "" {
		b.Fatalf("no resource on each node among %d", len(ids))
	}
	return a, bn, onA, onB
}

// placed returns the member ids that n places actors on.
func placed(n *cluster.Node) []string {
	var ids []string
	for _, m := range n.Status().Members {
		if m.Placement {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func gossipAddrOf(n *cluster.Node) string {
	for _, m := range n.Status().Members {
		if m.Self {
			return m.GossipAddress
		}
	}
	return ""
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
