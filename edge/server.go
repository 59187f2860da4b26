package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/bookd/bookd/persistence"
)

// Actors is how the edge reaches actors: the cluster node.
type Actors interface {
	// Request sends msg to the actor identity of kind and returns its reply.
	Request(ctx context.Context, kind, identity string, msg any) (any, error)
}

// Config is how the edge serves. Start from DefaultConfig.
type Config struct {
	// MaxBodyBytes bounds a request body. Default 64 KiB.
	MaxBodyBytes int64
	// RequestTimeout bounds the time a request waits for an actor. Default 5s.
	RequestTimeout time.Duration
	// Logger gets the edge's logs. Default slog.Default().
	Logger *slog.Logger
	// Bus carries availability changes to GET /v1/ws (live.go); nil turns
	// live availability off.
	Bus persistence.Bus
	// Live tunes the WebSocket hub. Default DefaultLiveConfig().
	Live LiveConfig
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 64 << 10, RequestTimeout: 5 * time.Second, Logger: slog.Default(), Live: DefaultLiveConfig()}
}

// Validate reports the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 1:
		return fmt.Errorf("edge: MaxBodyBytes must be positive, got %d", c.MaxBodyBytes)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("edge: RequestTimeout must be positive, got %v", c.RequestTimeout)
	case c.Logger == nil:
		return fmt.Errorf("edge: Logger must be set")
	}
	if c.Bus != nil {
		return c.Live.Validate()
	}
	return nil
}

// Server is the HTTP API of one node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   persistence.Store
	actors  Actors
	mux     *http.ServeMux
	ready   atomic.Bool
	handler http.Handler
	hub     *hub               // nil without a bus
	wsAuth  TokenAuthenticator // nil: the user topic is refused
}

// New returns the API over store and actors. It starts not ready: call
// SetReady(true) once the node can serve.
func New(cfg Config, store persistence.Store, actors Actors) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("subsystem", "edge"), store: store, actors: actors, mux: http.NewServeMux()}
	if cfg.Bus != nil {
		s.hub = newHub(cfg.Live, s.log, cfg.Bus, actors, store, cfg.RequestTimeout)
	}
	s.routes()
	s.handler = s.recoverer(s.headers(http.HandlerFunc(s.dispatch)))
	return s, nil
}

// routes is the route table.
func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /livez", s.handleLivez)
	m.HandleFunc("GET /readyz", s.handleReadyz)
	m.HandleFunc("GET /problems/{slug}", s.handleProblemDoc)
	m.HandleFunc("GET /v1/cluster", s.handleCluster)
	m.HandleFunc("GET /v1/ws", s.handleWS)
	m.HandleFunc("GET /dashboard", s.handleDashboard)
	m.HandleFunc("GET /dashboard/{file}", s.handleDashboardFile)

	m.HandleFunc("GET /v1/listings", s.handleListListings)
	m.HandleFunc("GET /v1/listings/{id}", s.handleGetListing)
	m.HandleFunc("GET /v1/resources/{id}", s.handleGetResource)
	m.HandleFunc("GET /v1/resources/{id}/availability", s.handleAvailability)

	m.HandleFunc("POST /v1/holds", s.handlePlaceHold)
	m.HandleFunc("GET /v1/holds/{id}", s.handleHoldAction)
	m.HandleFunc("POST /v1/holds/{id}/{action}", s.handleHoldAction)

	m.HandleFunc("POST /v1/admin/providers", s.handleCreateProvider)
	m.HandleFunc("POST /v1/admin/listings", s.handleCreateListing)
	m.HandleFunc("POST /v1/admin/listings/{id}/resources", s.handleCreateResource)
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// SetReady sets what /readyz reports (false while starting and draining).
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// dispatch routes r, answering unknown paths and methods with problems.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// Let the mux decide between 404 and 405 (and the Allow header), then
	// answer with a problem instead of its plain text.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.Header().Get("Allow"))
		writeProblem(w, r, newProblem(probMethod, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	if rec.Code >= 300 && rec.Code < 400 {
		// The mux redirects to a cleaned path.
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		return
	}
	writeProblem(w, r, newProblem(probNotFound, "nothing at %s", r.URL.Path))
}

// headers sets the headers every answer has.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a logged 500 problem.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeProblem(w, r, newProblem(probInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

// readBody reads a JSON request body with the size limit; the caller
// decodes it with unmarshalStrict (once: the body is not parsed here).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	return readJSONBody(w, r, s.cfg.MaxBodyBytes)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func (s *Server) handleLivez(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		p := newProblem(probUnavailable, "the node is starting or draining")
		p.retryAfter = 1
		writeProblem(w, r, p)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: store does not answer", "error", err)
		p := newProblem(probUnavailable, "the store does not answer")
		p.retryAfter = 1
		writeProblem(w, r, p)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// handleProblemDoc explains a problem type: its URI dereferences here.
func (s *Server) handleProblemDoc(w http.ResponseWriter, r *http.Request) {
	k, ok := problemsBySlug[r.PathValue("slug")]
	if !ok {
		writeProblem(w, r, newProblem(probNotFound, "no problem type %q", r.PathValue("slug")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"type": "/problems/" + k.slug, "title": k.title, "status": k.status, "description": k.explain})
}
