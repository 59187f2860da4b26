package edge

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// fillPattern turns a route pattern into a request: method and a path with
// every {param} filled.
func fillPattern(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	for _, p := range []string{"{id}", "{slug}", "{file}"} {
		path = strings.ReplaceAll(path, p, "x-1")
	}
	path = strings.ReplaceAll(path, "{action}", "confirm")
	return method, path
}

// TestEveryRouteIsGuarded walks the whole route table: anonymous requests
// reach only the catalog reads, the operational routes, the docs and the
// routes that sign in; every other route answers 401 before its handler
// runs, and every route that changes something is among those (but for the
// sign-in ones). A new route is covered without a change here.
func TestEveryRouteIsGuarded(t *testing.T) {
	s := newTestServer(t, &fakeActors{reply: func(string, string, any) (any, error) {
		t.Errorf("an anonymous request reached an actor")
		return nil, nil
	}})
	signIn := map[string]bool{"POST /v1/auth/register": true, "POST /v1/auth/login": true, "POST /v1/auth/refresh": true, "POST /v1/auth/logout": true}
	routes := s.Routes()
	if len(routes) < 25 {
		t.Fatalf("Routes() = %d routes, want the whole table", len(routes))
	}
	for _, rt := range routes {
		method, path := fillPattern(rt.Pattern)
		if method != http.MethodGet && rt.Public && !signIn[rt.Pattern] {
			t.Errorf("%s changes something and is public", rt.Pattern)
		}
		if rt.Public {
			continue
		}
		w, p := serve(s, method, path, http.Header{"Content-Type": {"application/json"}}, `{}`)
		if w.Code != http.StatusUnauthorized || p == nil || p.Type != "/problems/unauthorized" || w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("anonymous %s %s = %d %s, want a 401 unauthorized problem with WWW-Authenticate", method, path, w.Code, w.Body)
		}
	}
}

// TestRoleAccess checks who may use which kind of route.
func TestRoleAccess(t *testing.T) {
	s := newTestServer(t, nil)
	_, customer := testUser(t, s, persistence.RoleCustomer)
	_, provider := testUser(t, s, persistence.RoleProvider)
	_, admin := testUser(t, s, persistence.RoleAdmin)
	tests := []struct {
		token, method, path string
		want                int
	}{
		{customer, "POST", "/v1/admin/providers", 403},
		{customer, "GET", "/v1/admin/audit", 403},
		{customer, "POST", "/v1/api-keys", 403},
		{provider, "GET", "/v1/admin/audit", 403},
		{provider, "POST", "/v1/admin/signing-keys", 403},
		{provider, "GET", "/v1/api-keys", 200},
		{admin, "GET", "/v1/admin/audit", 200},
		{customer, "GET", "/v1/me", 200},
	}
	for _, tt := range tests {
		w, _ := serve(s, tt.method, tt.path, http.Header{"Authorization": {"Bearer " + tt.token}, "Content-Type": {"application/json"}}, `{"name":"p"}`)
		if w.Code != tt.want {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.want)
		}
	}
}

