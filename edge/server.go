package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookd/bookd/persistence"
)

// Actors is how the edge reaches actors: the cluster node.
type Actors interface {
	// RequestWithin sends msg to the actor identity of kind and returns its
	// reply, waiting at most timeout (less when ctx ends sooner).
	RequestWithin(ctx context.Context, timeout time.Duration, kind, identity string, msg any) (any, error)
}

// Config is how the edge serves. Start from DefaultConfig.
type Config struct {
	// MaxBodyBytes bounds a request body. Default 64 KiB.
	MaxBodyBytes int64
	// RequestTimeout bounds the time a request waits for an actor, and for
	// POST /v1/holds also for its Idempotency-Key claim. Default 5s.
	RequestTimeout time.Duration
	// Logger gets the edge's logs. Default slog.Default().
	Logger *slog.Logger

	// Issuer and Audience are the iss and aud of access tokens, checked on
	// every token. Defaults "bookd" and "bookd-api".
	Issuer, Audience string
	// AccessTTL is the lifetime of access tokens. Default 15 minutes.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of refresh tokens. Default 30 days.
	RefreshTTL time.Duration
	// Argon2 are the password hashing parameters. Default DefaultArgon2().
	Argon2 Argon2
	// TokenCacheSize bounds the verified tokens kept. Default 100000.
	TokenCacheSize int
	// RateLimits are the limits per route class (ClassDefault, ClassLogin,
	// ClassHolds); a class without an entry uses ClassDefault's. Default
	// DefaultRateLimits().
	RateLimits map[string]Rate
	// Limiter keeps the rate limits' counts. Default: in this process
	// (NewMemoryLimiter); NewRedisLimiter shares them between nodes.
	Limiter Limiter
	// Claims remembers which request an Idempotency-Key of POST /v1/holds
	// was first used with, across resources. Default: in this process
	// (NewMemoryClaims).
	Claims KeyClaims
	// CORSOrigins are the origins browsers may call the API from
	// ("https://app.example.com"); none by default.
	CORSOrigins []string
	// BehindTLS makes every answer carry HSTS (the node is reached over
	// HTTPS through a proxy); requests over TLS to the node get it anyway.
	BehindTLS bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Bus carries availability changes to GET /v1/ws (live.go); nil turns
	// live availability off.
	Bus persistence.Bus
	// Live tunes the WebSocket hub. Default DefaultLiveConfig().
	Live LiveConfig
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 64 << 10, RequestTimeout: 5 * time.Second, Logger: slog.Default(),
		Issuer: "bookd", Audience: "bookd-api", AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour,
		Argon2: DefaultArgon2(), TokenCacheSize: 100_000, RateLimits: DefaultRateLimits(), Now: time.Now, Live: DefaultLiveConfig()}
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
	case c.Issuer == "" || c.Audience == "":
		return fmt.Errorf("edge: Issuer and Audience must be set")
	case c.AccessTTL <= 0 || c.RefreshTTL <= 0:
		return fmt.Errorf("edge: AccessTTL and RefreshTTL must be positive, got %v and %v", c.AccessTTL, c.RefreshTTL)
	case c.Argon2.MemoryKiB < 8 || c.Argon2.Time < 1 || c.Argon2.Threads < 1:
		return fmt.Errorf("edge: Argon2 needs MemoryKiB >= 8, Time >= 1, Threads >= 1, got %+v", c.Argon2)
	case c.TokenCacheSize < 1:
		return fmt.Errorf("edge: TokenCacheSize must be positive, got %d", c.TokenCacheSize)
	case c.Now == nil:
		return fmt.Errorf("edge: Now must be set")
	}
	for class, r := range c.RateLimits {
		if r.Limit < 0 || (r.Limit > 0 && r.Period/time.Duration(r.Limit) < time.Microsecond) {
			return fmt.Errorf("edge: RateLimits[%q] = %v: want a limit >= 0 per a period of at least a microsecond a request", class, r)
		}
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
	mux     *http.ServeMux // the routes and "/", which answers the rest (unrouted)
	routed  *http.ServeMux // the routes alone: what unrouted asks about a request
	ready   atomic.Bool
	handler http.Handler

	routeTable []*route
	keys       *keyRing
	tokens     *tokenCache
	apiKeys    *tokenCache
	dummyHash  string
	docs       *apiDocs
	hub        *hub // nil without a bus
	// classLimits caches classLimit values by class and rate.
	classLimits sync.Map
}

// New returns the API over store and actors. It starts not ready: call
// SetReady(true) once the node can serve.
func New(cfg Config, store persistence.Store, actors Actors) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Limiter == nil {
		cfg.Limiter = NewMemoryLimiter()
	}
	if cfg.Claims == nil {
		cfg.Claims = NewMemoryClaims(0)
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = DefaultRateLimits()
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("subsystem", "edge"), store: store, actors: actors, mux: http.NewServeMux(), routed: http.NewServeMux(),
		tokens: newTokenCache(cfg.TokenCacheSize), apiKeys: newTokenCache(10_000)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if s.keys, err = newKeyRing(ctx, store, cfg); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if s.docs, err = loadAPIDocs(); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	// Logging in as nobody costs a hash too, so timing tells no emails.
	s.dummyHash = cfg.Argon2.hashPassword("no such user")
	if cfg.Bus != nil {
		s.hub = newHub(cfg.Live, s.log, cfg.Bus, actors, store, cfg.RequestTimeout)
	}
	s.routes()
	for _, rt := range s.routeTable {
		h := s.guard(rt)
		s.mux.Handle(rt.pattern, h)
		s.routed.Handle(rt.pattern, h)
	}
	// Every request that no route takes, whatever its method, comes to
	// unrouted, so that a routed request is matched once, not once to tell
	// whether it is routed and again to serve it (the first match was 2% of
	// the node's CPU in make bench-flash at 256 clients).
	s.mux.HandleFunc("/", s.unrouted)
	s.handler = s.recoverer(s.headers(s.cors(s.mux)))
	return s, nil
}

