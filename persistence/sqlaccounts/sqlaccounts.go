// Package sqlaccounts implements persistence.Accounts once for both SQL
// stores over database/sql: the statements are portable SQL (upserts with
// ON CONFLICT, conditional updates instead of row locks) written with ?
// placeholders, which Rebind turns into the store's own. Times are BIGINT
// microseconds since the Unix epoch, UTC, in both stores.
//
// Every write that must be atomic is one statement or one transaction whose
// decision is a conditional UPDATE, so it holds under SQLite's single
// writer and under PostgreSQL's READ COMMITTED alike.
package sqlaccounts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bookd/bookd/persistence"
)

// Accounts is persistence.Accounts over two database/sql pools.
type Accounts struct {
	// Name prefixes errors ("sqlite", "postgres").
	Name string
	// W runs writes, R reads (they may be the same).
	W, R *sql.DB
	// Dollar makes placeholders $1, $2, … (PostgreSQL) instead of ?.
	Dollar bool
	// IsUnique reports whether err is a unique or primary key violation.
	IsUnique func(error) bool
}

var _ persistence.Accounts = (*Accounts)(nil)

func (a *Accounts) q(query string) string {
	if !a.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (a *Accounts) errf(format string, args ...any) error {
	return fmt.Errorf(a.Name+": "+format, args...)
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func stamp(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixMicro()
}

// CreateUser stores u.
func (a *Accounts) CreateUser(ctx context.Context, u persistence.User) error {
	if u.ID == "" || u.Email == "" || !u.Role.Valid() {
		return a.errf("create user: id, email and a valid role are required")
	}
	_, err := a.W.ExecContext(ctx, a.q(`INSERT INTO users (id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		u.ID, u.Email, u.Name, string(u.Role), u.PasswordHash, stamp(u.CreatedAt))
	switch {
	case a.IsUnique(err):
		return a.errf("create user %q: %w", u.ID, persistence.ErrExists)
	case err != nil:
		return a.errf("create user %q: %w", u.ID, err)
	}
	return nil
}

const userColumns = `id, email, name, role, password_hash, created_at`

func (a *Accounts) getUser(ctx context.Context, where, arg string) (persistence.User, error) {
	var (
		u    persistence.User
		role string
		at   int64
	)
	err := a.R.QueryRowContext(ctx, a.q(`SELECT `+userColumns+` FROM users WHERE `+where+` = ?`), arg).
		Scan(&u.ID, &u.Email, &u.Name, &role, &u.PasswordHash, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return u, a.errf("user %s %q: %w", where, arg, persistence.ErrNotFound)
	case err != nil:
		return u, a.errf("user %s %q: %w", where, arg, err)
	}
	u.Role, u.CreatedAt = persistence.Role(role), fromMicros(at)
	return u, nil
}

// GetUser returns the user id.
func (a *Accounts) GetUser(ctx context.Context, id string) (persistence.User, error) {
	return a.getUser(ctx, "id", id)
}

// GetUserByEmail returns the user with that email.
func (a *Accounts) GetUserByEmail(ctx context.Context, email string) (persistence.User, error) {
	return a.getUser(ctx, "email", email)
}

// AddSigningKey stores k.
func (a *Accounts) AddSigningKey(ctx context.Context, k persistence.SigningKey) error {
	_, err := a.W.ExecContext(ctx, a.q(`INSERT INTO signing_keys (kid, algorithm, private, public, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)`),
		k.ID, k.Algorithm, k.Private, k.Public, stamp(k.CreatedAt), micros(k.RetiredAt))
	switch {
	case a.IsUnique(err):
		return a.errf("add signing key %q: %w", k.ID, persistence.ErrExists)
	case err != nil:
		return a.errf("add signing key %q: %w", k.ID, err)
	}
	return nil
}

// SigningKeys returns every key, oldest first.
func (a *Accounts) SigningKeys(ctx context.Context) ([]persistence.SigningKey, error) {
	rows, err := a.R.QueryContext(ctx, `SELECT kid, algorithm, private, public, created_at, retired_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, a.errf("signing keys: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var ks []persistence.SigningKey
	for rows.Next() {
		var (
			k       persistence.SigningKey
			at, ret int64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Private, &k.Public, &at, &ret); err != nil {
			return nil, a.errf("signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt = fromMicros(at), fromMicros(ret)
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, a.errf("signing keys: %w", err)
	}
	return ks, nil
}

// RetireSigningKey marks kid retired at at.
func (a *Accounts) RetireSigningKey(ctx context.Context, kid string, at time.Time) error {
	res, err := a.W.ExecContext(ctx, a.q(`UPDATE signing_keys SET retired_at = CASE WHEN retired_at = 0 THEN ? ELSE retired_at END WHERE kid = ?`), stamp(at), kid)
	if err != nil {
		return a.errf("retire signing key %q: %w", kid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return a.errf("retire signing key %q: %w", kid, persistence.ErrNotFound)
	}
	return nil
}

// CreateRefreshToken stores t.
func (a *Accounts) CreateRefreshToken(ctx context.Context, t persistence.RefreshToken) error {
	_, err := a.W.ExecContext(ctx, a.q(`INSERT INTO refresh_tokens (hash, family, user_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`),
		t.Hash, t.Family, t.UserID, micros(t.ExpiresAt), stamp(t.CreatedAt))
	switch {
	case a.IsUnique(err):
		return a.errf("create refresh token: %w", persistence.ErrExists)
	case err != nil:
		return a.errf("create refresh token: %w", err)
	}
	return nil
}

// RotateRefreshToken spends oldHash and stores next in its family. The
// conditional UPDATE decides: of two concurrent uses of one token exactly
// one spends it, and the other is a reuse.
func (a *Accounts) RotateRefreshToken(ctx context.Context, oldHash string, next persistence.RefreshToken, now time.Time) (persistence.RefreshToken, error) {
	tx, err := a.W.BeginTx(ctx, nil)
	if err != nil {
		return persistence.RefreshToken{}, a.errf("rotate refresh token: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var (
		old                 persistence.RefreshToken
		exp, at, spent, rev int64
	)
	err = tx.QueryRowContext(ctx, a.q(`UPDATE refresh_tokens SET spent_at = ? WHERE hash = ? AND spent_at = 0 AND revoked_at = 0 AND expires_at > ?
		RETURNING hash, family, user_id, expires_at, created_at`), stamp(now), oldHash, now.UnixMicro()).
		Scan(&old.Hash, &old.Family, &old.UserID, &exp, &at)
	if errors.Is(err, sql.ErrNoRows) {
		// Not spent now: find out why.
		err = tx.QueryRowContext(ctx, a.q(`SELECT family, spent_at, revoked_at FROM refresh_tokens WHERE hash = ?`), oldHash).Scan(&old.Family, &spent, &rev)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return persistence.RefreshToken{}, a.errf("rotate refresh token: %w", persistence.ErrNotFound)
		case err != nil:
			return persistence.RefreshToken{}, a.errf("rotate refresh token: %w", err)
		case spent != 0:
			if _, err := tx.ExecContext(ctx, a.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at = 0`), stamp(now), old.Family); err != nil {
				return persistence.RefreshToken{}, a.errf("revoke refresh family: %w", err)
			}
			if err := tx.Commit(); err != nil {
				return persistence.RefreshToken{}, a.errf("revoke refresh family: %w", err)
			}
			return persistence.RefreshToken{}, a.errf("rotate refresh token: %w", persistence.ErrTokenReused)
		}
		return persistence.RefreshToken{}, a.errf("rotate refresh token (expired or revoked): %w", persistence.ErrNotFound)
	}
	if err != nil {
		return persistence.RefreshToken{}, a.errf("rotate refresh token: %w", err)
	}
	old.ExpiresAt, old.CreatedAt = fromMicros(exp), fromMicros(at)
	if _, err := tx.ExecContext(ctx, a.q(`INSERT INTO refresh_tokens (hash, family, user_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`),
		next.Hash, old.Family, old.UserID, micros(next.ExpiresAt), stamp(next.CreatedAt)); err != nil {
		return persistence.RefreshToken{}, a.errf("rotate refresh token: store the next: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return persistence.RefreshToken{}, a.errf("rotate refresh token: commit: %w", err)
	}
	return old, nil
}

// RevokeRefreshFamily revokes the family of the token hash.
func (a *Accounts) RevokeRefreshFamily(ctx context.Context, hash string) error {
	res, err := a.W.ExecContext(ctx, a.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at = 0 AND family = (SELECT family FROM refresh_tokens WHERE hash = ?)`),
		stamp(time.Time{}), hash)
	if err != nil {
		return a.errf("revoke refresh family: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := a.W.QueryRowContext(ctx, a.q(`SELECT 1 FROM refresh_tokens WHERE hash = ?`), hash).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return a.errf("revoke refresh family: %w", persistence.ErrNotFound)
		}
	}
	return nil
}

// CreateAPIKey stores k.
func (a *Accounts) CreateAPIKey(ctx context.Context, k persistence.APIKey) error {
	scopes, err := json.Marshal(append([]string{}, k.Scopes...))
	if err != nil {
		return a.errf("create api key: %w", err)
	}
	_, err = a.W.ExecContext(ctx, a.q(`INSERT INTO api_keys (id, owner_id, name, hash, scopes, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		k.ID, k.OwnerID, k.Name, k.Hash, string(scopes), stamp(k.CreatedAt), micros(k.RevokedAt))
	switch {
	case a.IsUnique(err):
		return a.errf("create api key %q: %w", k.ID, persistence.ErrExists)
	case err != nil:
		return a.errf("create api key %q: %w", k.ID, err)
	}
	return nil
}

const apiKeyColumns = `id, owner_id, name, hash, scopes, created_at, revoked_at`

func scanAPIKey(sc interface{ Scan(...any) error }) (persistence.APIKey, error) {
	var (
		k       persistence.APIKey
		scopes  string
		at, rev int64
	)
	if err := sc.Scan(&k.ID, &k.OwnerID, &k.Name, &k.Hash, &scopes, &at, &rev); err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return k, fmt.Errorf("api key %q: scopes: %w", k.ID, err)
	}
	k.CreatedAt, k.RevokedAt = fromMicros(at), fromMicros(rev)
	return k, nil
}

// GetAPIKey returns the valid key id.
func (a *Accounts) GetAPIKey(ctx context.Context, id string) (persistence.APIKey, error) {
	k, err := scanAPIKey(a.R.QueryRowContext(ctx, a.q(`SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ? AND revoked_at = 0`), id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return k, a.errf("api key %q: %w", id, persistence.ErrNotFound)
	case err != nil:
		return k, a.errf("api key %q: %w", id, err)
	}
	return k, nil
}

// ListAPIKeys returns the owner's keys by id.
func (a *Accounts) ListAPIKeys(ctx context.Context, ownerID string) ([]persistence.APIKey, error) {
	rows, err := a.R.QueryContext(ctx, a.q(`SELECT `+apiKeyColumns+` FROM api_keys WHERE owner_id = ? ORDER BY id`), ownerID)
	if err != nil {
		return nil, a.errf("api keys of %q: %w", ownerID, err)
	}
	defer func() { _ = rows.Close() }()
	var ks []persistence.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, a.errf("api keys of %q: %w", ownerID, err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, a.errf("api keys of %q: %w", ownerID, err)
	}
	return ks, nil
}

// RevokeAPIKey revokes the owner's key id.
func (a *Accounts) RevokeAPIKey(ctx context.Context, ownerID, id string, at time.Time) error {
	res, err := a.W.ExecContext(ctx, a.q(`UPDATE api_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ? AND owner_id = ?`),
		stamp(at), id, ownerID)
	if err != nil {
		return a.errf("revoke api key %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return a.errf("revoke api key %q: %w", id, persistence.ErrNotFound)
	}
	return nil
}

// AppendAudit adds e.
func (a *Accounts) AppendAudit(ctx context.Context, e persistence.AuditEntry) error {
	_, err := a.W.ExecContext(ctx, a.q(`INSERT INTO audit_log (at, actor_id, role, action, target, remote) VALUES (?, ?, ?, ?, ?, ?)`),
		stamp(e.At), e.ActorID, string(e.Role), e.Action, e.Target, e.Remote)
	if err != nil {
		return a.errf("append audit: %w", err)
	}
	return nil
}

// ListAudit returns a page of the audit log.
func (a *Accounts) ListAudit(ctx context.Context, after int64, limit int) ([]persistence.AuditEntry, bool, error) {
	if limit < 1 {
		return nil, false, a.errf("list audit: limit is %d, want at least 1", limit)
	}
	rows, err := a.R.QueryContext(ctx, a.q(`SELECT seq, at, actor_id, role, action, target, remote FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit+1)
	if err != nil {
		return nil, false, a.errf("list audit: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var page []persistence.AuditEntry
	for rows.Next() {
		var (
			e    persistence.AuditEntry
			at   int64
			role string
		)
		if err := rows.Scan(&e.Seq, &at, &e.ActorID, &role, &e.Action, &e.Target, &e.Remote); err != nil {
			return nil, false, a.errf("list audit: %w", err)
		}
		e.At, e.Role = fromMicros(at), persistence.Role(role)
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, a.errf("list audit: %w", err)
	}
	if len(page) > limit {
		return page[:limit], true, nil
	}
	return page, false, nil
}

// BeginIdempotent claims the key, replacing a record older than the TTL.
func (a *Accounts) BeginIdempotent(ctx context.Context, rec persistence.IdemRecord) (persistence.IdemRecord, bool, error) {
	at := stamp(rec.CreatedAt)
	res, err := a.W.ExecContext(ctx, a.q(`INSERT INTO idempotency (user_id, key, fingerprint, status, location, body, created_at) VALUES (?, ?, ?, 0, '', NULL, ?)
		ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = 0, location = '', body = NULL, created_at = excluded.created_at
		WHERE idempotency.created_at < ?`),
		rec.UserID, rec.Key, rec.Fingerprint, at, at-persistence.IdemTTL.Microseconds())
	if err != nil {
		return persistence.IdemRecord{}, false, a.errf("begin idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return persistence.IdemRecord{}, true, nil
	}
	prev := persistence.IdemRecord{UserID: rec.UserID, Key: rec.Key}
	var created int64
	err = a.W.QueryRowContext(ctx, a.q(`SELECT fingerprint, status, location, body, created_at FROM idempotency WHERE user_id = ? AND key = ?`), rec.UserID, rec.Key).
		Scan(&prev.Fingerprint, &prev.Status, &prev.Location, &prev.Body, &created)
	if err != nil {
		return persistence.IdemRecord{}, false, a.errf("read idempotency key: %w", err)
	}
	prev.CreatedAt = fromMicros(created)
	return prev, false, nil
}

// FinishIdempotent stores the answer.
func (a *Accounts) FinishIdempotent(ctx context.Context, userID, key string, status int, location string, body []byte) error {
	if _, err := a.W.ExecContext(ctx, a.q(`UPDATE idempotency SET status = ?, location = ?, body = ? WHERE user_id = ? AND key = ?`),
		status, location, body, userID, key); err != nil {
		return a.errf("finish idempotency key: %w", err)
	}
	return nil
}

// AbandonIdempotent removes the claim.
func (a *Accounts) AbandonIdempotent(ctx context.Context, userID, key string) error {
	if _, err := a.W.ExecContext(ctx, a.q(`DELETE FROM idempotency WHERE user_id = ? AND key = ?`), userID, key); err != nil {
		return a.errf("abandon idempotency key: %w", err)
	}
	return nil
}