// TestTokens: every way a token can be wrong is a 401 naming what was
// wrong; the good one passes.
func TestTokens(t *testing.T) {
	s := newTestServer(t, nil)
	u := persistence.User{ID: NewUserID(), Email: "tok@example.com", Role: persistence.RoleCustomer, PasswordHash: "x"}
	if err := s.store.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	good, _, err := s.keys.sign(u)
	if err != nil {
		t.Fatal(err)
	}
	kr := s.keys
	kr.mu.RLock()
	signer := kr.signer
	kr.mu.RUnlock()
	now := time.Now()
	claims := func(mod func(*Claims)) *Claims {
		c := &Claims{Role: "customer", RegisteredClaims: jwt.RegisteredClaims{Issuer: "bookd", Subject: u.ID, Audience: jwt.ClaimStrings{"bookd-api"},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}}
		mod(c)
		return c
	}
	sign := func(c *Claims, kid string, key ed25519.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	own := ed25519.PrivateKey(signer.Private)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(func(*Claims) {}))
		tok.Header["kid"] = signer.ID
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	hmacWithPublicKey := func() string {
		// Key confusion: an HMAC keyed with the (public) verification key.
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(func(*Claims) {}))
		tok.Header["kid"] = signer.ID
		s, _ := tok.SignedString(signer.Public)
		return s
	}()
	tests := []struct {
		name, token, detail string
	}{
		{"expired", sign(claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)) }), signer.ID, own), "expired"},
		{"not yet valid", sign(claims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), signer.ID, own), "not valid yet"},
		{"no expiry", sign(claims(func(c *Claims) { c.ExpiresAt = nil }), signer.ID, own), "malformed"},
		{"bad signature", sign(claims(func(*Claims) {}), signer.ID, stranger), "signature"},
		{"alg none", none, "signature or algorithm"},
		{"hmac key confusion", hmacWithPublicKey, "signature or algorithm"},
		{"unknown kid", sign(claims(func(*Claims) {}), "key-unknown", own), "kid is unknown"},
		{"no kid", sign(claims(func(*Claims) {}), "", own), "no kid"},
		{"wrong audience", sign(claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"someone-else"} }), signer.ID, own), "audience"},
		{"wrong issuer", sign(claims(func(c *Claims) { c.Issuer = "evil" }), signer.ID, own), "issuer"},
		{"bad role", sign(claims(func(c *Claims) { c.Role = "root" }), signer.ID, own), "role"},
		{"garbage", "not.a.jwt", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, p := serve(s, "GET", "/v1/me", http.Header{"Authorization": {"Bearer " + tt.token}}, "")
			if w.Code != 401 || p == nil || p.Type != "/problems/unauthorized" || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("GET /v1/me with a token %s = %d %s, want 401 naming %q", tt.name, w.Code, w.Body, tt.detail)
			}
		})
	}
	if w, _ := serve(s, "GET", "/v1/me", http.Header{"Authorization": {"Bearer " + good}}, ""); w.Code != 200 {
		t.Errorf("GET /v1/me with a good token = %d %s, want 200", w.Code, w.Body)
	}
}

// TestKeyRotation: after a rotation new tokens carry the new kid, old ones
// still verify, and the JWKS publishes both.
func TestKeyRotation(t *testing.T) {
	s := newTestServer(t, nil)
	_, admin := testUser(t, s, persistence.RoleAdmin)
	w, _ := serve(s, "POST", "/v1/admin/signing-keys", http.Header{"Authorization": {"Bearer " + admin}}, "")
	var rot struct{ Kid string }
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &rot) != nil || rot.Kid == "" {
		t.Fatalf("POST /v1/admin/signing-keys = %d %s, want 201 with a kid", w.Code, w.Body)
	}
	_, fresh := testUser(t, s, persistence.RoleCustomer)
	tok, _, _ := jwt.NewParser().ParseUnverified(fresh, &Claims{})
	if tok.Header["kid"] != rot.Kid {
		t.Errorf("a token after the rotation has kid %v, want %s", tok.Header["kid"], rot.Kid)
	}
	for _, bearer := range []string{admin, fresh} {
		if w, _ := serve(s, "GET", "/v1/me", http.Header{"Authorization": {"Bearer " + bearer}}, ""); w.Code != 200 {
			t.Errorf("GET /v1/me after rotation = %d %s, want 200 for old and new tokens", w.Code, w.Body)
		}
	}
	w, _ = serve(s, "GET", "/.well-known/jwks.json", nil, "")
	var jwks struct{ Keys []JWK }
	if err := json.Unmarshal(w.Body.Bytes(), &jwks); err != nil || len(jwks.Keys) != 2 {
		t.Errorf("GET /.well-known/jwks.json = %s, want the old and the new key", w.Body)
	}
}

