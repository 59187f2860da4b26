package edge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bookd/bookd/persistence"
)

// Principal is who makes a request: a user through an access token or an
// API key. Anonymous requests have none.
type Principal struct {
	UserID string
	Role   persistence.Role
	// Scopes limit an API key; nil for an access token (no limit).
	Scopes []string
	// APIKey is the id of the API key used, "" for an access token.
	APIKey  string
	expires time.Time
}

// may reports whether p's scopes allow scope ("" needs none; an API key
// never passes a route that takes no scope).
func (p *Principal) may(scope string) bool {
	if p.APIKey == "" {
		return true
	}
	return scope != "" && slices.Contains(p.Scopes, scope)
}

// admin reports whether p may change anything.
func (p *Principal) admin() bool { return p != nil && p.Role == persistence.RoleAdmin }

type principalKey struct{}

// principal returns the request's principal, nil when anonymous.
func principal(r *http.Request) *Principal {
	p, _ := r.Context().Value(principalKey{}).(*Principal)
	return p
}

// The scopes of API keys.
const (
	scopeCatalogWrite = "catalog:write"
	scopeHoldsRead    = "holds:read"
	scopeHoldsWrite   = "holds:write"
)

var apiKeyScopes = []string{scopeCatalogWrite, scopeHoldsRead, scopeHoldsWrite}

// authenticate finds the request's principal: "Authorization: Bearer
// <access token>" or "Authorization: ApiKey <key>". No header is anonymous
// (nil, nil); a header that does not verify is a 401 problem.
func (s *Server) authenticate(r *http.Request) (*Principal, *Problem) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer") && cred != "":
		return s.verifyAccessToken(r.Context(), cred)
	case strings.EqualFold(scheme, "ApiKey") && cred != "":
		return s.verifyAPIKey(r.Context(), cred)
	}
	return nil, unauthorized("the Authorization header is not \"Bearer <token>\" or \"ApiKey <key>\"")
}

func unauthorized(detail string) *Problem {
	p := newProblem(probUnauthorized, "%s", detail)
	p.authenticate = true
	return p
}

// verifyAccessToken checks a JWT, from the cache when it was verified
// before.
func (s *Server) verifyAccessToken(ctx context.Context, token string) (*Principal, *Problem) {
	now := s.cfg.Now()
	if p := s.tokens.get(token, now); p != nil {
		return p, nil
	}
	if len(token) > 4096 {
		return nil, unauthorized("the token is malformed")
	}
	c, err := s.keys.parseToken(ctx, token)
	if err != nil {
		return nil, unauthorized(err.Error())
	}
	p := &Principal{UserID: c.Subject, Role: persistence.Role(c.Role), expires: c.ExpiresAt.Time}
	s.tokens.put(token, p, now)
	return p, nil
}

// An API key is "bk_<id>_<secret>". The store keeps the SHA-256 of the
// secret (a random 32-byte secret needs no slow hash). Verified keys are
// cached for apiKeyCacheTTL, so a revocation takes effect on every node
// within that time.
const apiKeyCacheTTL = 30 * time.Second

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (s *Server) verifyAPIKey(ctx context.Context, key string) (*Principal, *Problem) {
	now := s.cfg.Now()
	if p := s.apiKeys.get(key, now); p != nil {
		return p, nil
	}
	rest, ok := strings.CutPrefix(key, "bk_")
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || !validID(id) || len(secret) > 128 {
		return nil, unauthorized("the API key is malformed")
	}
	k, err := s.store.GetAPIKey(ctx, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, unauthorized("the API key is unknown or revoked")
	}
	if err != nil {
		s.log.Error("read api key", "error", err)
		return nil, newProblem(probInternal, "internal error")
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(k.Hash)) != 1 {
		return nil, unauthorized("the API key is unknown or revoked")
	}
	u, err := s.store.GetUser(ctx, k.OwnerID)
	if err != nil {
		return nil, unauthorized("the API key's owner no longer exists")
	}
	p := &Principal{UserID: u.ID, Role: u.Role, Scopes: k.Scopes, APIKey: k.ID, expires: now.Add(apiKeyCacheTTL)}
	s.apiKeys.put(key, p, now)
	return p, nil
}

// clientIP is the address the request came from (the rate limit's key for
// anonymous clients).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit records a change by an admin or a provider: who, what, when, from
// where. A failure to record it is logged, not answered: the change is
// made.
func (s *Server) audit(r *http.Request, action, target string) {
	p := principal(r)
	if p == nil || (p.Role != persistence.RoleAdmin && p.Role != persistence.RoleProvider) {
		return
	}
	e := persistence.AuditEntry{At: s.cfg.Now(), ActorID: p.UserID, Role: p.Role, Action: action, Target: target, Remote: clientIP(r)}
	if err := s.store.AppendAudit(r.Context(), e); err != nil {
		s.log.Error("audit log", "action", action, "target", target, "error", err)
	}
}
