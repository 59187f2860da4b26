package conformance

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// testAccounts checks the Accounts contract and the catalog additions that
// came with it (provider owners, listing versions).
func testAccounts(t *testing.T, factory Factory) {
	t.Run("Users", func(t *testing.T) { testUsers(t, fresh(t, factory)) })
	t.Run("SigningKeys", func(t *testing.T) { testSigningKeys(t, fresh(t, factory)) })
	t.Run("RefreshTokens", func(t *testing.T) { testRefreshTokens(t, fresh(t, factory)) })
	t.Run("APIKeys", func(t *testing.T) { testAPIKeys(t, fresh(t, factory)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, fresh(t, factory)) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, fresh(t, factory)) })
	t.Run("OwnersAndVersions", func(t *testing.T) { testOwnersAndVersions(t, fresh(t, factory)) })
}

func testUsers(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	u := persistence.User{ID: "u1", Email: "ana@example.com", Name: "Ana", Role: persistence.RoleCustomer, PasswordHash: "$argon2id$x", CreatedAt: created}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser(%+v) = %v", u, err)
	}
	tests := []struct {
		name string
		u    persistence.User
		want error
	}{
		{"same id", persistence.User{ID: "u1", Email: "other@example.com", Role: persistence.RoleCustomer}, persistence.ErrExists},
		{"same email", persistence.User{ID: "u2", Email: "ana@example.com", Role: persistence.RoleCustomer}, persistence.ErrExists},
	}
	for _, tt := range tests {
		if err := s.CreateUser(ctx, tt.u); !errors.Is(err, tt.want) {
			t.Errorf("CreateUser(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
	for _, get := range []func() (persistence.User, error){
		func() (persistence.User, error) { return s.GetUser(ctx, "u1") },
		func() (persistence.User, error) { return s.GetUserByEmail(ctx, "ana@example.com") },
	} {
		got, err := get()
		if err != nil || got.ID != u.ID || got.Email != u.Email || got.Role != u.Role || got.PasswordHash != u.PasswordHash || !sameTime(got.CreatedAt, created) {
			t.Errorf("get user = %+v, %v; want %+v", got, err, u)
		}
	}
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("GetUser(nobody) = %v, want ErrNotFound", err)
	}
}

func testSigningKeys(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	k1 := persistence.SigningKey{ID: "k1", Algorithm: "EdDSA", Private: bytes.Repeat([]byte{1}, 64), Public: bytes.Repeat([]byte{2}, 32), CreatedAt: created}
	k2 := persistence.SigningKey{ID: "k2", Algorithm: "EdDSA", Private: bytes.Repeat([]byte{3}, 64), Public: bytes.Repeat([]byte{4}, 32), CreatedAt: created.Add(time.Hour)}
	for _, k := range []persistence.SigningKey{k2, k1} {
		if err := s.AddSigningKey(ctx, k); err != nil {
			t.Fatalf("AddSigningKey(%s) = %v", k.ID, err)
		}
	}
	if err := s.AddSigningKey(ctx, k1); !errors.Is(err, persistence.ErrExists) {
		t.Errorf("AddSigningKey(k1 again) = %v, want ErrExists", err)
	}
	if err := s.RetireSigningKey(ctx, "k1", created.Add(2*time.Hour)); err != nil {
		t.Fatalf("RetireSigningKey(k1) = %v", err)
	}
	if err := s.RetireSigningKey(ctx, "k9", created); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("RetireSigningKey(k9) = %v, want ErrNotFound", err)
	}
	ks, err := s.SigningKeys(ctx)
	if err != nil || len(ks) != 2 || ks[0].ID != "k1" || ks[1].ID != "k2" {
		t.Fatalf("SigningKeys() = %+v, %v; want k1, k2", ks, err)
	}
	if !bytes.Equal(ks[0].Private, k1.Private) || !bytes.Equal(ks[0].Public, k1.Public) || !sameTime(ks[0].RetiredAt, created.Add(2*time.Hour)) || !ks[1].RetiredAt.IsZero() {
		t.Errorf("SigningKeys() = %+v, want k1 retired with its bytes, k2 active", ks)
	}
}

