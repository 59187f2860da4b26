package edge

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// TestOpenAPIDocument: the document is valid OpenAPI 3.1, every served
// route is in it, every path and method in it is served, and it marks
// exactly the public routes as needing no security.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := libopenapi.NewDocument(OpenAPI())
	if err != nil {
		t.Fatalf("libopenapi.NewDocument = %v", err)
	}
	if doc.GetVersion() != "3.1.0" {
		t.Errorf("openapi version = %q, want 3.1.0", doc.GetVersion())
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("NewValidator = %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("openapi.json is not valid: %s: %s", e.Message, e.Reason)
		}
	}

	var spec struct {
		Paths map[string]map[string]struct {
			Security *[]any `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &spec); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{} // "GET /v1/listings"
	public := map[string]bool{}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			k := strings.ToUpper(method) + " " + path
			documented[k] = true
			public[k] = op.Security != nil && len(*op.Security) == 0
		}
	}
	s := newTestServer(t, nil)
	served := map[string]bool{}
	for _, rt := range s.Routes() {
		served[rt.Pattern] = true
		if !documented[rt.Pattern] {
			t.Errorf("route %s is served but not in openapi.json", rt.Pattern)
			continue
		}
		if public[rt.Pattern] != rt.Public {
			t.Errorf("route %s: openapi.json says public %v, the route table %v", rt.Pattern, public[rt.Pattern], rt.Public)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("openapi.json documents %s, which is not served", k)
		}
	}
	// And the node serves the very document.
	w, _ := serve(s, "GET", "/openapi.json", nil, "")
	if w.Code != http.StatusOK || !slices.Equal(w.Body.Bytes(), OpenAPI()) {
		t.Errorf("GET /openapi.json = %d, want the embedded document", w.Code)
	}
}
