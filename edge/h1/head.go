package h1

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// A head is a parsed request head: the request line and the header fields.
type head struct {
	method        string
	target        string // the request-target, as sent
	url           url.URL
	host          string
	header        http.Header // without Host, as net/http keeps it
	contentLength int64       // 0 when absent
	close         bool        // Connection: close
}

// Limits of the heads this package parses; a head beyond them goes to
// net/http, which has its own.
const (
	maxFields = 64
	bufSize   = 4096 // the connection's read buffer, and so the largest head
)

// parseHead parses b, a request head up to and including its blank line,
// and reports whether it is plain: a request that this package serves
// exactly as net/http would. Anything else — another version, method or
// form of target, a chunked or expected body, an upgrade, obs-fold, bare
// LF, a byte outside visible ASCII, a repeated or malformed Host or
// Content-Length — is not plain, and the connection goes to net/http,
// which answers it (with a 400 when it is bad). So this parser accepts a
// subset of what net/http accepts, with the same meaning; FuzzParseHead
// holds it to that.
func parseHead(b []byte) (head, bool) {
	var h head
	// One string for the whole head: the header values are its substrings.
	s := string(b)
	line, rest, ok := cutCRLF(s)
	if !ok {
		return h, false
	}
	sp1 := strings.IndexByte(line, ' ')
	if sp1 <= 0 {
		return h, false
	}
	if h.method = line[:sp1]; !plainMethod(h.method) {
		return h, false
	}
	line = line[sp1+1:]
	sp2 := strings.IndexByte(line, ' ')
	if sp2 <= 0 || line[sp2+1:] != "HTTP/1.1" {
		return h, false
	}
	h.target = line[:sp2]
	if h.target[0] != '/' || !visible(h.target) {
		return h, false
	}
	if plainPath(h.target) {
		// What url.ParseRequestURI makes of it, without an allocation.
		h.url.Path = h.target
	} else {
		u, err := url.ParseRequestURI(h.target)
		if err != nil {
			return h, false
		}
		h.url = *u
	}

	// Count the fields first, so that their values share one backing array.
	n := strings.Count(rest, "\n") - 1 // less the blank line
	if n < 0 || n > maxFields {
		return h, false
	}
	h.header = make(http.Header, n)
	values := make([]string, n)
	hosts, lengths := 0, 0
	for i := 0; ; i++ {
		line, rest, ok = cutCRLF(rest)
		if !ok {
			return h, false
		}
		if line == "" {
			if rest != "" {
				return h, false // bytes after the blank line: not a head
			}
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !httpguts.ValidHeaderFieldName(line[:colon]) {
			return h, false
		}
		value := trimOWS(line[colon+1:])
		if !fieldValue(value) {
			return h, false
		}
		name := canonicalName(line[:colon])
		switch name {
		case "Host":
			hosts++
			if hosts > 1 || !plainHost(value) {
				return h, false
			}
			h.host = value
			continue // net/http moves Host out of the header
		case "Content-Length":
			lengths++
			cl, ok := parseLength(value)
			if lengths > 1 || !ok {
				return h, false
			}
			h.contentLength = cl
		case "Connection":
			switch {
			case strings.EqualFold(value, "close"):
				h.close = true
			case strings.EqualFold(value, "keep-alive"):
			default:
				return h, false
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Trailer", "Te", "Pragma":
			// Pragma: net/http may add a Cache-Control for it.
			return h, false
		}
		values[i] = value
		if prev, dup := h.header[name]; dup {
			h.header[name] = append(prev, value)
		} else {
			h.header[name] = values[i : i+1 : i+1]
		}
	}
	if hosts == 0 {
		return h, false // HTTP/1.1 requires Host; net/http answers 400
	}
	return h, true
}

// plainPath reports whether target is a path of unreserved characters
// and slashes only: no query, no escapes, nothing that url.ParseRequestURI
// would change or split off, so it is the URL's Path as it stands.
func plainPath(target string) bool {
	for i := 0; i < len(target); i++ {
		switch c := target[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// plainMethod reports whether m is a method served here.
// HEAD (whose answers have no body) and the rest go to net/http.
func plainMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// commonNames are canonical header names, looked up faster than
// net/textproto canonicalizes them (six common names: 75 against 175 ns);
// any other name goes to net/textproto.
var commonNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Cookie", "Host", "Idempotency-Key",
		"If-Match", "If-None-Match", "Origin", "Pragma", "Referer", "Sec-Fetch-Dest",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "User-Agent", "X-Api-Key", "X-Forwarded-For",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "Traceparent", "Tracestate",
		"Transfer-Encoding", "Expect", "Upgrade", "Trailer", "Te",
	} {
		m[n] = n
	}
	return m
}()

// canonicalName is textproto.CanonicalMIMEHeaderKey(name) for a token.
func canonicalName(name string) string {
	if c, ok := commonNames[name]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// cutCRLF splits s at its first LF, which must follow a CR: a bare LF
// (which net/http takes as a line end) is not plain. A CR inside the line
// is left to the callers, whose checks of every byte refuse it.
func cutCRLF(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i <= 0 || s[i-1] != '\r' {
		return "", "", false
	}
	return s[:i-1], s[i+1:], true
}

// visible reports whether s is all visible ASCII (no space, no control,
// nothing above 0x7e).
func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// fieldValue reports whether v, already trimmed, is visible ASCII with
// inner spaces and tabs; obs-text and controls are not plain.
//
// It looks at eight bytes at a time: a bearer token makes most of a
// request's head, and a byte at a time this was 1.5% of bookd's CPU on a
// hot resource. Only a word that may hold a byte below a space or above
// '~' (a tab, or a byte that is not plain) is looked at byte by byte.
func fieldValue(v string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := v[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// A high bit marks a byte ≥ 0x80; x+1 marks 0x7f (a carry
		// comes only from 0xff, marked already); x-0x20 &^ x marks
		// some byte below 0x20 whenever there is one.
		if (x|(x+ones)|((x-0x20*ones)&^x))&highs == 0 {
			continue
		}
		for j := range 8 {
			if !valueByte[w[j]] {
				return false
			}
		}
	}
	for ; i < len(v); i++ {
		if !valueByte[v[i]] {
			return false
		}
	}
	return true
}

// valueByte is the bytes of a plain field value.
var valueByte = func() (t [256]bool) {
	for c := ' '; c < 0x7f; c++ {
		t[c] = true
	}
	t['\t'] = true
	return t
}()

// trimOWS is strings.Trim(s, " \t") without building the cutset's table
// on every call (six header values: 15 against 83 ns).
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// plainHost reports whether v is a host[:port] of the usual characters: a
// name, an IPv4 address or a bracketed IPv6 address. Empty is not plain.
func plainHost(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length: 1 to 18 digits (as net/http,
// through ParseUint, which takes digits only).
func parseLength(v string) (int64, bool) {
	if len(v) > 18 {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 63)
	return int64(n), err == nil
}

// headEnd returns the length of the head at the start of b, through the
// blank line that ends it, or -1 when b holds no blank line yet. As in
// net/http a line may end in LF alone; parseHead refuses such a head.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}