func testRefreshTokens(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	now := time.Now()
	exp := now.Add(time.Hour)
	if err := s.CreateRefreshToken(ctx, persistence.RefreshToken{Hash: "h1", Family: "f", UserID: "u1", ExpiresAt: exp}); err != nil {
		t.Fatalf("CreateRefreshToken = %v", err)
	}
	if err := s.CreateRefreshToken(ctx, persistence.RefreshToken{Hash: "old", Family: "g", UserID: "u1", ExpiresAt: now.Add(-time.Minute)}); err != nil {
		t.Fatalf("CreateRefreshToken = %v", err)
	}
	steps := []struct {
		name, old, next string
		want            error
	}{
		{"first use", "h1", "h2", nil},
		{"next one", "h2", "h3", nil},
		{"unknown", "zz", "h9", persistence.ErrNotFound},
		{"expired", "old", "h8", persistence.ErrNotFound},
		{"reuse of a spent one", "h1", "h4", persistence.ErrTokenReused},
		{"the family is revoked", "h3", "h5", persistence.ErrNotFound},
	}
	for _, st := range steps {
		got, err := s.RotateRefreshToken(ctx, st.old, persistence.RefreshToken{Hash: st.next, ExpiresAt: exp}, now)
		if !errors.Is(err, st.want) {
			t.Fatalf("RotateRefreshToken(%s: %s) = %v, want %v", st.name, st.old, err, st.want)
		}
		if st.want == nil && (got.UserID != "u1" || got.Family != "f") {
			t.Errorf("RotateRefreshToken(%s) = %+v, want user u1 family f", st.name, got)
		}
	}
	// Logout revokes the family of a live token.
	if err := s.CreateRefreshToken(ctx, persistence.RefreshToken{Hash: "l1", Family: "l", UserID: "u1", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRefreshFamily(ctx, "l1"); err != nil {
		t.Fatalf("RevokeRefreshFamily(l1) = %v", err)
	}
	if _, err := s.RotateRefreshToken(ctx, "l1", persistence.RefreshToken{Hash: "l2", ExpiresAt: exp}, now); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("RotateRefreshToken after logout = %v, want ErrNotFound", err)
	}
	if err := s.RevokeRefreshFamily(ctx, "nope"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("RevokeRefreshFamily(unknown) = %v, want ErrNotFound", err)
	}
}

func testAPIKeys(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	for _, k := range []persistence.APIKey{
		{ID: "k2", OwnerID: "p1", Name: "b", Hash: "hb", Scopes: []string{"catalog:write"}},
		{ID: "k1", OwnerID: "p1", Name: "a", Hash: "ha", Scopes: []string{"holds:read", "holds:write"}},
		{ID: "k3", OwnerID: "p2", Name: "c", Hash: "hc"},
	} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey(%s) = %v", k.ID, err)
		}
	}
	if err := s.CreateAPIKey(ctx, persistence.APIKey{ID: "k1", OwnerID: "p9"}); !errors.Is(err, persistence.ErrExists) {
		t.Errorf("CreateAPIKey(k1 again) = %v, want ErrExists", err)
	}
	got, err := s.GetAPIKey(ctx, "k1")
	if err != nil || got.Hash != "ha" || !slices.Equal(got.Scopes, []string{"holds:read", "holds:write"}) {
		t.Errorf("GetAPIKey(k1) = %+v, %v", got, err)
	}
	if err := s.RevokeAPIKey(ctx, "p2", "k1", created); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("RevokeAPIKey(another owner's) = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAPIKey(ctx, "p1", "k1", created); err != nil {
		t.Fatalf("RevokeAPIKey(k1) = %v", err)
	}
	if _, err := s.GetAPIKey(ctx, "k1"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("GetAPIKey(revoked) = %v, want ErrNotFound", err)
	}
	ks, err := s.ListAPIKeys(ctx, "p1")
	if err != nil || len(ks) != 2 || ks[0].ID != "k1" || ks[0].RevokedAt.IsZero() || ks[1].ID != "k2" || !ks[1].RevokedAt.IsZero() {
		t.Errorf("ListAPIKeys(p1) = %+v, %v; want k1 (revoked), k2", ks, err)
	}
}

