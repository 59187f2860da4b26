package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/bookd/bookd/edge"
)

// The API tests check every answer they get against the OpenAPI document
// the node serves: its status must be documented for the route and its body
// must match the documented schema.

var (
	apiValidatorOnce sync.Once
	apiValidator     validator.Validator
	apiValidatorErr  error
)

// openapiCheck collects the answers of one node that do not match the
// document.
type openapiCheck struct {
	v    validator.Validator
	mu   sync.Mutex
	errs []string
	n    int
}

func newOpenAPICheck(t *testing.T) *openapiCheck {
	t.Helper()
	apiValidatorOnce.Do(func() {
		doc, err := libopenapi.NewDocument(edge.OpenAPI())
		if err != nil {
			apiValidatorErr = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			apiValidatorErr = fmt.Errorf("%v", errs)
			return
		}
		apiValidator = v
	})
	if apiValidatorErr != nil {
		t.Fatalf("the OpenAPI document does not load: %v", apiValidatorErr)
	}
	return &openapiCheck{v: apiValidator}
}

// check validates one answer; it may run on any goroutine. Answers of
// addresses that are not in the document (the tests of 404s) are skipped.
func (c *openapiCheck) check(req *http.Request, res *http.Response, body []byte) {
	res.Body = io.NopCloser(bytes.NewReader(body))
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, errs := c.v.ValidateHttpResponse(req, res)
	c.n++
	if ok {
		return
	}
	for _, e := range errs {
		if e.ValidationType == "path" || strings.Contains(e.Message, "not found") && strings.Contains(strings.ToLower(e.Message), "path") {
			continue
		}
		if len(c.errs) < 10 {
			detail := e.Reason
			for _, se := range e.SchemaValidationErrors {
				detail += "; " + se.Reason
			}
			c.errs = append(c.errs, fmt.Sprintf("%s %s → %d %s: %s (%s)", req.Method, req.URL.Path, res.StatusCode, bytes.TrimSpace(body), e.Message, detail))
		}
	}
}

func (c *openapiCheck) report(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Errorf("answer does not match openapi.json: %s", e)
	}
}

// TestOpenAPICheckCatchesMismatch: the check that the API tests rely on
// does refuse an answer that is not what the document says.
func TestOpenAPICheckCatchesMismatch(t *testing.T) {
	tests := []struct {
		name, path string
		status     int
		ct, body   string
		wantErr    bool
	}{
		{"a page as documented", "/v1/listings", 200, "application/json", `{"items":[],"next_cursor":null}`, false},
		{"a problem", "/v1/listings", 400, "application/problem+json", `{"type":"/problems/invalid-request","title":"Invalid request","status":400}`, false},
		{"a page without items", "/v1/listings", 200, "application/json", `{"next_cursor":null}`, true},
		{"a capacity that is a string", "/v1/resources/r-1", 200, "application/json", `{"id":"r-1","listing_id":"l","name":"n","slot":{"unit":"single"},"capacity":"5","hold_ttl_seconds":1}`, true},
	}
	for _, tt := range tests {
		c := newOpenAPICheck(t)
		req, _ := http.NewRequest("GET", "http://127.0.0.1"+tt.path, nil)
		res := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {tt.ct}}, Request: req}
		c.check(req, res, []byte(tt.body))
		if got := len(c.errs) > 0; got != tt.wantErr {
			t.Errorf("check(%s) errors = %v, want errors: %v", tt.name, c.errs, tt.wantErr)
		}
	}
}
