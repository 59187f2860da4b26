package edge

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/bookd/bookd/edge/h1"
)

// TestSecurityHeadersOverH1 serves the API through bookd's own HTTP server
// (edge/h1), where the security fields come from a block made once
// instead of the header map: every answer carries each of them exactly
// once, and a handler's own value of one is sent instead of it, alone.
func TestSecurityHeadersOverH1(t *testing.T) {
	s := newTestServer(t, nil)
	s.cfg.BehindTLS = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: s}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v, want http.ErrServerClosed", err)
		}
	})
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	defaults := map[string]string{}
	for _, kv := range securityHeaders {
		defaults[kv.name] = kv.value[0]
	}
	defaults["Strict-Transport-Security"] = hsts[0]
	for _, tc := range []struct {
		path string
		own  map[string]string // the handler's own values; substrings
	}{
		{"/v1/listings", nil},
		{"/v1/no-such-thing", nil}, // a problem answer
		{"/api-docs", map[string]string{"Content-Security-Policy": "script-src 'self'", "Cache-Control": "public, max-age=300"}},
		{"/openapi.json", map[string]string{"Cache-Control": "public, max-age=300"}},
		{"/.well-known/jwks.json", map[string]string{"Cache-Control": "public, max-age=60"}},
	} {
		res, err := client.Get("http://" + ln.Addr().String() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		for name, want := range defaults {
			if own, ok := tc.own[name]; ok {
				want = own
			}
			got := res.Header.Values(name)
			if len(got) != 1 || !strings.Contains(got[0], want) {
				t.Errorf("GET %s: %s = %q, want one field with %q", tc.path, name, got, want)
			}
		}
	}
}
