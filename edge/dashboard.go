package edge

import (
	"embed"
	"mime"
	"net/http"
	"path"
)

// dashboardFiles is the live dashboard: a page, its script and its style,
// served from the binary (no CDN).
//
//go:embed dashboard/index.html dashboard/app.js dashboard/style.css
var dashboardFiles embed.FS

// handleDashboard is GET /dashboard: the live availability page.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	s.serveDashboardFile(w, r, "index.html")
}

// handleDashboardFile is GET /dashboard/{file}: the page's assets.
func (s *Server) handleDashboardFile(w http.ResponseWriter, r *http.Request) {
	s.serveDashboardFile(w, r, r.PathValue("file"))
}

func (s *Server) serveDashboardFile(w http.ResponseWriter, r *http.Request, name string) {
	data, err := dashboardFiles.ReadFile("dashboard/" + name)
	if err != nil {
		writeProblem(w, r, newProblem(probNotFound, "no dashboard file %q", name))
		return
	}
	h := w.Header()
	h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	// The page loads only its own files and talks only to this node.
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
