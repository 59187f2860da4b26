package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bookd/bookd/persistence"
)

// The catalog stores times with microsecond precision and returns them in
// UTC; a zero CreatedAt is replaced by the time of the create. HoldTTL is
// stored in whole milliseconds (rounded down). Listing attributes are a
// JSONB object; an empty map reads back as nil. Ids compare byte by byte
// (COLLATE "C"), so ListListings pages in the same order as the SQLite
// store.
//
// Creates validate what they store and return a plain error (neither
// ErrExists nor ErrNotFound) for an empty id, an unknown kind or slot unit, a
// slot length that does not divide a day, a capacity below 1 or a negative
// hold TTL.

// CreateProvider stores p. It returns an error matching persistence.ErrExists
// when p.ID is taken.
func (s *Store) CreateProvider(ctx context.Context, p persistence.Provider) error {
	if p.ID == "" {
		return errors.New("postgres: create provider: empty id")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO providers (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)`,
		p.ID, p.Name, p.OwnerID, createdAt(p.CreatedAt))
	switch {
	case errCode(err) == codeUniqueViolation:
		return fmt.Errorf("postgres: create provider %q: %w", p.ID, persistence.ErrExists)
	case err != nil:
		return fmt.Errorf("postgres: create provider %q: %w", p.ID, err)
	}
	return nil
}

// GetProvider returns the provider id, or an error matching
// persistence.ErrNotFound.
func (s *Store) GetProvider(ctx context.Context, id string) (persistence.Provider, error) {
	var p persistence.Provider
	err := s.pool.QueryRow(ctx, `SELECT id, name, owner_id, created_at FROM providers WHERE id = $1`, id).Scan(&p.ID, &p.Name, &p.OwnerID, &p.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return persistence.Provider{}, fmt.Errorf("postgres: provider %q: %w", id, persistence.ErrNotFound)
	case err != nil:
		return persistence.Provider{}, fmt.Errorf("postgres: provider %q: %w", id, err)
	}
	return p, nil
}

// CreateListing stores l. It returns an error matching persistence.ErrNotFound
// when l.ProviderID does not exist (checked first) and one matching
// persistence.ErrExists when l.ID is taken.
func (s *Store) CreateListing(ctx context.Context, l persistence.Listing) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("postgres: create listing %q: %w", l.ID, err)
	}
	attrs, err := encodeAttributes(l.Attributes)
	if err != nil {
		return fmt.Errorf("postgres: create listing %q: %w", l.ID, err)
	}
	return s.create(ctx, "listing", l.ID, "provider", l.ProviderID,
		`INSERT INTO listings (id, provider_id, kind, name, city, time_zone, attributes, created_at)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::jsonb, $8::timestamptz
		WHERE EXISTS (SELECT 1 FROM providers WHERE id = $2::text)`,
		l.ID, l.ProviderID, string(l.Kind), l.Name, l.City, l.TimeZone, attrs, createdAt(l.CreatedAt))
}

// GetListing returns the listing id, or an error matching
// persistence.ErrNotFound.
func (s *Store) GetListing(ctx context.Context, id string) (persistence.Listing, error) {
	l, err := scanListing(s.pool.QueryRow(ctx, `SELECT `+listingColumns+` FROM listings WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return persistence.Listing{}, fmt.Errorf("postgres: listing %q: %w", id, persistence.ErrNotFound)
	case err != nil:
		return persistence.Listing{}, fmt.Errorf("postgres: listing %q: %w", id, err)
	}
	return l, nil
}

// UpdateListing replaces l's name, city, time zone and attributes when its
// version is ifVersion.
func (s *Store) UpdateListing(ctx context.Context, l persistence.Listing, ifVersion int64) error {
	attrs, err := encodeAttributes(l.Attributes)
	if err != nil {
		return fmt.Errorf("postgres: update listing %q: %w", l.ID, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE listings SET name = $1, city = $2, time_zone = $3, attributes = $4::jsonb, version = version + 1
		WHERE id = $5 AND version = $6`, l.Name, l.City, l.TimeZone, attrs, l.ID, ifVersion)
	if err != nil {
		return fmt.Errorf("postgres: update listing %q: %w", l.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.GetListing(ctx, l.ID); err != nil {
		return fmt.Errorf("postgres: update listing: %w", err)
	}
	return fmt.Errorf("postgres: update listing %q: %w", l.ID, persistence.ErrPrecondition)
}

// ListListings returns up to q.Limit listings with id > q.After (byte order)
// and, when set, exactly q.City and q.Kind, by id; more is true when further
// listings match. It is keyset pagination: a page never repeats or skips a
// listing that existed before the walk began. q.Limit below 1 is an error.
func (s *Store) ListListings(ctx context.Context, q persistence.ListQuery) ([]persistence.Listing, bool, error) {
	if q.Limit < 1 {
		return nil, false, fmt.Errorf("postgres: list listings: Limit is %d, want at least 1", q.Limit)
	}
	where := []string{"id > $1"}
	args := []any{q.After}
	if q.City != "" {
		args = append(args, q.City)
		where = append(where, "city = $"+strconv.Itoa(len(args)))
	}
	if q.Kind != "" {
		args = append(args, string(q.Kind))
		where = append(where, "kind = $"+strconv.Itoa(len(args)))
	}
	limit := int64(q.Limit)
	if limit < math.MaxInt64 {
		limit++ // one more tells whether there are more
	}
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `SELECT `+listingColumns+` FROM listings WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: list listings: %w", err)
	}
	page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.Listing, error) { return scanListing(row) })
	if err != nil {
		return nil, false, fmt.Errorf("postgres: list listings: %w", err)
	}
	if len(page) > q.Limit {
		return page[:q.Limit], true, nil
	}
	return page, false, nil
}

