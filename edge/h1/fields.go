package h1

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Fields is a fixed set of header fields, checked and written out once,
// that every answer of a handler can carry (see SetDefaults) without
// putting them in its header map each time. bookd's answers carry seven
// security fields; in the map, each answer assigned, iterated, checked
// and cleared them, about 2% of the CPU of a hold on a hot resource
// (profiled in make bench-flash). A Fields is read-only and safe for
// concurrent use.
type Fields struct {
	names []string // canonical, sorted; at most maxDefaults
	lines [][]byte // names[i]'s "Name: value\r\n" lines
	all   []byte   // every line, in order
	// lengths has bit n set when a name is n bytes long (n < 64), so that
	// most names of a handler's map are known not to be defaults at once.
	lengths uint64
}

// maxDefaults bounds a Fields' names: WriteHeader marks the ones a handler
// set in a uint64.
const maxDefaults = 64

// NewFields checks h and writes it out. Every name must be a token and
// every value free of CR, LF and NUL; names that frame or describe the
// body (Content-Length, Content-Type, Transfer-Encoding, Connection,
// Trailer, Content-Encoding) and Date are refused: WriteHeader takes those
// from the header map only.
func NewFields(h http.Header) (*Fields, error) {
	f := &Fields{}
	for k := range h {
		f.names = append(f.names, k)
	}
	if len(f.names) > maxDefaults {
		return nil, fmt.Errorf("h1: %d default fields, at most %d", len(f.names), maxDefaults)
	}
	slices.Sort(f.names)
	for _, k := range f.names {
		if !httpguts.ValidHeaderFieldName(k) || http.CanonicalHeaderKey(k) != k {
			return nil, fmt.Errorf("h1: header name %q is not a canonical token", k)
		}
		switch k {
		case "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Trailer", "Content-Encoding", "Date":
			return nil, fmt.Errorf("h1: %s cannot be a default field", k)
		}
		var line []byte
		for _, v := range h[k] {
			if !httpguts.ValidHeaderFieldValue(v) || strings.TrimSpace(v) != v {
				return nil, fmt.Errorf("h1: the value %q of %s is not a plain field value", v, k)
			}
			line = append(line, k...)
			line = append(line, ": "...)
			line = append(line, v...)
			line = append(line, "\r\n"...)
		}
		f.lines = append(f.lines, line)
		f.all = append(f.all, line...)
		if len(k) < 64 {
			f.lengths |= 1 << len(k)
		}
	}
	return f, nil
}

// SetDefaults makes the answer w is writing carry f's fields, except each
// whose name the handler's header map has when the head is written (it
// wins, whatever its value: a nil one leaves the field out). The fields
// are not in w.Header(), so Get does not see them and Del does not remove
// them. A later call replaces f. It reports false,
// and does nothing, when w is not an answer of this package's Server (a
// request net/http serves, or a wrapped writer): the caller then sets the
// fields in w.Header() itself.
func SetDefaults(w http.ResponseWriter, f *Fields) bool {
	r, ok := w.(*response)
	if ok {
		r.defaults = f
	}
	return ok
}

// index returns the index of name in f, if f has it.
func (f *Fields) index(name string) (int, bool) {
	if len(name) < 64 && f.lengths&(1<<len(name)) == 0 {
		return 0, false
	}
	return slices.BinarySearch(f.names, name)
}

// appendExcept appends f's fields but those whose bit is set in set.
func (f *Fields) appendExcept(b []byte, set uint64) []byte {
	if set == 0 {
		return append(b, f.all...)
	}
	for i, line := range f.lines {
		if set&(1<<i) == 0 {
			b = append(b, line...)
		}
	}
	return b
}
