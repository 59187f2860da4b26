package h1

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// netHTTPRequest reads b as net/http's server does: http.ReadRequest (which
// takes Host out of the header, and refuses two), then the checks its
// connection adds. It reports whether the whole of b was the head.
// (Whether a Host field was there at all is left to the comparison of
// Host: parseHead takes no head without one.)
func netHTTPRequest(b []byte) (*http.Request, bool) {
	br := bufio.NewReader(bytes.NewReader(b))
	req, err := http.ReadRequest(br)
	if err != nil || br.Buffered() != 0 || !httpguts.ValidHostHeader(req.Host) {
		return nil, false
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, false
			}
		}
	}
	return req, true
}

// checkHead fails when parseHead takes b as plain but net/http's server
// would refuse it or read it otherwise.
func checkHead(t *testing.T, b []byte) (plain bool) {
	t.Helper()
	n := headEnd(b)
	if n < 0 {
		return false
	}
	h, ok := parseHead(b[:n])
	if !ok {
		return false
	}
	req, ok := netHTTPRequest(b[:n])
	if !ok {
		t.Fatalf("parseHead took %q as plain; net/http refuses it", b[:n])
	}
	if h.method != req.Method || h.target != req.RequestURI || h.host != req.Host ||
		h.url != *req.URL || h.contentLength != req.ContentLength || h.close != req.Close {
		t.Fatalf("%q: parseHead read method %q target %q url %#v host %q length %d close %v; net/http %q %q %#v %q %d %v",
			b[:n], h.method, h.target, h.url, h.host, h.contentLength, h.close,
			req.Method, req.RequestURI, *req.URL, req.Host, req.ContentLength, req.Close)
	}
	if !reflect.DeepEqual(map[string][]string(h.header), map[string][]string(req.Header)) {
		t.Fatalf("%q: parseHead read the header %q; net/http %q", b[:n], h.header, req.Header)
	}
	return true
}

const loadgenHold = "POST /v1/holds HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nUser-Agent: bookd-loadgen\r\n" +
	"Authorization: Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln\r\nContent-Type: application/json\r\n" +
	"Idempotency-Key: order-42\r\nContent-Length: 38\r\n\r\n"

func TestParseHeadPlain(t *testing.T) {
	for _, head := range []string{
		loadgenHold,
		"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /v1/resources?city=lisbon&kind=hotel HTTP/1.1\r\nHost: [::1]:3000\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		"DELETE /v1/holds/x%20y HTTP/1.1\r\nhost: a\r\nx-custom-thing:  spaced value \t\r\nX-Custom-Thing: again\r\n\r\n",
		"OPTIONS /v1/holds HTTP/1.1\r\nHost: a\r\nOrigin: http://a\r\nConnection: Keep-Alive\r\n\r\n",
		"PUT /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
	} {
		if !checkHead(t, []byte(head)) {
			t.Errorf("%q: not plain; want plain", head)
		}
	}
}