// CreateResource stores r. It returns an error matching
// persistence.ErrNotFound when r.ListingID does not exist (checked first) and
// one matching persistence.ErrExists when r.ID is taken.
func (s *Store) CreateResource(ctx context.Context, r persistence.Resource) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("postgres: create resource %q: %w", r.ID, err)
	}
	return s.create(ctx, "resource", r.ID, "listing", r.ListingID,
		`INSERT INTO resources (id, listing_id, name, unit, slot_minutes, capacity, hold_ttl_ms, created_at)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::integer, $6::integer, $7::bigint, $8::timestamptz
		WHERE EXISTS (SELECT 1 FROM listings WHERE id = $2::text)`,
		r.ID, r.ListingID, r.Name, string(r.Unit), r.SlotMinutes, r.Capacity, r.HoldTTL.Milliseconds(), createdAt(r.CreatedAt))
}

// GetResource returns the resource id, or an error matching
// persistence.ErrNotFound.
func (s *Store) GetResource(ctx context.Context, id string) (persistence.Resource, error) {
	r, err := scanResource(s.pool.QueryRow(ctx, `SELECT `+resourceColumns+` FROM resources WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return persistence.Resource{}, fmt.Errorf("postgres: resource %q: %w", id, persistence.ErrNotFound)
	case err != nil:
		return persistence.Resource{}, fmt.Errorf("postgres: resource %q: %w", id, err)
	}
	return r, nil
}

// ListResources returns the resources of the listing, by id. A listing with
// no resources, or no listing by that id, gives an empty result and no error.
func (s *Store) ListResources(ctx context.Context, listingID string) ([]persistence.Resource, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+resourceColumns+` FROM resources WHERE listing_id = $1 ORDER BY id`, listingID)
	if err != nil {
		return nil, fmt.Errorf("postgres: resources of listing %q: %w", listingID, err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.Resource, error) { return scanResource(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: resources of listing %q: %w", listingID, err)
	}
	return rs, nil
}

// IsEmpty reports whether there is no provider.
func (s *Store) IsEmpty(ctx context.Context) (bool, error) {
	var empty bool
	if err := s.pool.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM providers)`).Scan(&empty); err != nil {
		return false, fmt.Errorf("postgres: is empty: %w", err)
	}
	return empty, nil
}

// create runs insert, an INSERT … SELECT … WHERE EXISTS (its parent), as
// one statement: no row inserted means the parent does not exist
// (ErrNotFound, whether or not the id is taken, as in the SQLite store); a
// unique violation means the id is taken (ErrExists).
func (s *Store) create(ctx context.Context, what, id, parentWhat, parentID, insert string, args ...any) error {
	tag, err := s.pool.Exec(ctx, insert, args...)
	switch {
	case errCode(err) == codeUniqueViolation:
		return fmt.Errorf("postgres: create %s %q: %w", what, id, persistence.ErrExists)
	case errCode(err) == codeForeignKeyViolation:
		return fmt.Errorf("postgres: create %s %q: %s %q: %w", what, id, parentWhat, parentID, persistence.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: create %s %q: %w", what, id, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("postgres: create %s %q: %s %q: %w", what, id, parentWhat, parentID, persistence.ErrNotFound)
	}
	return nil
}

const listingColumns = `id, provider_id, kind, name, city, time_zone, attributes, created_at, version`

func scanListing(row pgx.Row) (persistence.Listing, error) {
	var (
		l     persistence.Listing
		kind  string
		attrs []byte
	)
	if err := row.Scan(&l.ID, &l.ProviderID, &kind, &l.Name, &l.City, &l.TimeZone, &attrs, &l.CreatedAt, &l.Version); err != nil {
		return persistence.Listing{}, err
	}
	l.Kind = persistence.ListingKind(kind)
	if err := json.Unmarshal(attrs, &l.Attributes); err != nil {
		return persistence.Listing{}, fmt.Errorf("listing %q: attributes: %w", l.ID, err)
	}
	if len(l.Attributes) == 0 {
		l.Attributes = nil
	}
	return l, nil
}

const resourceColumns = `id, listing_id, name, unit, slot_minutes, capacity, hold_ttl_ms, created_at`

func scanResource(row pgx.Row) (persistence.Resource, error) {
	var (
		r    persistence.Resource
		unit string
		ttl  int64
	)
	if err := row.Scan(&r.ID, &r.ListingID, &r.Name, &unit, &r.SlotMinutes, &r.Capacity, &ttl, &r.CreatedAt); err != nil {
		return persistence.Resource{}, err
	}
	r.Unit = persistence.SlotUnit(unit)
	r.HoldTTL = time.Duration(ttl) * time.Millisecond
	return r, nil
}

// encodeAttributes is the JSON object stored for attrs ("{}" for none). It
// is a string, which pgx sends as JSON text in every query execution mode
// (a []byte would go as bytea where pgx does not ask the server for the
// parameter types).
func encodeAttributes(attrs map[string]string) (string, error) {
	if len(attrs) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return "", fmt.Errorf("attributes: %w", err)
	}
	return string(b), nil
}

// createdAt is what a create stores for t.
func createdAt(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC()
}
