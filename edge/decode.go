package edge

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// readJSONBody reads r's body, at most limit bytes, when its Content-Type
// is JSON. It does not parse it: decode it with unmarshalStrict.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, newProblem(probMediaType, "Content-Type is missing: send application/json")
	}
	// The value nearly every client sends needs no parsing (ParseMediaType
	// allocates a map for the parameters).
	if ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, newProblem(probMediaType, "Content-Type %q: send application/json", ct)
		}
	}
	return readLimited(w, r, limit)
}

// exactBodyMax is the largest declared body readLimited allocates at once.
const exactBodyMax = 4 << 10

// readLimited reads r's body, at most limit bytes, whatever its type.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	if n := r.ContentLength; n >= 0 && n <= min(limit, exactBodyMax) {
		// A small declared length within the limit: one buffer of exactly
		// that size, where io.ReadAll starts at 512 bytes and the
		// MaxBytesReader is one more allocation. The server ends the body
		// after its Content-Length, so nothing more can come. A larger
		// body is read as it comes, so that a client that only declares
		// one does not pin the memory.
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, invalidField("body", "could not be read")
		}
		return body, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newProblem(probTooLarge, "the body is over %d bytes", limit)
		}
		return nil, invalidField("body", "could not be read")
	}
	return body, nil
}

// unmarshalStrict decodes one JSON value from data into v, rejecting unknown
// fields and trailing data, and names the field at fault.
func unmarshalStrict(data []byte, v any) *Problem {
	if len(bytes.TrimSpace(data)) == 0 {
		return invalidField("body", "is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return invalidField("body", "has more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidField("body", "has data after the JSON value")
	}
	return nil
}

func jsonProblem(err error) *Problem {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalidField("body", fmt.Sprintf("is not valid JSON (at byte %d)", syn.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return invalidField("body", fmt.Sprintf("must be a JSON object, not %s", typ.Value))
		}
		return invalidField(field, fmt.Sprintf("must be %s, not %s", jsonTypeName(typ.Type.Kind().String()), typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidField("body", "is not valid JSON (it ends too early)")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name) // encoding/json quotes it with %q
		return invalidField(cmp.Or(name, "body"), "is not a known field")
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return invalidField("body", err.Error())
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "of another type"
}

// readRequest reads r's JSON body and decodes it with decode. On a problem
// it answers it and ok is false.
func readRequest[T any](s *Server, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, *Problem)) (v T, ok bool) {
	body, p := s.readBody(w, r)
	if p == nil {
		if v, p = decode(body); p == nil {
			return v, true
		}
	}
	writeProblem(w, r, p)
	return v, false
}
