package edge

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bookd/bookd/persistence"
)

// Fuzz targets for the decoders and parsers of the secure edge: the account
// bodies, API keys, listing patches, access tokens, password hashes, ETags
// and rate limit specs.

// refusalOrBadLogin accepts a field problem or the invalid-credentials
// problem (which names no field on purpose: it tells nothing of accounts).
func refusalOrBadLogin(t *testing.T, what string, p *Problem) {
	t.Helper()
	if p.Type == "/problems/invalid-credentials" {
		return
	}
	checkRefusal(t, what, p)
}

func FuzzDecodeRegisterRequest(f *testing.F) {
	for _, s := range []string{
		`{"email":"ana@example.com","password":"a long passphrase"}`,
		`{"email":"Ana@Example.com","password":"a long passphrase","name":"Ana","role":"provider"}`,
		`{"email":"ana@example.com","password":"short"}`,
		`{"email":"not an email","password":"a long passphrase"}`,
		`{"email":"ana@example.com","password":"a long passphrase","role":"admin"}`,
		`{"email":"<ana@example.com>","password":"a long passphrase"}`,
		`{"email":"ana@example.com","password":"a long passphrase","extra":1}`,
		`{"email":1}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, p := decodeRegisterRequest(body)
		if p != nil {
			checkRefusal(t, "decodeRegisterRequest", p)
			return
		}
		if req.Email != strings.ToLower(req.Email) || !strings.Contains(req.Email, "@") || CheckPassword(req.Password) != "" ||
			(req.Role != "customer" && req.Role != "provider") || !utf8.ValidString(req.Name) {
			t.Fatalf("decodeRegisterRequest(%q) accepted %+v", body, req)
		}
	})
}

func FuzzDecodeLoginRequest(f *testing.F) {
	for _, s := range []string{
		`{"email":"ana@example.com","password":"pw"}`, `{"email":"","password":"pw"}`, `{"email":"a"}`,
		`{"email":"a","password":"` + strings.Repeat("x", 300) + `"}`, `{"refresh_token":"rt_x"}`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, p := decodeLoginRequest(body)
		if p != nil {
			refusalOrBadLogin(t, "decodeLoginRequest", p)
			return
		}
		if req.Email == "" || req.Password == "" || len(req.Password) > maxPasswordLen {
			t.Fatalf("decodeLoginRequest(%q) accepted %+v", body, req)
		}
	})
}

func FuzzDecodeRefreshRequest(f *testing.F) {
	for _, s := range []string{`{"refresh_token":"rt_abc"}`, `{"refresh_token":""}`, `{"refresh_token":1}`, `{}`, `{"refresh_token":"` + strings.Repeat("a", 300) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, p := decodeRefreshRequest(body)
		if p != nil {
			refusalOrBadLogin(t, "decodeRefreshRequest", p)
			return
		}
		if req.RefreshToken == "" || len(req.RefreshToken) > 200 {
			t.Fatalf("decodeRefreshRequest(%q) accepted %+v", body, req)
		}
	})
}

