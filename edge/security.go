package edge

import (
	"net/http"
	"slices"
	"strings"

	"github.com/bookd/bookd/edge/h1"
)

// headers sets the headers every answer has: the usual security set
// (nosniff, frame deny, a strict CSP, no referrer, HSTS behind TLS) and
// no caching (GETs of the catalog override it with an ETag).
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		withHSTS := r.TLS != nil || s.cfg.BehindTLS
		fields := securityFields
		if withHSTS {
			fields = securityFieldsHSTS
		}
		// bookd's own server writes them out from a block made once;
		// under net/http they go into the header map. Either way a
		// handler that sets one of them (the docs page its CSP and
		// Cache-Control, the JWKS its Cache-Control) has its own value
		// sent instead. Under h1 they are not in w.Header(): to send
		// one of them not at all, set it to nil there (Del would not).
		if !h1.SetDefaults(w, fields) {
			// The values are shared, read-only slices: no allocation per
			// answer (handlers that change one Set a new slice).
			h := w.Header()
			for _, kv := range securityHeaders {
				h[kv.name] = kv.value
			}
			if withHSTS {
				h["Strict-Transport-Security"] = hsts
			}
		}
		next.ServeHTTP(w, r)
	})
}

type headerValue struct {
	name  string // canonical
	value []string
}

var (
	securityHeaders = []headerValue{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Cache-Control", []string{"no-store"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
		{"Cross-Origin-Resource-Policy", []string{"same-site"}},
		// The API answers JSON: nothing in it may run or load anything. The
		// docs page and the dashboard set their own.
		{"Content-Security-Policy", []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"}},
	}
	hsts = []string{"max-age=63072000; includeSubDomains"}

	securityFields     = newSecurityFields(false)
	securityFieldsHSTS = newSecurityFields(true)
)

// newSecurityFields returns securityHeaders, and HSTS when withHSTS, as
// h1 default fields.
func newSecurityFields(withHSTS bool) *h1.Fields {
	h := http.Header{}
	for _, kv := range securityHeaders {
		h[kv.name] = kv.value
	}
	if withHSTS {
		h["Strict-Transport-Security"] = hsts
	}
	f, err := h1.NewFields(h)
	if err != nil {
		panic(err) // the fields above are constants
	}
	return f
}

// cors answers cross-origin requests from the allow-list only: the
// preflight (OPTIONS with Access-Control-Request-Method) gets the methods
// and headers the API takes; other origins get no CORS headers, so
// browsers refuse to hand them the answer.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := slices.Contains(s.cfg.CORSOrigins, origin)
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "ETag, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy")
		}
		if preflight {
			if allowed {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			writeProblem(w, r, newProblem(probForbidden, "origin %s is not allowed", strings.ReplaceAll(origin, "\n", "")))
			return
		}
		next.ServeHTTP(w, r)
	})
}