// TestRefreshRotationAndReuse: login, refresh (rotates), reuse of the spent
// token → 401 and the whole family is revoked; logout revokes.
func TestRefreshRotationAndReuse(t *testing.T) {
	s := newTestServer(t, nil)
	js := http.Header{"Content-Type": {"application/json"}}
	if w, _ := serve(s, "POST", "/v1/auth/register", js, `{"email":"Rita@Example.com","password":"long enough pw"}`); w.Code != 201 {
		t.Fatalf("register = %d %s", w.Code, w.Body)
	}
	if w, p := serve(s, "POST", "/v1/auth/register", js, `{"email":"rita@example.com","password":"long enough pw"}`); w.Code != 409 || p.Errors[0].Field != "email" {
		t.Errorf("register the same email again = %d %s, want 409 naming email", w.Code, w.Body)
	}
	tokens := func(w *httptest.ResponseRecorder) TokenJSON {
		t.Helper()
		var tj TokenJSON
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &tj) != nil || tj.AccessToken == "" || tj.RefreshToken == "" {
			t.Fatalf("tokens = %d %s, want 200 with tokens", w.Code, w.Body)
		}
		return tj
	}
	if w, p := serve(s, "POST", "/v1/auth/login", js, `{"email":"rita@example.com","password":"wrong password"}`); w.Code != 401 || p.Type != "/problems/invalid-credentials" {
		t.Errorf("login with a wrong password = %d %s, want 401 invalid-credentials", w.Code, w.Body)
	}
	w, _ := serve(s, "POST", "/v1/auth/login", js, `{"email":"rita@example.com","password":"long enough pw"}`)
	first := tokens(w)
	w, _ = serve(s, "POST", "/v1/auth/refresh", js, `{"refresh_token":"`+first.RefreshToken+`"}`)
	second := tokens(w)
	if second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh returned the same refresh token: it must rotate")
	}
	// The spent one comes back: reuse. Its family, second included, is revoked.
	for _, rt := range []string{first.RefreshToken, second.RefreshToken} {
		if w, p := serve(s, "POST", "/v1/auth/refresh", js, `{"refresh_token":"`+rt+`"}`); w.Code != 401 || p.Type != "/problems/invalid-credentials" {
			t.Errorf("refresh after reuse = %d %s, want 401", w.Code, w.Body)
		}
	}
	// Logout revokes a fresh login's family.
	w, _ = serve(s, "POST", "/v1/auth/login", js, `{"email":"rita@example.com","password":"long enough pw"}`)
	third := tokens(w)
	if w, _ := serve(s, "POST", "/v1/auth/logout", js, `{"refresh_token":"`+third.RefreshToken+`"}`); w.Code != 204 {
		t.Errorf("logout = %d %s, want 204", w.Code, w.Body)
	}
	if w, _ := serve(s, "POST", "/v1/auth/refresh", js, `{"refresh_token":"`+third.RefreshToken+`"}`); w.Code != 401 {
		t.Errorf("refresh after logout = %d %s, want 401", w.Code, w.Body)
	}
}