func TestParseHeadNotPlain(t *testing.T) {
	for _, head := range []string{
		"GET /livez HTTP/1.0\r\nHost: a\r\n\r\n",                                   // another version
		"HEAD /livez HTTP/1.1\r\nHost: a\r\n\r\n",                                  // HEAD answers have no body
		"GET /livez HTTP/1.1\r\n\r\n",                                              // no Host
		"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",                        // two Hosts
		"GET /livez HTTP/1.1\r\nHost: a b\r\n\r\n",                                 // a bad Host
		"POST /v1/holds HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", // chunked
		"POST /v1/holds HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"POST /v1/holds HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
		"POST /v1/holds HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",                     // net/http adds Cache-Control
		"GET /livez HTTP/1.1\nHost: a\r\n\r\n",                                           // bare LF
		"GET /livez HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",                              // obs-fold
		"GET /livez HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",                       // obs-text
		"GET /livez HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",                            // a control
		"GET /livez HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n",                                // space before the colon
		"GET http://a/livez HTTP/1.1\r\nHost: a\r\n\r\n",                                 // absolute form
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",                                              // asterisk form
		"GET /li vez HTTP/1.1\r\nHost: a\r\n\r\n",                                        // a space in the target
		"GET  /livez HTTP/1.1\r\nHost: a\r\n\r\n",                                        // two spaces
		"get /livez HTTP/1.1\r\nHost: a\r\n\r\n",                                         // method case
		"GET /livez HTTP/1.1\r\nHost: a\r\nConnection: close, upgrade\r\n\r\n",           // a list
		"GET /livez HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 65) + "\r\n", // too many fields
	} {
		if checkHead(t, []byte(head)) {
			t.Errorf("%q: plain; want it handed to net/http", head)
		}
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte(loadgenHold))
	f.Add([]byte("GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n"))
	f.Add([]byte("GET /a?b=c%20d HTTP/1.1\r\nHost: a:1\r\nConnection: close\r\nX-A: 1\r\nx-a: 2\r\n\r\n"))
	f.Add([]byte("POST /v1/holds HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nCookie: a=b; c=d\r\n\r\n"))
	f.Add([]byte("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("GET //a/b HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("GET /v1/holds/r-1.AbC~_/../x HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("GET /a%2Fb/c+d HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkHead(t, b)
	})
}

// TestParseHeadGenerated builds heads from pieces that parsers are known to
// disagree on (case, repeats, odd separators, odd values and targets) and
// checks each against net/http, as FuzzParseHead does; random mutation
// seldom reaches heads that parseHead takes.
func TestParseHeadGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	methods := []string{"GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "get"}
	targets := []string{"/", "/a?b", "/a#b", "//x", "/%zz", "/a%2fb", "/?", "/a?b=%", "/;x", "/@a", "/a/../b", "/%00", "/é"}
	names := []string{"Host", "host", "HOST", "Content-Length", "content-length", "Connection", "X_A", "x-a",
		"Transfer-Encoding", "Cookie", "Cache-Control", "A", "Content-length", "Keep-Alive", "Te", "Expect",
		"Upgrade", "Proxy-Connection", "Pragma", "Host ", " Host"}
	values := []string{"", "a", "5", "007", "0", "close", "keep-alive", "Close", "a b", " a\t", "[::1]:80", "a:b:c",
		"x_y", "-1", "1,1", "99999999999999999999", "\t", "a\x7f", "chunked", "no-cache"}
	seps := []string{":", ": ", ":\t", " :"}
	plain := 0
	for range 200_000 {
		var b strings.Builder
		b.WriteString(methods[r.IntN(len(methods))] + " " + targets[r.IntN(len(targets))] + " HTTP/1.1\r\n")
		for range r.IntN(6) {
			b.WriteString(names[r.IntN(len(names))] + seps[r.IntN(len(seps))] + values[r.IntN(len(values))] + "\r\n")
		}
		b.WriteString("\r\n")
		if checkHead(t, []byte(b.String())) {
			plain++
		}
	}
	if plain < 1000 {
		t.Fatalf("only %d of the generated heads were plain: the generator no longer reaches the parser's accepting paths", plain)
	}
}

// TestFieldValue holds the word-at-a-time fieldValue to the byte table for
// every byte at every place of a word, and around words.
func TestFieldValue(t *testing.T) {
	byTable := func(v string) bool {
		for i := 0; i < len(v); i++ {
			if !valueByte[v[i]] {
				return false
			}
		}
		return true
	}
	for n := range 20 {
		for at := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[at] = byte(c)
				if v := string(b); fieldValue(v) != byTable(v) {
					t.Fatalf("fieldValue(%q) = %v, want %v", v, fieldValue(v), byTable(v))
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(' ' + r.IntN(95))
			if r.IntN(30) == 0 {
				b[i] = byte(r.IntN(256))
			}
		}
		if v := string(b); fieldValue(v) != byTable(v) {
			t.Fatalf("fieldValue(%q) = %v, want %v", v, fieldValue(v), byTable(v))
		}
	}
}
