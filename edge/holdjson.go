package edge

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

// The hold endpoints are the hot path of a sale: every request decodes a
// HoldRequest and encodes a HoldJSON. encoding/json does both by reflection
// and allocates a decoder, its buffer and an encoder per request, which made
// it a tenth of the edge's CPU in a flash sale (make bench-flash, pprof).
// The fast paths below take the common, plain shapes byte by byte and hand
// everything else to encoding/json, so the results and the problems are
// encoding/json's own; FuzzHoldRequestFastPath and FuzzHoldJSONFastPath
// check that against encoding/json.

// decodeHoldRequestFast parses body when it is one flat JSON object of the
// HoldRequest fields, each at most once, with plain strings (printable
// ASCII, no escapes) and a plain integer quantity. ok is false for anything
// else, which the caller decodes with unmarshalStrict.
func decodeHoldRequestFast(body []byte) (req HoldRequest, ok bool) {
	p := jsonScan{b: body}
	p.space()
	if !p.eat('{') {
		return HoldRequest{}, false
	}
	var seen [4]bool
	p.space()
	if p.eat('}') {
		return req, p.end()
	}
	for {
		p.space()
		key, ok := p.plainBytes() // compared in place, not kept
		if !ok {
			return HoldRequest{}, false
		}
		p.space()
		if !p.eat(':') {
			return HoldRequest{}, false
		}
		p.space()
		field := -1
		switch string(key) {
		case "resource_id":
			field = 0
			req.ResourceID, ok = p.plainString()
		case "from":
			field = 1
			req.From, ok = p.plainString()
		case "to":
			field = 2
			req.To, ok = p.plainString()
		case "quantity":
			field = 3
			var q int64
			if q, ok = p.plainInt(); ok {
				req.Quantity = &q
			}
		}
		if field < 0 || !ok || seen[field] {
			return HoldRequest{}, false
		}
		seen[field] = true
		p.space()
		if p.eat('}') {
			if !p.end() {
				return HoldRequest{}, false
			}
			return req, true
		}
		if !p.eat(',') {
			return HoldRequest{}, false
		}
	}
}

// jsonScan reads plain JSON values from b.
type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScan) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (p *jsonScan) end() bool {
	p.space()
	return p.i == len(p.b)
}

// plainString reads a string of printable ASCII without escapes.
func (p *jsonScan) plainString() (string, bool) {
	b, ok := p.plainBytes()
	return string(b), ok
}

// plainBytes is plainString's bytes, a part of p.b.
func (p *jsonScan) plainBytes() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		switch {
		case c == '"':
			b := p.b[start:p.i]
			p.i++
			return b, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// plainInt reads an integer without fraction or exponent, of at most 18
// digits (no overflow).
func (p *jsonScan) plainInt() (int64, bool) {
	neg := p.eat('-')
	digits := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	switch nd := p.i - digits; {
	case nd == 0 || nd > 18:
		return 0, false
	case nd > 1 && p.b[digits] == '0': // a leading zero is not JSON
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// writeHold answers with the hold as HoldJSON.
func writeHold(w http.ResponseWriter, status int, h *bookdv1.Hold) {
	bp := jsonBufs.Get().(*[]byte)
	b := appendHoldJSON((*bp)[:0], h)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledJSON { // a hold with huge fields does not stay pinned
		*bp = b
		jsonBufs.Put(bp)
	}
}

// maxPooledJSON is the largest buffer writeHold keeps for reuse.
const maxPooledJSON = 16 << 10

var (
	jsonBufs        = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
	jsonContentType = []string{"application/json"}
)

// appendHoldJSON appends holdJSON(h) as json.Encoder writes it, with the
// trailing newline.
func appendHoldJSON(b []byte, h *bookdv1.Hold) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, h.GetHoldId())
	b = append(b, `,"resource_id":`...)
	b = appendJSONString(b, h.GetResourceId())
	b = append(b, `,"status":`...)
	b = appendJSONString(b, h.GetStatus().APIName())
	b = append(b, `,"quantity":`...)
	b = strconv.AppendUint(b, uint64(h.GetQuantity()), 10)
	if f := h.GetFrom(); f != "" {
		b = append(b, `,"from":`...)
		b = appendJSONString(b, f)
	}
	if t := h.GetTo(); t != "" {
		b = append(b, `,"to":`...)
		b = appendJSONString(b, t)
	}
	if st := h.GetStatus(); st == bookdv1.HoldStatus_HOLD_STATUS_HELD || st == bookdv1.HoldStatus_HOLD_STATUS_EXPIRED {
		b = append(b, `,"expires_at":`...)
		b = appendMsTime(b, h.GetExpiresAtMs())
	}
	b = append(b, `,"created_at":`...)
	b = appendMsTime(b, h.GetCreatedAtMs())
	b = append(b, `,"updated_at":`...)
	b = appendMsTime(b, h.GetUpdatedAtMs())
	return append(b, "}\n"...)
}

// appendMsTime appends msTime(ms) as a JSON string. Years 0 to 9999, which
// is every time a hold has, are written digit by digit (a hold answer has
// three times, and the layout interpreter was 3% of a sale's CPU); the
// rest go through the layout.
func appendMsTime(b []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	milli := t.Nanosecond() / 1e6
	return append(b, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10), 'Z', '"')
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it: plain strings byte for byte, the rest by encoding/json (which
// escapes <, >, &, control characters and invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