// TestAPIKeys: created with a secret shown once, listed without it, usable
// within its scopes only, revocable.
func TestAPIKeys(t *testing.T) {
	s := newTestServer(t, &fakeActors{reply: func(_, _ string, msg any) (any, error) {
		return &bookdv1.HoldReply{Hold: &bookdv1.Hold{HoldId: msg.(*bookdv1.GetHold).HoldId, Status: bookdv1.HoldStatus_HOLD_STATUS_HELD}}, nil
	}})
	_, provider := testUser(t, s, persistence.RoleProvider)
	auth := http.Header{"Authorization": {"Bearer " + provider}, "Content-Type": {"application/json"}}
	if w, p := serve(s, "POST", "/v1/api-keys", auth, `{"name":"shop","scopes":["holds:read","refunds"]}`); w.Code != 400 || p.Errors[0].Field != "scopes[1]" {
		t.Errorf("POST /v1/api-keys with an unknown scope = %d %s, want 400 naming scopes[1]", w.Code, w.Body)
	}
	w, _ := serve(s, "POST", "/v1/api-keys", auth, `{"name":"shop","scopes":["holds:read"]}`)
	var k APIKeyJSON
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &k) != nil || !strings.HasPrefix(k.Key, "bk_"+k.ID+"_") {
		t.Fatalf("POST /v1/api-keys = %d %s, want 201 with the key", w.Code, w.Body)
	}
	w, _ = serve(s, "GET", "/v1/api-keys", auth, "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), k.ID) || strings.Contains(w.Body.String(), k.Key[len(k.Key)-20:]) {
		t.Errorf("GET /v1/api-keys = %d %s, want the key listed without its secret", w.Code, w.Body)
	}
	withKey := http.Header{"Authorization": {"ApiKey " + k.Key}, "Content-Type": {"application/json"}}
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/holds/r-1.aaaaaaaaaaaaaaaaaaaa", 200}, // holds:read
		{"POST", "/v1/holds", 403},                         // no holds:write
		{"POST", "/v1/admin/providers", 403},               // no catalog:write
		{"GET", "/v1/api-keys", 403},                       // keys do not manage keys
	}
	for _, tt := range tests {
		if w, _ := serve(s, tt.method, tt.path, withKey, `{"resource_id":"r-1","name":"x"}`); w.Code != tt.want {
			t.Errorf("%s %s with the API key = %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.want)
		}
	}
	if w, _ := serve(s, "GET", "/v1/holds/r-1.aaaaaaaaaaaaaaaaaaaa", http.Header{"Authorization": {"ApiKey " + k.Key + "x"}}, ""); w.Code != 401 {
		t.Errorf("a wrong secret = %d, want 401", w.Code)
	}
	if w, _ := serve(s, "DELETE", "/v1/api-keys/"+k.ID, auth, ""); w.Code != 204 {
		t.Fatalf("DELETE /v1/api-keys/%s = %d %s, want 204", k.ID, w.Code, w.Body)
	}
	s.apiKeys = newTokenCache(10) // revocation reaches other nodes within apiKeyCacheTTL; here at once
	if w, _ := serve(s, "GET", "/v1/holds/r-1.aaaaaaaaaaaaaaaaaaaa", withKey, ""); w.Code != 401 {
		t.Errorf("a revoked key = %d %s, want 401", w.Code, w.Body)
	}
}

