package h1

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// response is the http.ResponseWriter of one request; a connection reuses
// its own for each request, header map and buffers included.
type response struct {
	c      *conn
	req    *http.Request
	body   *body // the request's, or nil
	header http.Header
	// defaults are fields the answer carries unless header names them
	// (SetDefaults); nil: none.
	defaults *Fields

	status     int   // the handler's, once set (then head holds its fields); 0 before
	committed  bool  // the head went to the connection's writer
	declared   int64 // the Content-Length the handler set, or -1
	written    int64 // body bytes the handler wrote
	chunked    bool
	noBody     bool // the status has no body (1xx, 204, 304)
	hasType    bool // the handler set Content-Type (maybe to nothing)
	hasDate    bool
	closeAfter bool // the handler asked for Connection: close, or the body fell short
	noSniff    bool // Content-Encoding is set: the body is not sniffed
	head       []byte
	buf        []byte // the body, buffered until the head is written
	err        error
}

// maxBuffered is how much of a body waits for the handler to end, so that
// the answer says its Content-Length; a longer one is sent chunked.
const maxBuffered = 4096

func (w *response) reset(req *http.Request, body *body) {
	if w.header == nil {
		// Small: the fields every answer has come from defaults.
		w.header = make(http.Header, 8)
		w.buf = make([]byte, 0, maxBuffered)
	}
	clear(w.header)
	*w = response{c: w.c, req: req, body: body, header: w.header, declared: -1, head: w.head[:0], buf: w.buf[:0]}
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader sets the status and takes a snapshot of the header fields, as
// net/http does: later changes to the map do not reach the answer.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.status != 0 {
		w.c.s.logf("h1: superfluous WriteHeader(%d) after %d, serving %s", code, w.status, w.req.URL.Path)
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.status = code
	w.noBody = code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
	w.head = append(w.head, statusLine(code)...)
	var set uint64 // the defaults the handler set itself
	for k, vv := range w.header {
		if w.defaults != nil {
			if i, ok := w.defaults.index(k); ok {
				set |= 1 << i
			}
		}
		switch k {
		case "Content-Length":
			if len(vv) > 0 {
				if n, err := strconv.ParseInt(vv[0], 10, 64); err == nil && n >= 0 {
					w.declared = n
				} else {
					w.c.s.logf("h1: invalid Content-Length of %q", vv[0])
				}
			}
			continue
		case "Transfer-Encoding":
			continue // the framing is this package's
		case "Connection":
			if httpguts.HeaderValuesContainsToken(vv, "close") {
				w.closeAfter = true
			}
			continue
		case "Content-Type":
			w.hasType = true
			if code == http.StatusNotModified {
				continue
			}
		case "Date":
			w.hasDate = true
		case "Content-Encoding":
			w.noSniff = true
		}
		w.head = appendField(w.head, k, vv)
	}
	if w.defaults != nil {
		w.head = w.defaults.appendExcept(w.head, set)
	}
	if w.noBody {
		w.declared = -1
	}
}

// informational writes a 1xx answer at once.
func (w *response) informational(code int) {
	b := append(w.head[:0], statusLine(code)...)
	for k, vv := range w.header {
		if k != "Content-Length" && k != "Transfer-Encoding" {
			b = appendField(b, k, vv)
		}
	}
	b = append(b, "\r\n"...)
	w.head = b[:0]
	if _, err := w.c.bw.Write(b); err == nil {
		err = w.c.bw.Flush()
		w.setErr(err)
	}
}

// appendField writes k's values as header lines, with the care net/http
// takes: a name that is not a token is left out, and CR or LF in a value
// becomes a space, so that a value cannot start another field.
func appendField(b []byte, k string, vv []string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return b
	}
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		v = textproto.TrimString(v) // as net/http: spaces, tabs, CR and LF
		start := len(b)
		b = append(b, v...)
		if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
			for i := start; i < len(b); i++ {
				if b[i] == '\r' || b[i] == '\n' {
					b[i] = ' '
				}
			}
		}
		b = append(b, "\r\n"...)
	}
	return b
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if !w.committed {
		if len(w.buf)+len(p) <= maxBuffered {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *response) writeBody(p []byte) {
	if len(p) == 0 {
		return
	}
	bw := w.c.bw
	if w.chunked {
		var n [16]byte
		bw.Write(strconv.AppendInt(n[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		w.setErr(err)
		return
	}
	_, err := bw.Write(p)
	w.setErr(err)
}

func (w *response) setErr(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// Flush sends what the handler wrote so far (http.Flusher).
func (w *response) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.commit(false, nil)
	w.setErr(w.c.bw.Flush())
}

// commit writes the head and the buffered body; done says the handler
// has returned, so that the buffered body is the whole body, and next is
// what the handler writes after the buffer (sniffed when the buffer is
// short).
func (w *response) commit(done bool, next []byte) {
	if w.committed {
		return
	}
	w.committed = true
	if w.body != nil && w.body.tooLong() {
		// The connection will close rather than read the rest of the
		// body: say so.
		w.closeAfter = true
	}
	b := w.head
	if !w.hasDate {
		b = append(b, "Date: "...)
		b = appendDate(b)
		b = append(b, "\r\n"...)
	}
	switch {
	case w.noBody:
	case w.declared >= 0:
		b = appendLength(b, w.declared)
	case done:
		b = appendLength(b, int64(len(w.buf)))
	default:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if !w.hasType && !w.noSniff && !w.noBody && len(w.buf)+len(next) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, http.DetectContentType(sniffed(w.buf, next))...)
		b = append(b, "\r\n"...)
	}
	if w.closing() {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.head = b
	_, err := w.c.bw.Write(b)
	w.setErr(err)
	buf := w.buf
	w.buf = w.buf[:0]
	w.writeBody(buf)
}

// sniffLen is how much of a body http.DetectContentType reads.
const sniffLen = 512

// sniffed returns the first sniffLen bytes of a followed by b.
func sniffed(a, b []byte) []byte {
	if len(a) >= sniffLen || len(b) == 0 {
		return a
	}
	return append(a[:len(a):len(a)], b[:min(len(b), sniffLen-len(a))]...)
}

func (w *response) closing() bool {
	return w.closeAfter || w.req.Close || w.c.s.shutdown.Load()
}

// finish ends the answer after the handler returned.
func (w *response) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.declared >= 0 && w.written < w.declared {
		// The handler promised more than it wrote (Write refuses more):
		// say so with a close, as net/http does, rather than let the client
		// wait. When the head has gone already, the close alone says it.
		w.closeAfter = true
	}
	w.commit(true, nil)
	if w.chunked {
		_, err := w.c.bw.WriteString("0\r\n\r\n")
		w.setErr(err)
	}
}

func appendLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}

// statusLines holds "HTTP/1.1 NNN Text\r\n" for every code.
var statusLines = sync.OnceValue(func() [][]byte {
	lines := make([][]byte, 1000)
	for code := 100; code < 1000; code++ {
		text := http.StatusText(code)
		if text == "" {
			text = "status code " + strconv.Itoa(code)
		}
		lines[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n")
	}
	return lines
})

func statusLine(code int) []byte { return statusLines()[code] }

// date caches the Date value, which changes once a second.
type dateValue struct {
	unix int64
	text string
}

var date atomic.Pointer[dateValue]

func appendDate(b []byte) []byte {
	now := time.Now()
	d := date.Load()
	if d == nil || d.unix != now.Unix() {
		d = &dateValue{unix: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
		date.Store(d)
	}
	return append(b, d.text...)
}
