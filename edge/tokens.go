package edge

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bookd/bookd/persistence"
)

// Access tokens are JWTs signed with EdDSA (Ed25519). The signing keys live
// in the store, so a token signed on one node verifies on every node; the
// newest key that is not retired signs. A kid that this node does not know
// makes it reread the keys (at most once a second), so a key added by
// another node is found without a restart.

// Claims are an access token's claims.
type Claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// keyRing is the node's copy of the signing keys.
type keyRing struct {
	store    persistence.Accounts
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time

	mu       sync.RWMutex
	keys     map[string]persistence.SigningKey
	signer   persistence.SigningKey
	reloaded time.Time
}

// newKeyRing loads the keys, and adds one when none may sign.
func newKeyRing(ctx context.Context, store persistence.Accounts, cfg Config) (*keyRing, error) {
	kr := &keyRing{store: store, issuer: cfg.Issuer, audience: cfg.Audience, ttl: cfg.AccessTTL, now: cfg.Now}
	if err := kr.reload(ctx); err != nil {
		return nil, err
	}
	kr.mu.RLock()
	none := kr.signer.ID == ""
	kr.mu.RUnlock()
	if none {
		if _, err := kr.rotate(ctx); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

func (kr *keyRing) reload(ctx context.Context) error {
	ks, err := kr.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	m := make(map[string]persistence.SigningKey, len(ks))
	var signer persistence.SigningKey
	for _, k := range ks {
		if k.Algorithm != "EdDSA" || len(k.Private) != ed25519.PrivateKeySize || len(k.Public) != ed25519.PublicKeySize {
			continue
		}
		m[k.ID] = k
		if k.RetiredAt.IsZero() {
			signer = k // oldest first: the last one wins
		}
	}
	kr.mu.Lock()
	kr.keys, kr.signer, kr.reloaded = m, signer, kr.now()
	kr.mu.Unlock()
	return nil
}

// rotate adds a new signing key and retires the others; tokens they signed
// stay valid until they expire.
func (kr *keyRing) rotate(ctx context.Context) (persistence.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return persistence.SigningKey{}, err
	}
	k := persistence.SigningKey{ID: newID("key"), Algorithm: "EdDSA", Private: priv, Public: pub, CreatedAt: kr.now()}
	if err := kr.store.AddSigningKey(ctx, k); err != nil {
		return k, fmt.Errorf("add signing key: %w", err)
	}
	kr.mu.RLock()
	var old []string
	for id, o := range kr.keys {
		if o.RetiredAt.IsZero() {
			old = append(old, id)
		}
	}
	kr.mu.RUnlock()
	for _, id := range old {
		if err := kr.store.RetireSigningKey(ctx, id, kr.now()); err != nil {
			return k, fmt.Errorf("retire signing key %s: %w", id, err)
		}
	}
	return k, kr.reload(ctx)
}

// sign issues an access token for user.
func (kr *keyRing) sign(u persistence.User) (token string, exp time.Time, err error) {
	kr.mu.RLock()
	k := kr.signer
	kr.mu.RUnlock()
	if k.ID == "" {
		return "", exp, errors.New("no signing key")
	}
	now := kr.now()
	exp = now.Add(kr.ttl)
	c := Claims{Role: string(u.Role), RegisteredClaims: jwt.RegisteredClaims{
		Issuer: kr.issuer, Subject: u.ID, Audience: jwt.ClaimStrings{kr.audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		ID: newID("jti"),
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.ID
	s, err := t.SignedString(ed25519.PrivateKey(k.Private))
	return s, exp, err
}

// key returns the public key of kid, rereading the store once when it is
// unknown and the last reread is over a second old.
func (kr *keyRing) key(ctx context.Context, kid string) (ed25519.PublicKey, bool) {
	kr.mu.RLock()
	k, ok := kr.keys[kid]
	stale := kr.now().Sub(kr.reloaded) > time.Second
	kr.mu.RUnlock()
	if !ok && stale {
		if err := kr.reload(ctx); err == nil {
			kr.mu.RLock()
			k, ok = kr.keys[kid]
			kr.mu.RUnlock()
		}
	}
	if !ok {
		return nil, false
	}
	return ed25519.PublicKey(k.Public), true
}

// errToken is why a token is refused; its text goes into the 401.
type errToken string

func (e errToken) Error() string { return string(e) }

// parseToken verifies an access token: EdDSA only (so neither "none" nor
// an HMAC made with the public key passes), a known kid, the issuer, the
// audience, exp required, nbf and iat when present.
func (kr *keyRing) parseToken(ctx context.Context, token string) (*Claims, error) {
	c := &Claims{}
	_, err := jwt.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errToken("the token has no kid")
		}
		k, ok := kr.key(ctx, kid)
		if !ok {
			return nil, errToken("the token's kid is unknown")
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(kr.issuer), jwt.WithAudience(kr.audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(kr.now), jwt.WithLeeway(5*time.Second))
	if err != nil {
		var et errToken
		if errors.As(err, &et) {
			return nil, et
		}
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, errToken("the token expired")
		case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return nil, errToken("the token is not valid yet")
		case errors.Is(err, jwt.ErrTokenInvalidAudience):
			return nil, errToken("the token is for another audience")
		case errors.Is(err, jwt.ErrTokenInvalidIssuer):
			return nil, errToken("the token is from another issuer")
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return nil, errToken("the token's signature or algorithm is not accepted")
		}
		return nil, errToken("the token is malformed")
	}
	if c.Subject == "" || !persistence.Role(c.Role).Valid() {
		return nil, errToken("the token names no user or role")
	}
	return c, nil
}

// JWK is one key of /.well-known/jwks.json.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// jwks returns the keys that may have signed a token that is still valid:
// the signer and those retired less than a token lifetime ago.
func (kr *keyRing) jwks() []JWK {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	out := []JWK{}
	for _, k := range kr.keys {
		if !k.RetiredAt.IsZero() && kr.now().Sub(k.RetiredAt) > kr.ttl+time.Minute {
			continue
		}
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public), Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	return out
}

// tokenCache remembers verified access tokens until they expire, so that a
// client's every request does not cost an Ed25519 verification (~50 µs).
// It is bounded: when full, it drops the expired entries, and if that is not
// enough, everything (the next requests verify again).
type tokenCache struct {
	max int
	mu  sync.RWMutex
	m   map[string]*Principal
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[string]*Principal)}
}

func (c *tokenCache) get(token string, now time.Time) *Principal {
	c.mu.RLock()
	p := c.m[token]
	c.mu.RUnlock()
	if p == nil || !now.Before(p.expires) {
		return nil
	}
	return p
}

func (c *tokenCache) put(token string, p *Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[token] = p
}