// TestRateLimit: the 101st request in a minute is a 429 with Retry-After and
// RateLimit-* headers; the login class is stricter; a minute later the
// client may go on. The clock is the test's.
func TestRateLimit(t *testing.T) {
	s := newTestServer(t, nil)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.cfg.Limiter = newMemoryLimiter(func() time.Time { return now })
	s.cfg.RateLimits = DefaultRateLimits()
	for i := 1; i <= 101; i++ {
		w, p := serve(s, "GET", "/v1/listings", nil, "")
		switch {
		case i <= 100 && (w.Code != 200 || w.Header().Get("RateLimit-Remaining") != itoa(100-i) || w.Header().Get("RateLimit-Limit") != "100"):
			t.Fatalf("request %d = %d, RateLimit-Remaining %q, want 200 and %d left", i, w.Code, w.Header().Get("RateLimit-Remaining"), 100-i)
		case i == 101 && (w.Code != 429 || p == nil || p.Type != "/problems/rate-limited" || w.Header().Get("Retry-After") != "1" || w.Header().Get("RateLimit-Remaining") != "0"):
			t.Fatalf("request 101 = %d %s Retry-After %q, want 429 rate-limited, Retry-After 1", w.Code, w.Body, w.Header().Get("Retry-After"))
		}
	}
	// The health probes are not limited, also for a client over its budget.
	for _, path := range []string{"/livez", "/readyz"} {
		if w, _ := serve(s, "GET", path, nil, ""); w.Code == 429 || w.Header().Get("RateLimit-Limit") != "" {
			t.Errorf("GET %s over the budget = %d, RateLimit-Limit %q; want no rate limit on a health probe", path, w.Code, w.Header().Get("RateLimit-Limit"))
		}
	}
	// Another client (address) has its own budget; login is stricter.
	js := http.Header{"Content-Type": {"application/json"}}
	for i := 1; i <= 11; i++ {
		r := httptest.NewRequest("POST", "/v1/auth/login", strings.NewReader(`{"email":"a@b.c","password":"x"}`))
		r.Header = js.Clone()
		r.RemoteAddr = "192.0.2.7:1234"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if (i <= 10) != (w.Code != 429) {
			t.Fatalf("login %d from another address = %d, want 429 only for the 11th", i, w.Code)
		}
	}
	now = now.Add(time.Minute)
	if w, _ := serve(s, "GET", "/v1/listings", nil, ""); w.Code != 200 || w.Header().Get("RateLimit-Remaining") != "99" {
		t.Errorf("a minute later = %d remaining %q, want 200 and 99 left", w.Code, w.Header().Get("RateLimit-Remaining"))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseRateLimits(t *testing.T) {
	tests := []struct {
		in      string
		class   string
		want    Rate
		wantErr bool
	}{
		{"", ClassDefault, Rate{100, time.Minute}, false},
		{"default=5/1s", ClassDefault, Rate{5, time.Second}, false},
		{"login=off", ClassLogin, Rate{}, false},
		{"holds=1000/1m,login=3/1h", ClassLogin, Rate{3, time.Hour}, false},
		{"nope=1/1s", "", Rate{}, true},
		{"default=0/1s", "", Rate{}, true},
		{"default=5", "", Rate{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRateLimits(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got[tt.class] != tt.want) {
			t.Errorf("ParseRateLimits(%q)[%s] = %v, %v; want %v, error %v", tt.in, tt.class, got[tt.class], err, tt.want, tt.wantErr)
		}
	}
}

// TestSecurityHeadersAndCORS: every answer has the security headers; CORS
// answers the allow-list only.
func TestSecurityHeadersAndCORS(t *testing.T) {
	s := newTestServer(t, nil)
	s.cfg.CORSOrigins = []string{"https://app.example.com"}
	s.cfg.BehindTLS = true
	w, _ := serve(s, "GET", "/v1/listings", http.Header{"Origin": {"https://app.example.com"}}, "")
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains", "Access-Control-Allow-Origin": "https://app.example.com",
	} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("GET /v1/listings %s = %q, want %q", h, got, want)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'none'", csp)
	}
	tests := []struct {
		origin     string
		wantStatus int
		wantAllow  string
	}{
		{"https://app.example.com", 204, "https://app.example.com"},
		{"https://evil.example.com", 403, ""},
	}
	for _, tt := range tests {
		w, _ := serve(s, "OPTIONS", "/v1/holds", http.Header{"Origin": {tt.origin}, "Access-Control-Request-Method": {"POST"}}, "")
		if w.Code != tt.wantStatus || w.Header().Get("Access-Control-Allow-Origin") != tt.wantAllow {
			t.Errorf("preflight from %s = %d allow %q, want %d %q", tt.origin, w.Code, w.Header().Get("Access-Control-Allow-Origin"), tt.wantStatus, tt.wantAllow)
		}
	}
	if w, _ := serve(s, "GET", "/api-docs", nil, ""); w.Code != 200 || !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") || !strings.Contains(w.Body.String(), "/api-docs/docs.js") {
		t.Errorf("GET /api-docs = %d CSP %q, want the page with its own strict CSP", w.Code, w.Header().Get("Content-Security-Policy"))
	}
}
