package h1

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestNewFields(t *testing.T) {
	f, err := NewFields(http.Header{
		"X-Frame-Options": {"DENY"},
		"Cache-Control":   {"no-store"},
		"Vary":            {"Origin", "Accept"},
	})
	if err != nil {
		t.Fatalf("NewFields = %v, want nil", err)
	}
	got := string(f.appendExcept(nil, 0))
	want := "Cache-Control: no-store\r\nVary: Origin\r\nVary: Accept\r\nX-Frame-Options: DENY\r\n"
	if got != want {
		t.Errorf("fields written as %q, want %q (sorted by name, a line per value)", got, want)
	}
	i, ok := f.index("Vary")
	if !ok {
		t.Fatalf("index(Vary) not found")
	}
	got = string(f.appendExcept(nil, 1<<i))
	if want := "Cache-Control: no-store\r\nX-Frame-Options: DENY\r\n"; got != want {
		t.Errorf("with Vary in the map: %q, want %q", got, want)
	}

	// As many as a uint64 marks: the last one's own value wins too.
	f, err = NewFields(manyFields(maxDefaults))
	if err != nil {
		t.Fatalf("NewFields(%d fields) = %v, want nil", maxDefaults, err)
	}
	last, ok := f.index(f.names[maxDefaults-1])
	if !ok || last != maxDefaults-1 {
		t.Fatalf("index(%s) = %d, %v", f.names[maxDefaults-1], last, ok)
	}
	if got := string(f.appendExcept(nil, 1<<last)); strings.Contains(got, f.names[last]+":") || strings.Count(got, "\r\n") != maxDefaults-1 {
		t.Errorf("with the last of %d set by the handler: %q", maxDefaults, got)
	}

	for _, bad := range []http.Header{
		{"Bad Name": {"x"}},
		{"x-frame-options": {"DENY"}}, // not canonical: the map would miss a handler's own
		{"X-A": {"a\r\nX-Injected: 1"}},
		{"X-A": {"a\x00"}},
		{"X-A": {" padded "}},
		{"Content-Length": {"5"}},
		{"Content-Type": {"text/plain"}},
		{"Transfer-Encoding": {"chunked"}},
		{"Connection": {"close"}},
		{"Date": {"Mon, 02 Jan 2006 15:04:05 GMT"}},
		manyFields(maxDefaults + 1),
	} {
		if _, err := NewFields(bad); err == nil {
			t.Errorf("NewFields(%v) = nil error, want it refused", bad)
		}
	}
}

// TestSetDefaults serves answers with default fields over a real
// connection and reads them with net/http's reader.
func TestSetDefaults(t *testing.T) {
	f, err := NewFields(http.Header{"X-Frame-Options": {"DENY"}, "Cache-Control": {"no-store"}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		took := false
		if r.URL.Path != "/none" {
			took = SetDefaults(w, f)
		}
		if r.URL.Path == "/own" {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		fmt.Fprintf(w, "defaults taken: %v", took)
	})}
	c := dial(t, served(t, s))

	c.send(get("/plain") + get("/own") + get("/none"))
	for _, tc := range []struct {
		path                string
		wantCache, wantDeny string
	}{
		{"/plain", "no-store", "DENY"},
		{"/own", "public, max-age=60", "DENY"}, // the handler's own value, alone
		{"/none", "", ""},                      // nothing carries over to the next answer
	} {
		res, body := c.answer("GET")
		if body != "defaults taken: "+fmt.Sprint(tc.path != "/none") {
			t.Errorf("%s: body %q", tc.path, body)
		}
		if got := res.Header.Values("Cache-Control"); strings.Join(got, "|") != tc.wantCache {
			t.Errorf("%s: Cache-Control %q, want %q", tc.path, got, tc.wantCache)
		}
		if got := res.Header.Values("X-Frame-Options"); strings.Join(got, "|") != tc.wantDeny {
			t.Errorf("%s: X-Frame-Options %q, want %q", tc.path, got, tc.wantDeny)
		}
	}

	// A request net/http serves has no h1 answer to take them: the caller
	// is told so and sets them in the map.
	c.send("GET /old HTTP/1.0\r\nHost: test\r\n\r\n")
	res, body := c.answer("GET")
	if body != "defaults taken: false" || res.Header.Get("X-Frame-Options") != "" {
		t.Errorf("under net/http: body %q, X-Frame-Options %q; want false and none", body, res.Header.Get("X-Frame-Options"))
	}
}

func manyFields(n int) http.Header {
	h := http.Header{}
	for i := range n {
		h[fmt.Sprintf("X-F%d", i)] = []string{"v"}
	}
	return h
}
