package edge

import (
	"cmp"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// problemField returns the field p names, or "" when p names none.
func problemField(p *Problem) string {
	if p == nil || len(p.Errors) == 0 {
		return ""
	}
	return p.Errors[0].Field
}

// describe writes a problem briefly for test messages.
func describe(p *Problem) string {
	if p == nil {
		return "<nil>"
	}
	return p.Type + " " + problemField(p) + ": " + p.Detail
}

func TestUnmarshalStrict(t *testing.T) {
	tests := []struct {
		name string
		body string
		// into selects the target: "hold" (HoldRequest) or "resource"
		// (ResourceRequest, which has a nested object).
		into string
		// wantField is the field the problem names; "" means success.
		wantField string
		// wantDetail is a part of the problem's detail.
		wantDetail string
	}{
		{name: "valid", body: `{"resource_id":"room-1","quantity":2}`, into: "hold"},
		{name: "valid with spaces around", body: " \n\t{\"resource_id\":\"room-1\"}\n ", into: "hold"},
		{name: "null is an empty object", body: `null`, into: "hold"},
		{name: "empty", body: ``, into: "hold", wantField: "body", wantDetail: "empty"},
		{name: "only whitespace", body: " \n\t ", into: "hold", wantField: "body", wantDetail: "empty"},
		{name: "malformed", body: `{"resource_id":`, into: "hold", wantField: "body", wantDetail: "not valid JSON"},
		{name: "syntax error", body: `{"resource_id" "x"}`, into: "hold", wantField: "body", wantDetail: "not valid JSON"},
		{name: "single quotes", body: `{'resource_id':'x'}`, into: "hold", wantField: "body", wantDetail: "not valid JSON"},
		{name: "unknown field", body: `{"resource_id":"room-1","qty":1}`, into: "hold", wantField: "qty", wantDetail: "not a known field"},
		{name: "unknown field with an empty name", body: `{"":1}`, into: "hold", wantField: "body", wantDetail: "not a known field"},
		{name: "unknown field with a quote", body: `{"a\"b":1}`, into: "hold", wantField: `a"b`, wantDetail: "not a known field"},
		{name: "unknown field with an escape", body: `{"\u00e9t\u00e9":1}`, into: "hold", wantField: "été", wantDetail: "not a known field"},
		{name: "field names are case-insensitive in encoding/json", body: `{"Resource_ID":"room-1"}`, into: "hold"},
		{name: "quantity as string", body: `{"resource_id":"room-1","quantity":"2"}`, into: "hold", wantField: "quantity", wantDetail: "must be an integer, not string"},
		{name: "quantity as fraction", body: `{"resource_id":"room-1","quantity":1.5}`, into: "hold", wantField: "quantity", wantDetail: "must be an integer"},
		{name: "quantity overflows int64", body: `{"resource_id":"room-1","quantity":99999999999999999999}`, into: "hold", wantField: "quantity", wantDetail: "must be an integer"},
		{name: "quantity as bool", body: `{"resource_id":"room-1","quantity":true}`, into: "hold", wantField: "quantity", wantDetail: "must be an integer"},
		{name: "resource_id as number", body: `{"resource_id":7}`, into: "hold", wantField: "resource_id", wantDetail: "must be a string, not number"},
		{name: "resource_id as object", body: `{"resource_id":{}}`, into: "hold", wantField: "resource_id", wantDetail: "must be a string, not object"},
		{name: "nested wrong type", body: `{"name":"x","slot":{"unit":"minutes","minutes":"30"}}`, into: "resource", wantField: "slot.minutes", wantDetail: "must be an integer, not string"},
		{name: "nested object as string", body: `{"name":"x","slot":"night"}`, into: "resource", wantField: "slot", wantDetail: "must be an object, not string"},
		{name: "array body", body: `[]`, into: "hold", wantField: "body", wantDetail: "must be a JSON object, not array"},
		{name: "string body", body: `"room-1"`, into: "hold", wantField: "body", wantDetail: "must be a JSON object, not string"},
		{name: "number body", body: `1`, into: "hold", wantField: "body", wantDetail: "must be a JSON object, not number"},
		{name: "two values", body: `{} {}`, into: "hold", wantField: "body", wantDetail: "more than one JSON value"},
		{name: "trailing garbage", body: `{}x`, into: "hold", wantField: "body"},
		{name: "trailing bracket", body: `{}]`, into: "hold", wantField: "body", wantDetail: "data after the JSON value"},
		{name: "trailing brace", body: `{}}`, into: "hold", wantField: "body", wantDetail: "data after the JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *Problem
			switch tt.into {
			case "hold":
				p = unmarshalStrict([]byte(tt.body), &HoldRequest{})
			case "resource":
				p = unmarshalStrict([]byte(tt.body), &ResourceRequest{})
			default:
				t.Fatalf("bad test: into %q", tt.into)
			}
			if tt.wantField == "" {
				if p != nil {
					t.Fatalf("unmarshalStrict(%q) = %v, want success", tt.body, describe(p))
				}
				return
			}
			if p == nil {
				t.Fatalf("unmarshalStrict(%q) = success, want a problem naming %q", tt.body, tt.wantField)
			}
			if p.Status != http.StatusBadRequest || p.Type != "/problems/invalid-request" {
				t.Errorf("unmarshalStrict(%q) = %d %s, want 400 /problems/invalid-request", tt.body, p.Status, p.Type)
			}
			if got := problemField(p); got != tt.wantField {
				t.Errorf("unmarshalStrict(%q) names field %q, want %q (%s)", tt.body, got, tt.wantField, describe(p))
			}
			if !strings.Contains(p.Detail, tt.wantDetail) || !strings.Contains(p.Errors[0].Detail, tt.wantDetail) {
				t.Errorf("unmarshalStrict(%q) detail = %q, want it to contain %q", tt.body, p.Detail, tt.wantDetail)
			}
		})
	}
}