// routes is the route table: every route with who may use it, its rate
// limit class, the API key scope it needs and whether the generic
// Idempotency-Key handling applies. /livez and /readyz are operational and
// open, like the catalog reads, the live availability (/v1/ws) and the
// pages; /v1/cluster shows the nodes' addresses and is for admins;
// everything else needs a principal.
func (s *Server) routes() {
	add := func(pattern string, a access, class, scope string, idem bool, h http.HandlerFunc) {
		s.routeTable = append(s.routeTable, &route{pattern: pattern, access: a, class: class, scope: scope, idem: idem, h: h})
	}
	pub := func(pattern string, h http.HandlerFunc) { add(pattern, accessPublic, ClassDefault, "", false, h) }
	// Health probes are not rate limited: a load balancer's or the
	// orchestrator's checks from one address must never read as a dead node.
	add("GET /livez", accessPublic, "", "", false, s.handleLivez)
	add("GET /readyz", accessPublic, "", "", false, s.handleReadyz)
	pub("GET /problems/{slug}", s.handleProblemDoc)
	add("GET /v1/cluster", accessAdmin, ClassDefault, "", false, s.handleCluster)
	pub("GET /v1/ws", s.handleWS)
	pub("GET /dashboard", s.handleDashboard)
	pub("GET /dashboard/{file}", s.handleDashboardFile)
	pub("GET /openapi.json", s.handleOpenAPI)
	pub("GET /api-docs", s.handleAPIDocs)
	pub("GET /api-docs/{file}", s.handleAPIDocsFile)
	pub("GET /.well-known/jwks.json", s.handleJWKS)

	pub("GET /v1/listings", s.handleListListings)
	pub("GET /v1/listings/{id}", s.handleGetListing)
	pub("GET /v1/resources/{id}", s.handleGetResource)
	pub("GET /v1/resources/{id}/availability", s.handleAvailability)

	add("POST /v1/auth/register", accessPublic, ClassLogin, "", false, s.handleRegister)
	add("POST /v1/auth/login", accessPublic, ClassLogin, "", false, s.handleLogin)
	add("POST /v1/auth/refresh", accessPublic, ClassLogin, "", false, s.handleRefresh)
	add("POST /v1/auth/logout", accessPublic, ClassLogin, "", false, s.handleLogout)
	add("GET /v1/me", accessUser, ClassDefault, "", false, s.handleMe)

	add("POST /v1/holds", accessUser, ClassHolds, scopeHoldsWrite, false, s.handlePlaceHold)
	add("GET /v1/holds/{id}", accessUser, ClassDefault, scopeHoldsRead, false, s.handleHoldAction)
	add("POST /v1/holds/{id}/{action}", accessUser, ClassDefault, scopeHoldsWrite, false, s.handleHoldAction)

	add("POST /v1/admin/providers", accessProvider, ClassDefault, scopeCatalogWrite, true, s.handleCreateProvider)
	add("POST /v1/admin/listings", accessProvider, ClassDefault, scopeCatalogWrite, true, s.handleCreateListing)
	add("PATCH /v1/admin/listings/{id}", accessProvider, ClassDefault, scopeCatalogWrite, false, s.handleUpdateListing)
	add("POST /v1/admin/listings/{id}/resources", accessProvider, ClassDefault, scopeCatalogWrite, true, s.handleCreateResource)

	// Not under the generic Idempotency-Key handling: its answer carries the
	// key's secret, which must not be kept anywhere (a replay would need it).
	add("POST /v1/api-keys", accessProviderToken, ClassDefault, "", false, s.handleCreateAPIKey)
	add("GET /v1/api-keys", accessProviderToken, ClassDefault, "", false, s.handleListAPIKeys)
	add("DELETE /v1/api-keys/{id}", accessProviderToken, ClassDefault, "", false, s.handleRevokeAPIKey)

	add("POST /v1/admin/signing-keys", accessAdmin, ClassDefault, "", false, s.handleRotateSigningKey)
	add("GET /v1/admin/audit", accessAdmin, ClassDefault, "", false, s.handleListAudit)
}

// Routes returns the patterns of the route table ("GET /v1/listings", …),
// with whether each takes anonymous requests.
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(s.routeTable))
	for _, rt := range s.routeTable {
		out = append(out, RouteInfo{Pattern: rt.pattern, Public: rt.access == accessPublic})
	}
	return out
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// SetReady sets what /readyz reports (false while starting and draining).
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// unrouted answers a request that no route takes with a problem: 405 when
// routes take its path with other methods, else 404. (The mux itself
// redirects a path that is not clean before it comes here.)
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.routed.Handler(r)
	// Let the mux decide between 404 and 405 (and the Allow header), then
	// answer with a problem instead of its plain text.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.Header().Get("Allow"))
		writeProblem(w, r, newProblem(probMethod, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeProblem(w, r, newProblem(probNotFound, "nothing at %s", r.URL.Path))
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
		writeProblem(w, r, newProblem(probUnavailable, "the node is starting or draining"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: store does not answer", "error", err)
		writeProblem(w, r, newProblem(probUnavailable, "the store does not answer"))
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
