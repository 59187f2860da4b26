package edge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkLiveFanout is the acceptance 6: 10,000 WebSocket
// subscribers on one node (10 per resource over 1,000 resources) and b.N
// changes at 1,000 per second, round robin over the resources. The
// subscribers run in a child process (this test binary again), so that
// each process stays under the open files limit and the node's memory is
// its own. It reports the delivery latency from the commit to each
// subscriber's receipt at p50 and p99, and the node's memory per
// connection. -benchtime=1x runs one change; -benchtime=5000x five
// seconds of them.
func BenchmarkLiveFanout(b *testing.B) {
	const (
		subscribers = 10_000
		resources   = 1_000
		perSecond   = 1_000
	)
	e := sharedLive(b)
	ids := make([]string, resources)
	for i := range ids {
		ids[i] = e.addResource(b, 1_000_000)
	}
	memBefore := memInUse()
	want := b.N * subscribers / resources
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BOOKD_LIVE_URL="+e.url, "BOOKD_LIVE_TOPICS="+strings.Join(ids, ","),
		"BOOKD_LIVE_SUBSCRIBERS="+strconv.Itoa(subscribers), "BOOKD_LIVE_WANT="+strconv.Itoa(want))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	var result string
	for lines.Scan() {
		l := lines.Text()
		if l == "ready" {
			break
		}
	}
	if st := e.api.LiveStats(); st.Connections < subscribers {
		b.Fatalf("%d connections open, want %d", st.Connections, subscribers)
	}
	perConn := float64(memInUse()-memBefore) / subscribers

	b.ResetTimer()
	start := time.Now()
	sem := make(chan struct{}, 256)
	var holds sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < b.N; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / perSecond)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		holds.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := e.hold(ctx, ids[i%resources], fmt.Sprintf("bench-%d-%d", start.UnixNano(), i)); err != nil {
				failed.Add(1)
			}
		})
	}
	holds.Wait()
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "result ") {
			result = strings.TrimPrefix(l, "result ")
			break
		}
	}
	b.StopTimer()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("subscribers: %v", err)
	}
	var r struct {
		Got      int
		P50, P99 time.Duration
	}
	if err := json.Unmarshal([]byte(result), &r); err != nil || failed.Load() > 0 || r.Got < want {
		b.Fatalf("%d holds failed; subscribers reported %q (%v), want %d deliveries", failed.Load(), result, err, want)
	}
	b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(perConn/1024, "node-KiB/conn")
	b.Logf("%d subscribers, %d changes at %d/s: %d deliveries, latency p50 %v p99 %v; node memory %.1f KiB per connection",
		subscribers, b.N, perSecond, r.Got, r.P50, r.P99, perConn/1024)
}

// liveSubscribers is BenchmarkLiveFanout's child process (TestMain runs it
// when BOOKD_LIVE_URL is set): it subscribes, prints "ready", waits for
// the deltas and prints "result" with their latencies.
func liveSubscribers(url string) error {
	topics := strings.Split(os.Getenv("BOOKD_LIVE_TOPICS"), ",")
	n, _ := strconv.Atoi(os.Getenv("BOOKD_LIVE_SUBSCRIBERS"))
	want, _ := strconv.Atoi(os.Getenv("BOOKD_LIVE_WANT"))
	var mu sync.Mutex
	var lat []time.Duration
	var got atomic.Int64
	var subscribed, readers sync.WaitGroup
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return fmt.Errorf("dial %d: %w", i, err)
		}
		conns[i] = c
		if err := c.WriteJSON(map[string]any{"type": "subscribe", "topic": "resource:" + topics[i%len(topics)]}); err != nil {
			return err
		}
		subscribed.Add(1)
		readers.Go(func() {
			first := true
			defer func() {
				if first {
					subscribed.Done()
				}
			}()
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				var m struct {
					Type        string    `json:"type"`
					CommittedAt time.Time `json:"committed_at"`
				}
				_ = json.Unmarshal(data, &m)
				switch m.Type {
				case "snapshot":
					if first {
						first = false
						subscribed.Done()
					}
				case "delta":
					mu.Lock()
					lat = append(lat, now.Sub(m.CommittedAt))
					mu.Unlock()
					got.Add(1)
				}
			}
		})
	}
	subscribed.Wait()
	fmt.Println("ready")
	deadline := time.Now().Add(2 * time.Minute)
	for got.Load() < int64(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	slices.Sort(lat)
	var r struct {
		Got      int
		P50, P99 time.Duration
	}
	r.Got = len(lat)
	if len(lat) > 0 {
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	out, _ := json.Marshal(r)
	fmt.Printf("result %s\n", out)
	return nil
}

// memInUse is the heap and stacks in use after a GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
