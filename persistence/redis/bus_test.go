package redis_test

import (
	"context"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/conformance"
	"github.com/bookd/bookd/persistence/redis"
	"github.com/bookd/bookd/persistence/testserver"
)

func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }

func admin(t *testing.T, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestBusConformance(t *testing.T) {
	const queue = 64
	url := testserver.RedisT(t).URL()
	conformance.RunBus(t, conformance.BusHarness{
		Queue: queue,
		Open: func(t *testing.T) persistence.Bus {
			b, err := redis.OpenBus(t.Context(), url, redis.BusOptions{Queue: queue, PipelineMax: 16})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		// CLIENT PAUSE WRITE holds every PUBLISH until UNPAUSE.
		Stall: func(t *testing.T, _ persistence.Bus) func() {
			c := admin(t, url)
			if err := c.Do(t.Context(), "CLIENT", "PAUSE", "60000", "WRITE").Err(); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := c.Do(context.Background(), "CLIENT", "UNPAUSE").Err(); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

// TestBusReconnectSignalsLost: when Redis drops a node's pub/sub
// connection, the node subscribes again by itself and its subscribers get
// Lost, then messages again.
func TestBusReconnectSignalsLost(t *testing.T) {
	url := testserver.RedisT(t).URL()
	open := func() *redis.Bus {
		b, err := redis.OpenBus(t.Context(), url, redis.BusOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	pub, sub := open(), open()
	got := make(chan persistence.Delivery, 100)
	if _, err := sub.Subscribe(t.Context(), "r", func(d persistence.Delivery) { got <- d }); err != nil {
		t.Fatal(err)
	}
	if err := admin(t, url).Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	sawLost := false
	for {
		// Publish until a message arrives after the Lost signal.
		if err := pub.Publish(t.Context(), "r", []byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-got:
			if d.Lost {
				sawLost = true
			} else if sawLost {
				if st := sub.Stats(); st.Resyncs == 0 {
					t.Errorf("Stats() = %+v, want Resyncs > 0", st)
				}
				return
			}
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no Lost signal and message after the pub/sub connection was killed (saw Lost: %v)", sawLost)
		}
	}
}