func FuzzDecodeAPIKeyRequest(f *testing.F) {
	for _, s := range []string{
		`{"name":"shop","scopes":["holds:read"]}`, `{"name":"shop","scopes":["holds:write","holds:write","catalog:write"]}`,
		`{"name":"shop","scopes":[]}`, `{"name":"","scopes":["holds:read"]}`, `{"name":"shop","scopes":["root"]}`, `{"name":"shop","scopes":"holds:read"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, p := decodeAPIKeyRequest(body)
		if p != nil {
			checkRefusal(t, "decodeAPIKeyRequest", p)
			return
		}
		if req.Name == "" || len(req.Scopes) == 0 {
			t.Fatalf("decodeAPIKeyRequest(%q) accepted %+v", body, req)
		}
		for _, sc := range req.Scopes {
			if sc != scopeCatalogWrite && sc != scopeHoldsRead && sc != scopeHoldsWrite {
				t.Fatalf("decodeAPIKeyRequest(%q) accepted scope %q", body, sc)
			}
		}
	})
}

func FuzzDecodeListingPatch(f *testing.F) {
	for _, s := range []string{
		`{"name":"Casa Verde"}`, `{"attributes":{"stars":"5"}}`, `{"time_zone":"Mars/Olympus"}`, `{"name":""}`,
		`{"city":null}`, `{"version":2}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	base := persistence.Listing{ID: "l-1", ProviderID: "p-1", Kind: persistence.KindEvent, Name: "Old", City: "Porto", TimeZone: "Europe/Lisbon", Version: 1}
	f.Fuzz(func(t *testing.T, body []byte) {
		l, p := decodeListingPatch(body, base)
		if p != nil {
			checkRefusal(t, "decodeListingPatch", p)
			return
		}
		if l.ID != base.ID || l.ProviderID != base.ProviderID || l.Kind != base.Kind || checkListingFields(l.Name, l.City, l.TimeZone, l.Attributes) != nil {
			t.Fatalf("decodeListingPatch(%q) accepted %+v", body, l)
		}
	})
}

// FuzzParseToken: no input panics the verifier or passes it, but for the
// tokens this node signed.
func FuzzParseToken(f *testing.F) {
	s := newFuzzServer(f)
	u := persistence.User{ID: "usr-fuzz", Role: persistence.RoleCustomer}
	good, _, err := s.keys.sign(u)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.keys.parseToken(context.Background(), token)
		if err != nil {
			if _, ok := err.(errToken); !ok {
				t.Fatalf("parseToken(%q) = %T %v, want an errToken", token, err, err)
			}
			return
		}
		if token != good || c.Subject != u.ID {
			t.Fatalf("parseToken(%q) accepted %+v", token, c)
		}
	})
}

// newFuzzServer is newTestServer for a fuzz target.
func newFuzzServer(f *testing.F) *Server {
	var s *Server
	f.Helper()
	dir := f.TempDir()
	st, err := openTestStore(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	cfg := DefaultConfig()
	cfg.Argon2 = testArgon2
	cfg.Logger = discardLogger()
	if s, err = New(cfg, st, nil); err != nil {
		f.Fatal(err)
	}
	return s
}

func FuzzCheckPassword(f *testing.F) {
	h := testArgon2.hashPassword("right password")
	f.Add(h, "right password")
	f.Add("$argon2id$v=19$m=999999999,t=1,p=1$c2FsdA$aGFzaA", "x")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$", "")
	f.Add("plain", "plain")
	f.Fuzz(func(t *testing.T, phc, password string) {
		if len(phc) > 300 {
			return
		}
		if checkPassword(phc, password) && !(phc == h && password == "right password") && strings.Count(phc, "$") != 5 {
			t.Fatalf("checkPassword(%q, %q) = true", phc, password)
		}
	})
}

func FuzzParseListingETag(f *testing.F) {
	for _, s := range []string{`"v1"`, `"v42"`, `W/"v1"`, `"v0"`, `"v-1"`, `v1`, `"v99999999999999999999"`, `*`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseListingETag(s)
		if ok && (v < 1 || listingETag(v) != s) {
			t.Fatalf("parseListingETag(%q) = %d: does not round-trip", s, v)
		}
	})
}

func FuzzParseRateLimits(f *testing.F) {
	for _, s := range []string{"", "default=100/1m", "login=off,holds=5/1s", "default=1/0s", "x=1/1s", "default=9999999999999999999/1m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseRateLimits(s)
		if err != nil {
			return
		}
		for class, r := range m {
			if r.Limit < 0 || (r.Limit > 0 && r.Period <= 0) {
				t.Fatalf("ParseRateLimits(%q)[%s] = %v", s, class, r)
			}
			if r.Limit > 0 {
				if d, err := newMemoryLimiter(time.Now).Allow(context.Background(), "k", r); err != nil || !d.Allowed || d.Remaining != r.Limit-1 {
					t.Fatalf("ParseRateLimits(%q)[%s] = %v: the first request = %+v, %v; want allowed, %d left", s, class, r, d, err, r.Limit-1)
				}
			}
		}
	})
}
