package edge

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
)

// The OpenAPI 3.1 document and the docs page are embedded: the node serves
// them without a CDN. A test checks that the document and the route table
// agree both ways.

//go:embed openapi/openapi.json openapi/index.html openapi/docs.js openapi/docs.css
var openapiFiles embed.FS

type apiDocs struct {
	spec  []byte
	files map[string]docFile
}

type docFile struct {
	contentType string
	data        []byte
}

// OpenAPI returns the OpenAPI document the node serves.
func OpenAPI() []byte {
	b, _ := openapiFiles.ReadFile("openapi/openapi.json")
	return b
}

func loadAPIDocs() (*apiDocs, error) {
	d := &apiDocs{spec: OpenAPI(), files: map[string]docFile{}}
	if !json.Valid(d.spec) {
		return nil, fmt.Errorf("openapi.json is not valid JSON")
	}
	for name, ct := range map[string]string{"index.html": "text/html; charset=utf-8", "docs.js": "text/javascript; charset=utf-8", "docs.css": "text/css; charset=utf-8"} {
		b, err := openapiFiles.ReadFile("openapi/" + name)
		if err != nil {
			return nil, err
		}
		d.files[name] = docFile{contentType: ct, data: b}
	}
	return d, nil
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.docs.spec)
}

func (s *Server) serveDocFile(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := s.docs.files[name]
	if !ok || name == "index.html" && r.URL.Path != "/api-docs" {
		writeProblem(w, r, newProblem(probNotFound, "no docs file %q", name))
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "public, max-age=300")
	// The page runs its own script and style only, and talks to this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	_, _ = w.Write(f.data)
}

func (s *Server) handleAPIDocs(w http.ResponseWriter, r *http.Request) {
	s.serveDocFile(w, r, "index.html")
}

func (s *Server) handleAPIDocsFile(w http.ResponseWriter, r *http.Request) {
	s.serveDocFile(w, r, r.PathValue("file"))
}
