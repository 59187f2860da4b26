package edge

import (
	"context"
	"net/http"
	"strconv"

	"github.com/bookd/bookd/persistence"
)

// access is who may use a route.
type access int

const (
	accessPublic        access = iota // anyone, anonymous too
	accessUser                        // any signed-in user or API key
	accessProvider                    // providers and admins
	accessProviderToken               // providers and admins with an access token (not an API key)
	accessAdmin                       // admins with an access token
)

// route is one entry of the route table.
type route struct {
	pattern string
	access  access
	class   string // rate limit class
	scope   string // the API key scope it needs ("": API keys may not)
	idem    bool   // the generic Idempotency-Key handling applies
	h       http.HandlerFunc
}

// RouteInfo describes a route of the table for tests and docs.
type RouteInfo struct {
	Pattern string
	Public  bool
}

// authorize decides whether p may use rt: nil, or a 401 or 403 problem.
func (rt *route) authorize(p *Principal) *Problem {
	if rt.access == accessPublic {
		return nil
	}
	if p == nil {
		return unauthorized("this route needs an access token (Authorization: Bearer …) or an API key")
	}
	switch rt.access {
	case accessProvider, accessProviderToken:
		if p.Role != persistence.RoleProvider && p.Role != persistence.RoleAdmin {
			return newProblem(probForbidden, "this route is for providers and admins; you are a %s", p.Role)
		}
	case accessAdmin:
		if p.Role != persistence.RoleAdmin {
			return newProblem(probForbidden, "this route is for admins; you are a %s", p.Role)
		}
	}
	if p.APIKey != "" && (rt.access == accessProviderToken || rt.access == accessAdmin || !p.may(rt.scope)) {
		if rt.scope == "" || rt.access == accessProviderToken || rt.access == accessAdmin {
			return newProblem(probForbidden, "API keys may not use this route: sign in")
		}
		return newProblem(probForbidden, "the API key lacks the scope %s", rt.scope)
	}
	return nil
}

// guard runs a route's policy before its handler: authentication, the rate
// limit (per user when signed in, per address when not; none for a route
// without a class, the health probes), authorization and,
// where it applies, the Idempotency-Key handling.
func (s *Server) guard(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, prob := s.authenticate(r)
		if limit := s.classLimit(rt.class); limit.rate.Limit > 0 {
			var key string
			if p != nil {
				key = limit.prefix + "user:" + p.UserID
			} else {
				key = limit.prefix + "ip:" + clientIP(r)
			}
			if !s.rateLimit(w, r, limit, key) {
				return
			}
		}
		if prob != nil {
			writeProblem(w, r, prob)
			return
		}
		if prob := rt.authorize(p); prob != nil {
			writeProblem(w, r, prob)
			return
		}
		if p != nil {
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		if rt.idem {
			s.idempotent(w, r, rt.h)
			return
		}
		rt.h(w, r)
	})
}

// classLimit is a route class's rate, with what its answers say of it.
type classLimit struct {
	class  string
	rate   Rate     // Limit 0: none (a route without a class, or "off")
	prefix string   // of the limiter's keys: the class and a colon
	limit  []string // the RateLimit-Limit value
	policy []string // the RateLimit-Policy value
}

// classLimit returns class's limit, formatted once per class and rate.
func (s *Server) classLimit(class string) classLimit {
	if class == "" {
		return classLimit{}
	}
	rate, ok := s.cfg.RateLimits[class]
	if !ok {
		rate = s.cfg.RateLimits[ClassDefault]
	}
	type key struct {
		class string
		rate  Rate
	}
	if cl, ok := s.classLimits.Load(key{class, rate}); ok {
		return cl.(classLimit)
	}
	cl := classLimit{class: class, rate: rate, prefix: class + ":",
		limit:  []string{strconv.Itoa(rate.Limit)},
		policy: []string{strconv.Itoa(rate.Limit) + ";w=" + strconv.Itoa(ceilSeconds(rate.Period))}}
	s.classLimits.Store(key{class, rate}, cl)
	return cl
}

// rateLimit takes one request of key (which starts with the class) and
// reports whether it may go on; when not, it has answered 429. Every answer
// carries the RateLimit-* headers. A limiter that fails lets the request
// through (and logs): the limit protects the service, it must not take it
// down.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, cl classLimit, key string) bool {
	rate, class := cl.rate, cl.class
	d, err := s.cfg.Limiter.Allow(r.Context(), key, rate)
	if err != nil {
		s.log.Warn("rate limiter failed; letting the request through", "class", class, "error", err)
		return true
	}
	// The shared values are read-only; the two that change share one array.
	h := w.Header()
	vals := [2]string{strconv.Itoa(d.Remaining), strconv.Itoa(ceilSeconds(d.Reset))}
	h["Ratelimit-Limit"] = cl.limit
	h["Ratelimit-Remaining"] = vals[0:1:1]
	h["Ratelimit-Reset"] = vals[1:2:2]
	h["Ratelimit-Policy"] = cl.policy
	if d.Allowed {
		return true
	}
	p := newProblem(probRateLimited, "more than %d requests in %v in the %s class; retry after %d s", rate.Limit, rate.Period, class, ceilSeconds(d.RetryAfter))
	p.retryAfter = max(1, ceilSeconds(d.RetryAfter))
	writeProblem(w, r, p)
	return false
}
