package edge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bookd/bookd/actors/resource"
	"github.com/bookd/bookd/cluster"
	"github.com/bookd/bookd/edge"
	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/sqlite"
)

// liveEnv is one whole node in this process: SQLite in a temp folder, the
// in-process bus, resource actors and the edge on a loopback server whose
// accepted connections have small socket buffers (so that a client that
// does not read fills them fast).
type liveEnv struct {
	dir   string
	store persistence.Store
	bus   *persistence.LocalBus
	node  *cluster.Node
	api   *edge.Server
	srv   *httptest.Server
	url   string // ws://…/v1/ws
}

// The env is shared by this package's live tests and benchmarks: two
// protoactor nodes in one process race on grpc's global logger.
var live struct {
	once sync.Once
	env  *liveEnv
	err  error
}

const liveListing = "live-listing"

func sharedLive(tb testing.TB) *liveEnv {
	tb.Helper()
	live.once.Do(func() { live.env, live.err = startLive() })
	if live.err != nil {
		tb.Fatal(live.err)
	}
	return live.env
}

func TestMain(m *testing.M) {
	if url := os.Getenv("BOOKD_LIVE_URL"); url != "" {
		if err := liveSubscribers(url); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if live.env != nil {
		live.env.close()
	}
	os.Exit(code)
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func startLive() (*liveEnv, error) {
	dir, err := os.MkdirTemp("", "bookd-live-")
	if err != nil {
		return nil, err
	}
	e := &liveEnv{dir: dir}
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	if e.store, err = sqlite.Open(ctx, filepath.Join(dir, "bookd.db"), sqlite.Options{}); err != nil {
		return nil, err
	}
	if err := e.store.CreateProvider(ctx, persistence.Provider{ID: "live-prov", Name: "Live"}); err != nil {
		return nil, err
	}
	if err := e.store.CreateListing(ctx, persistence.Listing{ID: liveListing, ProviderID: "live-prov", Kind: persistence.KindEvent, Name: "Live", City: "Lisbon", TimeZone: "Europe/Lisbon"}); err != nil {
		return nil, err
	}
	e.bus = persistence.NewLocalBus(0)
	rcfg := resource.DefaultConfig()
	rcfg.Logger = log
	ccfg := cluster.DefaultConfig()
	ccfg.Logger = log
	if e.node, err = cluster.Start(ccfg, cluster.Kind{Name: resource.Kind, Props: resource.Props(rcfg, resource.Stores{Journal: e.store, Catalog: e.store, Events: e.bus})}); err != nil {
		return nil, err
	}
	ecfg := edge.DefaultConfig()
	ecfg.Logger, ecfg.Bus = log, e.bus
	ecfg.Live.SendQueue = 16
	// One client (this process) opens thousands of connections and makes
	// thousands of holds on purpose; the limits have tests of their own.
	if ecfg.RateLimits, err = edge.ParseRateLimits("default=off,holds=off,login=off"); err != nil {
		return nil, err
	}
	if e.api, err = edge.New(ecfg, e.store, e.node); err != nil {
		return nil, err
	}
	e.api.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.srv = httptest.NewUnstartedServer(e.api)
	e.srv.Listener = smallBufListener{ln}
	e.srv.Start()
	e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/ws"
	return e, nil
}

func (e *liveEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.api.DrainLive(ctx)
	e.srv.Close()
	e.api.Close()
	_ = e.node.Drain(ctx, &resource.Drain{})
	e.node.Stop()
	_ = e.bus.Close()
	_ = e.store.Close()
	_ = os.RemoveAll(e.dir)
}

var resourceSeq struct {
	sync.Mutex
	n int
}

// addResource creates a single-slot resource of capacity in the listing.
func (e *liveEnv) addResource(tb testing.TB, capacity int) string {
	tb.Helper()
	resourceSeq.Lock()
	resourceSeq.n++
	id := fmt.Sprintf("live-r%d", resourceSeq.n)
	resourceSeq.Unlock()
	if err := e.store.CreateResource(context.Background(), persistence.Resource{ID: id, ListingID: liveListing, Name: id, Unit: persistence.SlotSingle, Capacity: capacity, HoldTTL: time.Hour}); err != nil {
		tb.Fatal(err)
	}
	return id
}

// hold places a hold of one unit on resource id.
func (e *liveEnv) hold(ctx context.Context, id, holdID string) error {
	res, err := e.node.Request(ctx, resource.Kind, id, &bookdv1.PlaceHold{HoldId: holdID, Quantity: 1})
	if err != nil {
		return err
	}
	if r, ok := res.(*bookdv1.HoldReply); !ok || r.GetError() != nil {
		return fmt.Errorf("PlaceHold(%s) = %v", holdID, res)
	}
	return nil
}

// dial opens a WebSocket to the env whose socket has a small read buffer.
func (e *liveEnv) dial(tb testing.TB) *websocket.Conn {
	tb.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	c, _, err := d.Dial(e.url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSlowConsumerClosed: a client that subscribes and then never reads
// is closed with CloseSlowConsumer once its send queue overflows; the
// node's heap does not grow with the changes it was sent meanwhile, and
// the client can resume.
func TestSlowConsumerClosed(t *testing.T) {
	e := sharedLive(t)
	id := e.addResource(t, 100_000)
	c := e.dial(t)
	defer c.Close()
	if err := c.WriteJSON(map[string]any{"type": "subscribe", "topic": "resource:" + id}); err != nil {
		t.Fatal(err)
	}
	before := heapAlloc()
	slowBefore := e.api.LiveStats().SlowClosed
	// Changes until the server gives up on the client.
	const most = 3000
	n := 0
	for ; n < most && e.api.LiveStats().SlowClosed == slowBefore; n++ {
		if err := e.hold(t.Context(), id, fmt.Sprintf("h%d", n)); err != nil {
			t.Fatal(err)
		}
	}
	if n == most {
		t.Fatalf("after %d changes the client that never reads is still open: %+v", most, e.api.LiveStats())
	}
	// As many changes again: the closed client must not keep any of them.
	for i := range 500 {
		if err := e.hold(t.Context(), id, fmt.Sprintf("after%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	after := heapAlloc()
	growth := int64(after) - int64(before)
	t.Logf("stuck client closed after %d changes; heap %d KiB before, %d KiB after 500 more (growth %d KiB)", n, before>>10, after>>10, growth>>10)
	if growth > 32<<20 {
		t.Errorf("heap grew by %d KiB with a stuck client, want it bounded (< 32 MiB)", growth>>10)
	}
	// Now the client reads: what was queued, then the close code.
	var ce *websocket.CloseError
	for {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("read ended with %v, want close code %d", err, edge.CloseSlowConsumer)
			}
			break
		}
	}
	if ce.Code != edge.CloseSlowConsumer {
		t.Errorf("close code = %d %q, want %d", ce.Code, ce.Text, edge.CloseSlowConsumer)
	}
}

// TestLiveOriginChecked: a browser page of another origin may not open a
// WebSocket; the node's own page may.
func TestLiveOriginChecked(t *testing.T) {
	e := sharedLive(t)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	for _, tt := range []struct {
		origin string
		want   int
	}{
		{"http://evil.example", http.StatusForbidden},
		{"http://" + host, http.StatusSwitchingProtocols},
	} {
		c, resp, err := websocket.DefaultDialer.Dial(e.url, http.Header{"Origin": {tt.origin}})
		if c != nil {
			c.Close()
		}
		if resp == nil {
			t.Fatalf("Origin %s: %v", tt.origin, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != tt.want {
			t.Errorf("Origin %s: status %d, want %d", tt.origin, resp.StatusCode, tt.want)
		}
	}
}

// TestLiveUserTopicNeedsToken: the user topic without a token is refused
// with an error message; the connection stays usable.
func TestLiveUserTopicNeedsToken(t *testing.T) {
	e := sharedLive(t)
	id := e.addResource(t, 5)
	c := e.dial(t)
	defer c.Close()
	for _, m := range []map[string]any{{"type": "subscribe", "topic": "user"}, {"type": "subscribe", "topic": "resource:" + id}} {
		if err := c.WriteJSON(m); err != nil {
			t.Fatal(err)
		}
	}
	var first, second map[string]any
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.ReadJSON(&first); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadJSON(&second); err != nil {
		t.Fatal(err)
	}
	if first["type"] != "error" || first["code"] != "forbidden" || first["topic"] != "user" {
		t.Errorf("user topic without token answered %v, want a forbidden error", first)
	}
	if second["type"] != "snapshot" || second["topic"] != "resource:"+id {
		t.Errorf("then subscribe answered %v, want a snapshot", second)
	}
}

// TestLiveUserTopicWithToken: a signed-in client gets the user topic, by
// an Authorization header on the handshake (non-browser clients such as
// bookd watch) or by an auth message (browsers).
func TestLiveUserTopicWithToken(t *testing.T) {
	e := sharedLive(t)
	email := fmt.Sprintf("live-%d@example.com", time.Now().UnixNano())
	post := func(path, body string, want int) []byte {
		t.Helper()
		res, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("POST %s = %d %s, want %d", path, res.StatusCode, b, want)
		}
		return b
	}
	creds := fmt.Sprintf(`{"email":%q,"password":"live topic password"}`, email)
	post("/v1/auth/register", creds, http.StatusCreated)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(post("/v1/auth/login", creds, http.StatusOK), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login answered no access token: %v", err)
	}
	read := func(c *websocket.Conn) map[string]any {
		t.Helper()
		var m map[string]any
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	subscribeUser := func(c *websocket.Conn, how string) {
		t.Helper()
		if err := c.WriteJSON(map[string]any{"type": "subscribe", "topic": "user"}); err != nil {
			t.Fatal(err)
		}
		if m := read(c); m["type"] != "snapshot" || m["topic"] != "user" {
			t.Errorf("%s: subscribe to user answered %v, want its snapshot", how, m)
		}
	}

	c, _, err := websocket.DefaultDialer.Dial(e.url, http.Header{"Authorization": {"Bearer " + tok.AccessToken}})
	if err != nil {
		t.Fatal(err)
	}
	subscribeUser(c, "Authorization header")
	_ = c.Close()

	c = e.dial(t)
	defer c.Close()
	if err := c.WriteJSON(map[string]any{"type": "auth", "token": tok.AccessToken}); err != nil {
		t.Fatal(err)
	}
	if m := read(c); m["type"] != "authenticated" {
		t.Fatalf("auth answered %v, want authenticated", m)
	}
	subscribeUser(c, "auth message")
}
