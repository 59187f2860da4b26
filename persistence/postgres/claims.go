package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bookd/bookd/persistence"
)

// ClaimIdempotencyKey records fingerprint for (userID, key) in the
// idempotency table unless the key holds a record younger than
// persistence.IdemTTL, and returns the fingerprint the key holds ("" when
// it was free).
//
// It is the claim of POST /v1/holds (edge.KeyClaims), which must stay off
// the hot path's durability budget: it commits with synchronous_commit off,
// in one round trip (a pipelined batch). PostgreSQL still applies it
// atomically and in order, but a crash of the server may lose the claims
// of its last moments (up to 3 × wal_writer_delay); what that costs is
// written in package edge (idempotency.go).
func (s *Store) ClaimIdempotencyKey(ctx context.Context, userID, key, fingerprint string) (string, error) {
	now := time.Now()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`INSERT INTO idempotency (user_id, key, fingerprint, status, created_at) VALUES ($1, $2, $3, 0, $4)
		ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = 0, location = '', body = NULL, created_at = excluded.created_at
		WHERE idempotency.created_at < $5
		RETURNING ''`, userID, key, fingerprint, now.UnixMicro(), now.Add(-persistence.IdemTTL).UnixMicro())
	b.Queue(`SELECT fingerprint FROM idempotency WHERE user_id = $1 AND key = $2`, userID, key)
	b.Queue(`COMMIT`)
	br := s.pool.SendBatch(ctx, b)
	defer func() { _ = br.Close() }()
	if _, err := br.Exec(); err != nil {
		return "", fmt.Errorf("postgres: claim idempotency key: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return "", fmt.Errorf("postgres: claim idempotency key: %w", err)
	}
	var none string
	inserted := true
	if err := br.QueryRow().Scan(&none); errors.Is(err, pgx.ErrNoRows) {
		inserted = false
	} else if err != nil {
		return "", fmt.Errorf("postgres: claim idempotency key: %w", err)
	}
	var held string
	if err := br.QueryRow().Scan(&held); err != nil {
		return "", fmt.Errorf("postgres: claim idempotency key: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return "", fmt.Errorf("postgres: claim idempotency key: commit: %w", err)
	}
	if inserted {
		return "", nil
	}
	return held, nil
}
