package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bookd/bookd/cluster"
	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/postgres"
	"github.com/bookd/bookd/persistence/testserver"
)

// testCluster is N bookd processes on loopback ports that form one cluster
// by gossip over one real PostgreSQL database and Redis. Each node can be
// killed (SIGKILL), stopped (SIGTERM) and started again on its addresses;
// a start is always a new member.
type testCluster struct {
	t     *testing.T
	dbURL string
	redis string
	extra []string // flags every node gets
	mu    sync.Mutex
	nodes []*clusterNode
	// client sends the tokens of the customer (and, under /v1/admin, the
	// admin) that every node shares through the database.
	client *http.Client
	auth   *procAuth
	tokens nodeTokens // once signed in
}

// signIn gives the requests for n's address the cluster's tokens, signing
// the customer and the admin in through n the first time.
func (c *testCluster) signIn(t *testing.T, n *clusterNode) {
	t.Helper()
	c.mu.Lock()
	toks := c.tokens
	c.mu.Unlock()
	if toks.customer == "" {
		toks = nodeTokens{customer: c.auth.login(t, n.http, processCustomer, true), admin: c.auth.login(t, n.http, "admin@example.com", false)}
		c.mu.Lock()
		c.tokens = toks
		c.mu.Unlock()
	}
	c.auth.set(t, n.http, toks)
}

// clusterNode is one node's addresses and its current process (nil when
// it is not running).
type clusterNode struct {
	name                string
	http, gossip, actor string
	p                   *proc
	starts              int
}

func (n *clusterNode) base() string { return "http://" + n.http }

// newTestCluster makes a cluster of n nodes on a fresh database and starts
// them: the first alone, the others joining it. extra flags go to every
// node.
func newTestCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	auth := &procAuth{next: &http.Transport{MaxIdleConnsPerHost: 64}, tokens: map[string]nodeTokens{}}
	c := &testCluster{
		t: t, dbURL: testserver.DatabaseT(t), redis: testserver.RedisT(t).URL(), extra: extra,
		client: &http.Client{Timeout: 30 * time.Second, Transport: auth}, auth: auth,
	}
	createAdmin(t, "--postgres", c.dbURL)
	t.Cleanup(c.client.CloseIdleConnections)
	for range n {
		c.addNode(t)
	}
	c.waitMembers(t, n)
	return c
}

// addNode starts one more node that joins the running ones.
func (c *testCluster) addNode(t *testing.T) *clusterNode {
	t.Helper()
	c.mu.Lock()
	n := &clusterNode{name: fmt.Sprintf("node%d", len(c.nodes)+1), http: freeAddr(t), gossip: freeAddr(t), actor: freeAddr(t)}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.start(t, n)
	return n
}

// seeds is the gossip addresses of the running nodes but n.
func (c *testCluster) seeds(n *clusterNode) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s []string
	for _, o := range c.nodes {
		if o != n && o.p != nil {
			s = append(s, o.gossip)
		}
	}
	return s
}

// running returns the nodes with a process.
func (c *testCluster) running() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r []*clusterNode
	for _, n := range c.nodes {
		if n.p != nil {
			r = append(r, n)
		}
	}
	return r
}

// start starts n's process and waits until it is ready.
func (c *testCluster) start(t *testing.T, n *clusterNode) {
	t.Helper()
	_, aport, _ := strings.Cut(n.actor, ":")
	args := append([]string{"serve", "--postgres", c.dbURL, "--redis", c.redis, "--demo=false", "--log-level", "warn",
		"--http", n.http, "--gossip-addr", n.gossip, "--actor-host", "127.0.0.1", "--actor-port", aport}, testServeFlags...)
	if seeds := c.seeds(n); len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	args = append(args, c.extra...)
	cmd := exec.Command(bookdBinary(t), args...)
	cmd.Env = os.Environ()
	p := &proc{cmd: cmd, addr: n.http, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	c.mu.Lock()
	n.p, n.starts = p, n.starts+1
	start := n.starts
	c.mu.Unlock()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		// A race-enabled bookd reports races in its log (and exits 66 when
		// it ends by itself): a killed one must be checked here.
		if strings.Contains(p.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("%s (start %d) reported a data race", n.name, start)
		}
		if t.Failed() {
			t.Logf("%s (start %d) logs:\n%s", n.name, start, p.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.client.Get(n.base() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				c.signIn(t, n)
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", n.name, err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s\n%s", n.name, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends n's process with sig and returns its exit error.
func (c *testCluster) stop(t *testing.T, n *clusterNode, sig syscall.Signal) error {
	t.Helper()
	err := n.p.kill(t, sig)
	c.mu.Lock()
	n.p = nil
	c.mu.Unlock()
	return err
}

// status reads n's view of the cluster.
func (c *testCluster) status(n *clusterNode) (cluster.Status, error) {
	c.mu.Lock()
	admin := c.tokens.admin
	c.mu.Unlock()
	return fetchClusterStatus(context.Background(), n.base(), admin, 5*time.Second)
}

// waitMembers waits until every running node sees want live members, all
// of them in placement, and returns the member ids.
func (c *testCluster) waitMembers(t *testing.T, want int) []string {
	t.Helper()
	var ids []string
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		ids = nil
		for _, n := range c.running() {
			st, err := c.status(n)
			if err != nil {
				ok, last = false, err.Error()
				break
			}
			placed := []string{}
			for _, m := range st.Members {
				if m.Placement && m.State == "alive" {
					placed = append(placed, m.ID)
				}
			}
			if len(placed) != want || len(st.Members) != want {
				ok, last = false, fmt.Sprintf("%s sees %d members, %d alive in placement", n.name, len(st.Members), len(placed))
				break
			}
			ids = placed
		}
		if ok {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not settle on %d members within 30s: %s", want, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memberOf returns the member id of node n (from its own view).
func (c *testCluster) memberOf(t *testing.T, n *clusterNode) string {
	t.Helper()
	st, err := c.status(n)
	if err != nil {
		t.Fatal(err)
	}
	return st.Node
}

// activeCounts returns each running node's exact activation count.
func (c *testCluster) activeCounts(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range c.running() {
		st, err := c.status(n)
		if err != nil {
			t.Fatalf("%s: GET /v1/cluster: %v", n.name, err)
		}
		for _, m := range st.Members {
			if m.Self {
				out[n.name] = m.Active
			}
		}
	}
	return out
}

// openStore opens the cluster's database from the test process, to create
// catalog rows fast.
func (c *testCluster) openStore(t *testing.T) persistence.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), c.dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// gossipKey is a fixed test key for --gossip-key.
var gossipKey = base64.StdEncoding.EncodeToString([]byte("bookd-test-gossip-key-32-bytes!!"))

// getJSON fetches url into v and returns the status (0: no answer).
func getJSON(c *http.Client, url string, v any) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if json.NewDecoder(resp.Body).Decode(v) != nil {
			return 0
		}
	}
	return resp.StatusCode
}
