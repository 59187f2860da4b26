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
	Pattern    string
	Public     bool
	Idempotent bool
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
		key := "ip:" + clientIP(r)
		if p != nil {
			key = "user:" + p.UserID
		}
		if rt.class != "" && !s.rateLimit(w, r, rt.class, key) {
			return
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

// rateLimit takes one request of key in class and reports whether it may
// go on; when not, it has answered 429. Every answer carries the
// RateLimit-* headers. A limiter that fails lets the request through (and
// logs): the limit protects the service, it must not take it down.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, class, key string) bool {
	rate, ok := s.cfg.RateLimits[class]
	if !ok {
		rate = s.cfg.RateLimits[ClassDefault]
	}
	if rate.Limit == 0 {
		return true
	}
	d, err := s.cfg.Limiter.Allow(r.Context(), class+":"+key, rate)
	if err != nil {
		s.log.Warn("rate limiter failed; letting the request through", "class", class, "error", err)
		return true
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(rate.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.Reset)))
	h.Set("RateLimit-Policy", strconv.Itoa(rate.Limit)+";w="+strconv.Itoa(ceilSeconds(rate.Period)))
	if d.Allowed {
		return true
	}
	p := newProblem(probRateLimited, "more than %d requests in %v in the %s class; retry after %d s", rate.Limit, rate.Period, class, ceilSeconds(d.RetryAfter))
	p.retryAfter = max(1, ceilSeconds(d.RetryAfter))
	writeProblem(w, r, p)
	return false
}
