package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/bookd/bookd/cluster"
	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// Problem is an RFC 9457 problem document. Type is a stable URI reference,
// "/problems/<slug>", that clients match on; GET on it explains it.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors names each field at fault, for invalid requests.
	Errors []FieldProblem `json:"errors,omitempty"`

	retryAfter int
	// authenticate adds WWW-Authenticate (401s).
	authenticate bool
}

// FieldProblem is one bad field of a request.
type FieldProblem struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// problemKind is one entry of the problem catalog.
type problemKind struct {
	slug, title string
	status      int
	explain     string
}

// The problem types bookd answers with. Their slugs are stable.
var (
	probInvalid              = problemKind{"invalid-request", "Invalid request", http.StatusBadRequest, "A field of the request is missing or wrong; errors[].field names it. Fix the request; retrying it unchanged fails again."}
	probNotFound             = problemKind{"not-found", "Not found", http.StatusNotFound, "Nothing exists at this address."}
	probMethod               = problemKind{"method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed, "The address exists but not for this method; the Allow header lists the methods it takes."}
	probTooLarge             = problemKind{"payload-too-large", "Payload too large", http.StatusRequestEntityTooLarge, "The request body is larger than this route accepts."}
	probMediaType            = problemKind{"unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType, "Send the body as JSON with Content-Type: application/json."}
	probSoldOut              = problemKind{"sold-out", "Sold out", http.StatusConflict, "Not enough free units on some slot of the range. Nothing was held."}
	probHoldExpired          = problemKind{"hold-expired", "Hold expired", http.StatusConflict, "The hold expired before it was confirmed; its units are free again. Place a new hold."}
	probNotActive            = problemKind{"hold-not-active", "Hold not active", http.StatusConflict, "The hold is in a state that does not allow this (for example confirming a cancelled hold)."}
	probIdempotency          = problemKind{"idempotency-conflict", "Idempotency conflict", http.StatusUnprocessableEntity, "The Idempotency-Key was already used with a different request. Use a new key for a new request."}
	probConflict             = problemKind{"conflict", "Conflict", http.StatusConflict, "Something with this id exists already."}
	probUnavailable          = problemKind{"unavailable", "Service unavailable", http.StatusServiceUnavailable, "The request could not be decided now. Retry it after Retry-After seconds, with the same Idempotency-Key: retries are safe."}
	probInternal             = problemKind{"internal", "Internal error", http.StatusInternalServerError, "Something failed on our side. It has been logged."}
	probInFlight             = problemKind{"idempotency-in-flight", "Request in flight", http.StatusConflict, "The first request with this Idempotency-Key is still being processed. Retry after Retry-After seconds with the same key and body."}
	probUnauthorized         = problemKind{"unauthorized", "Unauthorized", http.StatusUnauthorized, "The request has no valid credentials: send Authorization: Bearer <access token> (POST /v1/auth/login) or ApiKey <key>. The detail says what was wrong with the ones sent."}
	probForbidden            = problemKind{"forbidden", "Forbidden", http.StatusForbidden, "The credentials are valid but do not allow this: another role, an API key without the scope, or something that belongs to someone else."}
	probRateLimited          = problemKind{"rate-limited", "Too many requests", http.StatusTooManyRequests, "The client made more requests than its limit allows; retry after Retry-After seconds. RateLimit-* headers tell the limit and what is left."}
	probPrecondition         = problemKind{"precondition-failed", "Precondition failed", http.StatusPreconditionFailed, "If-Match names another version than the current one: read the resource again (its ETag) and redo the change."}
	probPreconditionRequired = problemKind{"precondition-required", "Precondition required", http.StatusPreconditionRequired, "This change needs If-Match with the ETag of the version it was made against."}
	probBadLogin             = problemKind{"invalid-credentials", "Invalid credentials", http.StatusUnauthorized, "The email and password do not match an account, or the refresh token is unknown, expired, revoked or reused."}
	problemCatalog           = []problemKind{probInvalid, probNotFound, probMethod, probTooLarge, probMediaType, probSoldOut, probHoldExpired, probNotActive, probIdempotency, probConflict, probUnavailable, probInternal,
		probInFlight, probUnauthorized, probForbidden, probRateLimited, probPrecondition, probPreconditionRequired, probBadLogin}
	problemsBySlug = func() map[string]problemKind {
		m := make(map[string]problemKind, len(problemCatalog))
		for _, k := range problemCatalog {
			m[k.slug] = k
		}
		return m
	}()
)

func newProblem(k problemKind, format string, args ...any) *Problem {
	p := &Problem{Type: "/problems/" + k.slug, Title: k.title, Status: k.status, Detail: fmt.Sprintf(format, args...)}
	if k == probUnavailable || k == probInFlight {
		// Both are worth retrying soon, with the same key: say when.
		p.retryAfter = 1
	}
	return p
}

// invalidField is a 400 problem naming one field.
func invalidField(field, detail string) *Problem {
	p := newProblem(probInvalid, "%s: %s", field, detail)
	p.Errors = []FieldProblem{{Field: field, Detail: detail}}
	return p
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(p.retryAfter))
	}
	if p.authenticate {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bookd"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// actorProblem maps an actor's error reply to a problem. This and
// errorProblem are the one place where domain errors become HTTP.
func actorProblem(e *bookdv1.Error) *Problem {
	switch e.GetCode() {
	case bookdv1.ErrorCode_ERROR_CODE_SOLD_OUT:
		return newProblem(probSoldOut, "%s", e.GetDetail())
	case bookdv1.ErrorCode_ERROR_CODE_HOLD_EXPIRED:
		return newProblem(probHoldExpired, "%s", e.GetDetail())
	case bookdv1.ErrorCode_ERROR_CODE_NOT_FOUND:
		if e.GetField() != "" {
			// A request body named something that does not exist.
			return invalidField(e.GetField(), e.GetDetail())
		}
		return newProblem(probNotFound, "%s", e.GetDetail())
	case bookdv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:
		if e.GetField() == "" {
			return newProblem(probInvalid, "%s", e.GetDetail())
		}
		return invalidField(e.GetField(), e.GetDetail())
	case bookdv1.ErrorCode_ERROR_CODE_IDEMPOTENCY_CONFLICT:
		return newProblem(probIdempotency, "%s", e.GetDetail())
	case bookdv1.ErrorCode_ERROR_CODE_HOLD_NOT_ACTIVE:
		return newProblem(probNotActive, "%s", e.GetDetail())
	case bookdv1.ErrorCode_ERROR_CODE_IN_FLIGHT:
		return newProblem(probInFlight, "%s", e.GetDetail())
	case bookdv1.ErrorCode_ERROR_CODE_UNAVAILABLE:
		return newProblem(probUnavailable, "%s", e.GetDetail())
	}
	return newProblem(probInternal, "unknown error code %v: %s", e.GetCode(), e.GetDetail())
}

// errorProblem maps a Go error from the stores or the cluster to a problem.
func errorProblem(err error) *Problem {
	var p *Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, persistence.ErrNotFound):
		return newProblem(probNotFound, "%v", err)
	case errors.Is(err, persistence.ErrExists):
		return newProblem(probConflict, "%v", err)
	case errors.Is(err, persistence.ErrPrecondition):
		return newProblem(probPrecondition, "the If-Match version is not the current one")
	case errors.Is(err, cluster.ErrUnavailable):
		return newProblem(probUnavailable, "%v", err)
	}
	return newProblem(probInternal, "internal error")
}
