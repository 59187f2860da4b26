package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"github.com/bookd/bookd/cluster"
	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/postgres"
	"github.com/bookd/bookd/persistence/sqlite"
	"github.com/bookd/bookd/persistence/testserver"
)

// The catalog every env starts with: one provider and one listing per kind of
// slot the tests use.
const (
	testProvider   = "prov-test"
	listingNights  = "lst-hotel"   // Europe/Lisbon
	listingSingle  = "lst-concert" // Europe/Lisbon
	listingMinutes = "lst-table"   // America/New_York
	requestTimeout = 15 * time.Second
)

// testLogger discards logs unless BOOKD_TEST_LOG is set (then they go to
// stderr at debug level). It never logs through t: actors may log after a
// test has ended.
func testLogger() *slog.Logger {
	if os.Getenv("BOOKD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig is DefaultConfig with quiet logs and a write timeout that the
// appends a test holds back with FaultyJournal.Block do not run into.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Logger = testLogger()
	cfg.WriteTimeout = time.Minute
	return cfg
}

// clock is a test clock: the real time plus an offset the test moves.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one bookd node over a real store (a SQLite file in t.TempDir(),
// or a database of a real PostgreSQL server), with the journal wrapped in a
// FaultyJournal.
type env struct {
	openStore func() (persistence.Store, error) // opens the same store each time
	cfg       Config
	store     persistence.Store
	journal   *persistence.FaultyJournal
	node      *cluster.Node
	// resources numbers the resources addResource creates.
	resources atomic.Int64
}

// newEnv opens a store in t.TempDir(), seeds the catalog and starts a node,
// all stopped by t.Cleanup. opts change the resource actors' config before
// the node starts. Tests whose config is the default share one env instead
// (sharedEnv): a node start costs a second.
func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	e, err := openEnv(filepath.Join(t.TempDir(), "bookd.db"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

// newPostgresEnv is newEnv on a fresh database of the shared PostgreSQL
// server (persistence/testserver).
func newPostgresEnv(t testing.TB) *env {
	t.Helper()
	url := testserver.DatabaseT(t)
	e, err := openEnvWith(func() (persistence.Store, error) {
		return postgres.Open(context.Background(), url, postgres.Options{})
	}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

// shared is the env of the tests that run with the default config, each on
// its own resources. Tests in this package that start nodes do not run in
// parallel: two protoactor remotes in one process race on grpc's global
// logger (remote.Start calls grpclog.SetLoggerV2).
var shared struct {
	once sync.Once
	dir  string
	e    *env
	err  error
}

// sharedEnv returns the shared env, starting it on first use, and clears its
// journal's faults when t ends.
func sharedEnv(t testing.TB) *env {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "bookd-resource-test-")
		if shared.err != nil {
			return
		}
		shared.e, shared.err = openEnv(filepath.Join(shared.dir, "bookd.db"), testConfig())
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	t.Cleanup(shared.e.journal.Reset)
	return shared.e
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.e != nil {
		shared.e.close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// openEnv opens the SQLite store at path, seeds the catalog and starts a
// node.
func openEnv(path string, cfg Config) (*env, error) {
	return openEnvWith(func() (persistence.Store, error) {
		return sqlite.Open(context.Background(), path, sqlite.Options{})
	}, cfg)
}

// openEnvWith opens the store with open, seeds the catalog and starts a
// node.
func openEnvWith(open func() (persistence.Store, error), cfg Config) (*env, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &env{openStore: open, cfg: cfg}
	if err := e.open(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := e.store.CreateProvider(ctx, persistence.Provider{ID: testProvider, Name: "Test provider"}); err != nil {
		e.close()
		return nil, err
	}
	for _, l := range []persistence.Listing{
		{ID: listingNights, ProviderID: testProvider, Kind: persistence.KindAccommodation, Name: "Hotel", City: "Lisbon", TimeZone: "Europe/Lisbon"},
		{ID: listingSingle, ProviderID: testProvider, Kind: persistence.KindEvent, Name: "Concert", City: "Lisbon", TimeZone: "Europe/Lisbon"},
		{ID: listingMinutes, ProviderID: testProvider, Kind: persistence.KindRestaurant, Name: "Diner", City: "New York", TimeZone: "America/New_York"},
	} {
		if err := e.store.CreateListing(ctx, l); err != nil {
			e.close()
			return nil, err
		}
	}
	if err := e.start(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// open opens the store and wraps its journal.
func (e *env) open() error {
	s, err := e.openStore()
	if err != nil {
		return err
	}
	e.store = s
	e.journal = persistence.NewFaultyJournal(s)
	return nil
}

// start starts a node whose resource actors use the env's journal.
func (e *env) start() error {
	n, err := startNode(e.cfg, e.journal, e.store)
	e.node = n
	return err
}

func startNode(cfg Config, j persistence.Journal, c persistence.Catalog) (*cluster.Node, error) {
	ccfg := cluster.DefaultConfig()
	ccfg.Logger = cfg.Logger
	ccfg.RequestTimeout = requestTimeout
	return cluster.Start(ccfg, cluster.Kind{Name: Kind, Props: Props(cfg, Stores{Journal: j, Catalog: c, Events: testBus})})
}

// stop drains the node's actors and stops the node; the store stays open.
func (e *env) stop(t testing.TB) {
	t.Helper()
	if e.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.node.Drain(ctx, &Drain{}); err != nil {
		t.Errorf("Drain: %v", err)
	}
	e.node.Stop()
	e.node = nil
}

// restart is a process restart: drain and stop the node, close the store,
// reopen it and start a new node. The new node's activations load
// everything from the file.
func (e *env) restart(t testing.TB) {
	t.Helper()
	e.stop(t)
	e.reopen(t)
}

// reopen closes the store, opens it again and starts a new node; the node
// must be stopped.
func (e *env) reopen(t testing.TB) {
	t.Helper()
	if err := e.store.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	if err := e.open(); err != nil {
		t.Fatal(err)
	}
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) close() {
	if e.journal != nil {
		e.journal.Release()
	}
	if e.node != nil {
		e.node.Stop()
		e.node = nil
	}
	if e.store != nil {
		_ = e.store.Close()
	}
}

// drainAll drains the node's activations without stopping the node: the
// next request activates afresh from the journal.
func (e *env) drainAll(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.node.StopActivations(ctx, &Drain{}); err != nil {
		t.Fatalf("StopActivations: %v", err)
	}
}

// addResource creates a resource of the given slot unit (60-minute slots
// for SlotMinutes) and returns its id: name, made unique in the env so that
// tests on the shared env can run again (-count).
func (e *env) addResource(t testing.TB, name string, unit persistence.SlotUnit, capacity int, ttl time.Duration) string {
	t.Helper()
	id := fmt.Sprintf("%s-%d", name, e.resources.Add(1))
	r := persistence.Resource{ID: id, Name: name, Unit: unit, Capacity: capacity, HoldTTL: ttl}
	switch unit {
	case persistence.SlotNight:
		r.ListingID = listingNights
	case persistence.SlotSingle:
		r.ListingID = listingSingle
	case persistence.SlotMinutes:
		r.ListingID, r.SlotMinutes = listingMinutes, 60
	}
	if err := e.store.CreateResource(context.Background(), r); err != nil {
		t.Fatalf("CreateResource(%s): %v", id, err)
	}
	return id
}

// request sends msg to resource id through the node.
func (e *env) request(ctx context.Context, id string, msg proto.Message) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := e.node.Request(ctx, Kind, id, msg)
	if err != nil {
		return nil, err
	}
	m, ok := res.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("reply is %T, not a proto message", res)
	}
	return m, nil
}

// holdCmd sends a command answered by a HoldReply.
func (e *env) holdCmd(ctx context.Context, id string, msg proto.Message) (*bookdv1.HoldReply, error) {
	res, err := e.request(ctx, id, msg)
	if err != nil {
		return nil, err
	}
	r, ok := res.(*bookdv1.HoldReply)
	if !ok {
		return nil, fmt.Errorf("%T answered by %T", msg, res)
	}
	if (r.GetHold() == nil) == (r.GetError() == nil) {
		return nil, fmt.Errorf("%T answered by %v: want exactly one of hold and error", msg, r)
	}
	return r, nil
}

// mustHold sends a command and fails t unless the reply is a hold.
func (e *env) mustHold(t testing.TB, id string, msg proto.Message) *bookdv1.Hold {
	t.Helper()
	r, err := e.holdCmd(context.Background(), id, msg)
	if err != nil {
		t.Fatalf("%T%v: %v", msg, msg, err)
	}
	if r.GetError() != nil {
		t.Fatalf("%T%v = error %v, want a hold", msg, msg, r.GetError())
	}
	return r.GetHold()
}

// mustFail sends a command and fails t unless the reply is an error of code.
func (e *env) mustFail(t testing.TB, id string, msg proto.Message, code bookdv1.ErrorCode) *bookdv1.Error {
	t.Helper()
	r, err := e.holdCmd(context.Background(), id, msg)
	if err != nil {
		t.Fatalf("%T%v: %v", msg, msg, err)
	}
	if got := r.GetError().GetCode(); got != code {
		t.Fatalf("%T%v = %v, want error %v", msg, msg, r, code)
	}
	return r.GetError()
}

// availability reads [from, to) of resource id ("" and "" for the default).
func (e *env) availability(t testing.TB, id, from, to string) *bookdv1.Availability {
	t.Helper()
	res, err := e.request(context.Background(), id, &bookdv1.GetAvailability{From: from, To: to})
	if err != nil {
		t.Fatalf("GetAvailability(%s): %v", id, err)
	}
	r, ok := res.(*bookdv1.AvailabilityReply)
	if !ok || r.GetAvailability() == nil {
		t.Fatalf("GetAvailability(%s) = %v, want availability", id, res)
	}
	return r.GetAvailability()
}

// appends returns the appends to the stream of resource id so far.
func (e *env) appends(id string) []persistence.AppendCall {
	var calls []persistence.AppendCall
	for _, c := range e.journal.Appends() {
		if c.Stream == Stream(id) {
			calls = append(calls, c)
		}
	}
	return calls
}

// events reads the journal of resource id straight from the store.
func (e *env) events(t testing.TB, id string) []*bookdv1.Event {
	t.Helper()
	evs, err := loadEvents(context.Background(), e.store, id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func loadEvents(ctx context.Context, j persistence.Journal, id string) ([]*bookdv1.Event, error) {
	var evs []*bookdv1.Event
	err := j.Load(ctx, Stream(id), 0, func(pe persistence.Event) error {
		ev := &bookdv1.Event{}
		if err := proto.Unmarshal(pe.Data, ev); err != nil {
			return fmt.Errorf("event %d: %w", pe.Seq, err)
		}
		if want := uint64(len(evs)) + 1; pe.Seq != want {
			return fmt.Errorf("event seq %d, want %d", pe.Seq, want)
		}
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}

// replay rebuilds a resource's state from its whole journal, without an
// actor, and checks invariant 1 on it.
func (e *env) replay(t testing.TB, id string) *state {
	t.Helper()
	res, err := e.store.GetResource(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.store.GetListing(context.Background(), res.ListingID)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := NewSlots(res.Unit, res.SlotMinutes, l.TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	st := newState(id, uint32(res.Capacity), slots)
	for i, ev := range e.events(t, id) {
		if err := st.apply(ev); err != nil {
			t.Fatalf("replay %s: event %d: %v", id, i+1, err)
		}
	}
	checkNotOversold(t, st)
	return st
}

// checkNotOversold checks held + confirmed ≤ capacity on every slot.
func checkNotOversold(t testing.TB, st *state) {
	t.Helper()
	for k, u := range st.used {
		if u.held+u.confirmed > st.capacity {
			t.Errorf("slot %s: held %d + confirmed %d > capacity %d", st.slots.Format(k), u.held, u.confirmed, st.capacity)
		}
	}
}

// countEvents counts the journal's events of each kind for one hold.
func countEvents(evs []*bookdv1.Event, holdID string) map[string]int {
	n := map[string]int{}
	for _, ev := range evs {
		switch k := ev.GetKind().(type) {
		case *bookdv1.Event_Placed:
			if k.Placed.GetHoldId() == holdID {
				n["placed"]++
			}
		case *bookdv1.Event_Confirmed:
			if k.Confirmed.GetHoldId() == holdID {
				n["confirmed"]++
			}
		case *bookdv1.Event_Released:
			if k.Released.GetHoldId() == holdID {
				n["released"]++
			}
		case *bookdv1.Event_Cancelled:
			if k.Cancelled.GetHoldId() == holdID {
				n["cancelled"]++
			}
		case *bookdv1.Event_Expired:
			if k.Expired.GetHoldId() == holdID {
				n["expired"]++
			}
		}
	}
	return n
}

// nightBase is a date 30 days after the tests started.
var nightBase = time.Now().UTC().AddDate(0, 0, 30)

// night returns the date n days after nightBase, the form night ranges take.
func night(n int) string {
	return nightBase.AddDate(0, 0, n).Format(DateLayout)
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isCode reports whether r is an error reply with code.
func isCode(r *bookdv1.HoldReply, code bookdv1.ErrorCode) bool {
	return r != nil && r.GetError().GetCode() == code
}

var errBoom = errors.New("boom: the disk said no")

// decided reports, without side effects, whether the actor of resource id
// has decided hold holdID (committed or not). It sends a PlaceHold with a
// quantity above capacity: a known id is refused at once with
// IDEMPOTENCY_CONFLICT, an unknown one with INVALID_ARGUMENT; neither
// changes anything or waits for a batch.
func (e *env) decided(t testing.TB, id, holdID, from, to string, capacity uint32) bool {
	t.Helper()
	r, err := e.holdCmd(context.Background(), id, &bookdv1.PlaceHold{HoldId: holdID, From: from, To: to, Quantity: capacity + 1})
	if err != nil {
		t.Fatalf("probe %s: %v", holdID, err)
	}
	switch r.GetError().GetCode() {
	case bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT:
		return true
	case bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:
		return false
	}
	t.Fatalf("probe %s = %v, want IDEMPOTENCY_CONFLICT or INVALID_ARGUMENT", holdID, r)
	return false
}

// rogueActivation is an activation of a resource outside any cluster, in a
// plain actor system: a second activation that the cluster does not know of.
// When it stops (a lost fence) the next request spawns a new one.
type rogueActivation struct {
	system *actor.ActorSystem
	props  *actor.Props
	id     string

	mu    sync.Mutex
	pid   *actor.PID
	count int
}

func newRogueActivation(t testing.TB, cfg Config, stores Stores, id string) *rogueActivation {
	t.Helper()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	r := &rogueActivation{
		system: system,
		props:  cluster.StopAware(Props(cfg, stores), system.Root), // as a Node spawns it
		id:     id,
	}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.pid != nil {
			_ = r.system.Root.StopFuture(r.pid).Wait()
		}
		r.system.Shutdown()
	})
	return r
}

// current returns the live activation, spawning one when there is none or
// when stale is the one that died.
func (r *rogueActivation) current(stale *actor.PID) *actor.PID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid == nil || r.pid.Equal(stale) {
		r.pid = r.system.Root.Spawn(r.props)
		r.count++
		// What protoactor's cluster delivers right after Started.
		r.system.Root.Send(r.pid, &protocluster.ClusterInit{Identity: protocluster.NewClusterIdentity(r.id, Kind)})
	}
	return r.pid
}

func (r *rogueActivation) spawned() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// request sends m to the activation, respawning it once it has stopped.
func (r *rogueActivation) request(ctx context.Context, m proto.Message) (any, error) {
	var stale *actor.PID
	for ctx.Err() == nil {
		pid := r.current(stale)
		res, err := r.system.Root.RequestFuture(pid, m, requestTimeout).Result()
		if errors.Is(err, actor.ErrDeadLetter) {
			stale = pid
			continue
		}
		return res, err
	}
	return nil, ctx.Err()
}

// foreignPlaced is a HoldPlaced event as another activation would write it.
func foreignPlaced(holdID string, quantity uint32) []byte {
	data, err := proto.Marshal(&bookdv1.Event{AtMs: time.Now().UnixMilli(), Kind: &bookdv1.Event_Placed{Placed: &bookdv1.HoldPlaced{
		HoldId: holdID, FromKey: 0, ToKey: 1, Quantity: quantity, ExpiresAtMs: time.Now().Add(time.Hour).UnixMilli(),
	}}})
	if err != nil {
		panic(err)
	}
	return data
}

// checkSameState compares the seq, holds and usage of two states.
func checkSameState(t *testing.T, got, want *state) {
	t.Helper()
	if got.seq != want.seq {
		t.Errorf("seq = %d, want %d", got.seq, want.seq)
	}
	if len(got.holds) != len(want.holds) {
		t.Errorf("%d holds, want %d", len(got.holds), len(want.holds))
	}
	for id, w := range want.holds {
		g := got.holds[id]
		if g == nil || !proto.Equal(g.view, w.view) || g.fromKey != w.fromKey || g.toKey != w.toKey {
			t.Errorf("hold %s = %v, want %v", id, g, w)
		}
	}
	if len(got.used) != len(want.used) {
		t.Errorf("%d slots in use, want %d", len(got.used), len(want.used))
	}
	for k, w := range want.used {
		if g := got.used[k]; g == nil || *g != *w {
			t.Errorf("slot %d usage = %v, want %v", k, g, w)
		}
	}
	ga, gok := got.nextExpiry()
	wa, wok := want.nextExpiry()
	if ga != wa || gok != wok {
		t.Errorf("next expiry = %d %v, want %d %v", ga, gok, wa, wok)
	}
}
