package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The process tests (startBookd) talk to bookd with plain clients. Every
// such node gets a customer account — the same one again when a node is
// restarted over the same store — and procAuth adds its access token to
// the requests for that node's address that carry no Authorization of
// their own. It wraps http.DefaultTransport, so it applies to every client
// without a Transport of its own, and to nothing else.
type procAuth struct {
	next   http.RoundTripper
	mu     sync.Mutex
	tokens map[string]nodeTokens // host:port → its tokens
}

// nodeTokens are the access tokens used with one node: the admin's for
// /v1/admin, the customer's for the rest.
type nodeTokens struct{ customer, admin string }

var processAuth = func() *procAuth {
	a := &procAuth{next: http.DefaultTransport, tokens: map[string]nodeTokens{}}
	http.DefaultTransport = a
	return a
}()

// set makes the requests to addr carry tokens until t ends: the port may
// later be another node's, which would refuse them (401, even on /readyz).
func (a *procAuth) set(t *testing.T, addr string, tokens nodeTokens) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[addr] = tokens
	t.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.tokens[addr] == tokens {
			delete(a.tokens, addr)
		}
	})
}

func (a *procAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	toks := a.tokens[req.URL.Host]
	a.mu.Unlock()
	tok := toks.customer
	if strings.HasPrefix(req.URL.Path, "/v1/admin") {
		tok = toks.admin
	}
	if tok != "" && req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return a.next.RoundTrip(req)
}

// processCustomer is the customer of the process tests.
const processCustomer = "process-customer@example.com"

// signIn logs the process customer in at addr, registering it first when
// the store does not know it, and the admin (made by startBookd with
// `bookd admin create`), and remembers their tokens for addr.
func (a *procAuth) signIn(t *testing.T, addr string) {
	t.Helper()
	a.set(t, addr, nodeTokens{customer: a.login(t, addr, processCustomer, true), admin: a.login(t, addr, "admin@example.com", false)})
}

func (a *procAuth) login(t *testing.T, addr, email string, register bool) string {
	t.Helper()
	post := func(path string) (int, []byte) {
		body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, testPassword)
		resp, err := a.next.RoundTrip(mustRequest(t, "http://"+addr+path, body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b := post("/v1/auth/login")
	if code == http.StatusUnauthorized && register {
		if code, b := post("/v1/auth/register"); code != http.StatusCreated {
			t.Fatalf("register the process customer = %d %s", code, b)
		}
		code, b = post("/v1/auth/login")
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); code != http.StatusOK || err != nil || tok.AccessToken == "" {
		t.Fatalf("log %s in = %d %s", email, code, b)
	}
	return tok.AccessToken
}

func mustRequest(t *testing.T, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}