func TestUnmarshalStrictKeepsValues(t *testing.T) {
	var req HoldRequest
	if p := unmarshalStrict([]byte(`{"resource_id":"room-1","from":"2031-01-01","to":"2031-01-03","quantity":3}`), &req); p != nil {
		t.Fatalf("unmarshalStrict = %v, want success", describe(p))
	}
	if req.ResourceID != "room-1" || req.From != "2031-01-01" || req.To != "2031-01-03" || req.Quantity == nil || *req.Quantity != 3 {
		t.Errorf("unmarshalStrict decoded %+v, want room-1 2031-01-01..2031-01-03 ×3", req)
	}
}

func TestJSONProblemFallsBackToBody(t *testing.T) {
	// An error that is none of the known kinds still names a field.
	p := jsonProblem(errString("something odd"))
	if got := problemField(p); got != "body" || p.Status != http.StatusBadRequest {
		t.Errorf("jsonProblem(something odd) = %d %q, want 400 naming body", p.Status, got)
	}
	// A problem passes through unchanged.
	in := invalidField("x", "is wrong")
	if got := jsonProblem(in); got != in {
		t.Errorf("jsonProblem(problem) = %v, want the same problem", describe(got))
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestDecodeJSON(t *testing.T) {
	const limit = 64
	tests := []struct {
		name        string
		contentType string // "-" for none
		body        string
		wantStatus  int // 0: success
		wantType    string
	}{
		{name: "json", contentType: "application/json", body: `{}`},
		{name: "json with charset", contentType: "application/json; charset=utf-8", body: `{}`},
		{name: "a +json type", contentType: "application/merge-patch+json", body: `{}`},
		{name: "upper case type", contentType: "Application/JSON", body: `{}`},
		{name: "no content type", contentType: "-", body: `{}`, wantStatus: 415, wantType: "/problems/unsupported-media-type"},
		{name: "text", contentType: "text/plain", body: `{}`, wantStatus: 415, wantType: "/problems/unsupported-media-type"},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: `a=b`, wantStatus: 415, wantType: "/problems/unsupported-media-type"},
		{name: "unparsable content type", contentType: "application/json; ===", body: `{}`, wantStatus: 415, wantType: "/problems/unsupported-media-type"},
		{name: "at the limit", contentType: "application/json", body: `{"resource_id":"` + strings.Repeat("a", limit-18) + `"}`},
		{name: "over the limit", contentType: "application/json", body: `{"resource_id":"` + strings.Repeat("a", limit) + `"}`, wantStatus: 413, wantType: "/problems/payload-too-large"},
		{name: "malformed", contentType: "application/json", body: `{`, wantStatus: 400, wantType: "/problems/invalid-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/holds", strings.NewReader(tt.body))
			if tt.contentType != "-" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var v HoldRequest
			p := decodeJSON(httptest.NewRecorder(), r, limit, &v)
			if tt.wantStatus == 0 {
				if p != nil {
					t.Fatalf("decodeJSON(%q, %q) = %v, want success", tt.contentType, tt.body, describe(p))
				}
				return
			}
			if p == nil {
				t.Fatalf("decodeJSON(%q, %q) = success, want %d", tt.contentType, tt.body, tt.wantStatus)
			}
			if p.Status != tt.wantStatus || p.Type != tt.wantType {
				t.Errorf("decodeJSON(%q, %q) = %d %s, want %d %s", tt.contentType, tt.body, p.Status, p.Type, tt.wantStatus, tt.wantType)
			}
		})
	}
}