func testAudit(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	for i, a := range []string{"create provider", "create listing", "create resource"} {
		if err := s.AppendAudit(ctx, persistence.AuditEntry{At: created.Add(time.Duration(i) * time.Second), ActorID: "u1", Role: persistence.RoleProvider, Action: a, Target: "x", Remote: "127.0.0.1"}); err != nil {
			t.Fatalf("AppendAudit = %v", err)
		}
	}
	page, more, err := s.ListAudit(ctx, 0, 2)
	if err != nil || len(page) != 2 || !more || page[0].Action != "create provider" || page[1].Seq <= page[0].Seq || page[0].Remote != "127.0.0.1" {
		t.Fatalf("ListAudit(0, 2) = %+v, %v, %v", page, more, err)
	}
	rest, more, err := s.ListAudit(ctx, page[1].Seq, 2)
	if err != nil || len(rest) != 1 || more || rest[0].Action != "create resource" {
		t.Errorf("ListAudit(after page) = %+v, %v, %v", rest, more, err)
	}
}

func testIdempotency(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	now := time.Now()
	begin := func(user, key, fp string, at time.Time) (persistence.IdemRecord, bool) {
		t.Helper()
		prev, started, err := s.BeginIdempotent(ctx, persistence.IdemRecord{UserID: user, Key: key, Fingerprint: fp, CreatedAt: at})
		if err != nil {
			t.Fatalf("BeginIdempotent(%s, %s) = %v", user, key, err)
		}
		return prev, started
	}
	if _, started := begin("u1", "k", "f1", now); !started {
		t.Fatalf("BeginIdempotent(new key) did not start")
	}
	if prev, started := begin("u1", "k", "f2", now); started || prev.Fingerprint != "f1" || prev.Status != 0 {
		t.Errorf("BeginIdempotent(in flight) = %+v, %v; want the first, in flight", prev, started)
	}
	if _, started := begin("u2", "k", "f2", now); !started {
		t.Errorf("BeginIdempotent(another user's key) did not start: keys are per user")
	}
	if err := s.FinishIdempotent(ctx, "u1", "k", 201, "/v1/x", []byte(`{"id":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if prev, started := begin("u1", "k", "f1", now); started || prev.Status != 201 || prev.Location != "/v1/x" || string(prev.Body) != `{"id":"x"}` {
		t.Errorf("BeginIdempotent(answered) = %+v, %v; want the answer", prev, started)
	}
	if _, started := begin("u1", "k", "f3", now.Add(persistence.IdemTTL+time.Minute)); !started {
		t.Errorf("BeginIdempotent(after the TTL) did not start")
	}
	if err := s.AbandonIdempotent(ctx, "u1", "k"); err != nil {
		t.Fatal(err)
	}
	if _, started := begin("u1", "k", "f4", now); !started {
		t.Errorf("BeginIdempotent(after abandon) did not start")
	}
}

func testOwnersAndVersions(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	p, l, _ := sampleCatalog()
	p.OwnerID = "u-prov"
	if err := s.CreateProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetProvider(ctx, p.ID); err != nil || got.OwnerID != "u-prov" {
		t.Errorf("GetProvider = %+v, %v; want owner u-prov", got, err)
	}
	if err := s.CreateListing(ctx, l); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetListing(ctx, l.ID)
	if err != nil || got.Version != 1 {
		t.Fatalf("GetListing = %+v, %v; want version 1", got, err)
	}
	l.Name, l.Attributes = "Casa Verde", map[string]string{"stars": "5"}
	tests := []struct {
		name      string
		id        string
		ifVersion int64
		want      error
	}{
		{"current", l.ID, 1, nil},
		{"stale", l.ID, 1, persistence.ErrPrecondition},
		{"missing", "nope", 1, persistence.ErrNotFound},
	}
	for _, tt := range tests {
		u := l
		u.ID = tt.id
		if err := s.UpdateListing(ctx, u, tt.ifVersion); !errors.Is(err, tt.want) {
			t.Errorf("UpdateListing(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
	got, err = s.GetListing(ctx, l.ID)
	if err != nil || got.Version != 2 || got.Name != "Casa Verde" || got.Attributes["stars"] != "5" {
		t.Errorf("GetListing after update = %+v, %v; want version 2, the new name", got, err)
	}
}