// decodeJSON reads r's body strictly into v, as the handlers do:
// readJSONBody, then unmarshalStrict.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) *Problem {
	body, p := readJSONBody(w, r, limit)
	if p != nil {
		return p
	}
	return unmarshalStrict(body, v)
}

// TestReadLimited reads bodies of a declared length and of none (chunked)
// both within and over the limit, and a body that ends before its declared
// length. A small declared body is read into a buffer of its size.
func TestReadLimited(t *testing.T) {
	const limit = 16
	tests := []struct {
		name       string
		body       string
		length     int64 // the declared Content-Length; -1: none
		wantStatus int   // 0: success
		wantBody   string
		exact      bool  // read into a buffer of the declared length
		limit      int64 // 0: limit
	}{
		{name: "declared, within", body: `{"a":1}`, length: 7, wantBody: `{"a":1}`, exact: true},
		{name: "declared, at the limit", body: strings.Repeat("a", limit), length: limit, wantBody: strings.Repeat("a", limit), exact: true},
		{name: "declared, empty", body: ``, length: 0, wantBody: ``, exact: true},
		{name: "declared, over", body: strings.Repeat("a", limit+1), length: limit + 1, wantStatus: 413},
		{name: "chunked, within", body: `{"a":1}`, length: -1, wantBody: `{"a":1}`},
		{name: "chunked, at the limit", body: strings.Repeat("a", limit), length: -1, wantBody: strings.Repeat("a", limit)},
		{name: "chunked, over", body: strings.Repeat("a", limit+1), length: -1, wantStatus: 413},
		{name: "ends before its length", body: `{"a":1}`, length: 9, wantStatus: 400},
		// Over exactBodyMax: read as it comes, so not in a buffer of its size.
		{name: "declared, large", body: strings.Repeat("a", exactBodyMax+1), length: exactBodyMax + 1, wantBody: strings.Repeat("a", exactBodyMax+1), limit: 2 * exactBodyMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/holds", nil)
			r.Body = &serverBody{r: strings.NewReader(tt.body), n: tt.length}
			r.ContentLength = tt.length
			lim := cmp.Or(tt.limit, limit)
			body, p := readLimited(httptest.NewRecorder(), r, lim)
			if tt.wantStatus != 0 {
				if p == nil || p.Status != tt.wantStatus {
					t.Fatalf("readLimited(%q, length %d) = %q, %v; want a %d", tt.body, tt.length, body, describe(p), tt.wantStatus)
				}
				return
			}
			if p != nil {
				t.Fatalf("readLimited(%q, length %d) = %v, want %q", tt.body, tt.length, describe(p), tt.wantBody)
			}
			if string(body) != tt.wantBody {
				t.Errorf("readLimited(%q, length %d) = %q, want %q", tt.body, tt.length, body, tt.wantBody)
			}
			if tt.exact && cap(body) != int(tt.length) {
				t.Errorf("readLimited(%q, length %d) read into %d bytes, want %d", tt.body, tt.length, cap(body), tt.length)
			}
		})
	}
}

// serverBody reads a request body as a server's reader does: it ends
// after the declared length n (none when n < 0), and a connection that
// ends before is io.ErrUnexpectedEOF.
type serverBody struct {
	r io.Reader
	n int64
}

func (b *serverBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	if b.n > 0 && int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.r.Read(p)
	if b.n > 0 {
		b.n -= int64(k)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	return k, err
}

func (b *serverBody) Close() error { return nil }
