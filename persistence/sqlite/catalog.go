package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bookd/bookd/persistence"
)

// The catalog stores times with microsecond precision, in UTC; a zero
// CreatedAt is replaced by the time of the create. HoldTTL is stored in whole
// milliseconds (rounded down). Listing attributes are a JSON object; an empty
// map reads back as nil.
//
// Creates validate what they store and return a plain error (neither
// ErrExists nor ErrNotFound) for an empty id, an unknown kind or slot unit, a
// slot length that does not divide a day, a capacity below 1 or a negative
// hold TTL.

// CreateProvider stores p. It returns an error matching persistence.ErrExists
// when p.ID is taken.
func (s *Store) CreateProvider(ctx context.Context, p persistence.Provider) error {
	if p.ID == "" {
		return errors.New("sqlite: create provider: empty id")
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO providers (id, name, owner_id, created_at) VALUES (?, ?, ?, ?)`,
		p.ID, p.Name, p.OwnerID, createdAt(p.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("sqlite: create provider %q: %w", p.ID, persistence.ErrExists)
	case err != nil:
		return fmt.Errorf("sqlite: create provider %q: %w", p.ID, err)
	}
	return nil
}

// GetProvider returns the provider id, or an error matching
// persistence.ErrNotFound.
func (s *Store) GetProvider(ctx context.Context, id string) (persistence.Provider, error) {
	var (
		p  persistence.Provider
		at int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT id, name, owner_id, created_at FROM providers WHERE id = ?`, id).Scan(&p.ID, &p.Name, &p.OwnerID, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return persistence.Provider{}, fmt.Errorf("sqlite: provider %q: %w", id, persistence.ErrNotFound)
	case err != nil:
		return persistence.Provider{}, fmt.Errorf("sqlite: provider %q: %w", id, err)
	}
	p.CreatedAt = fromMicros(at)
	return p, nil
}

// CreateListing stores l. It returns an error matching persistence.ErrNotFound
// when l.ProviderID does not exist (checked first) and one matching
// persistence.ErrExists when l.ID is taken.
func (s *Store) CreateListing(ctx context.Context, l persistence.Listing) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("sqlite: create listing %q: %w", l.ID, err)
	}
	attrs, err := encodeAttributes(l.Attributes)
	if err != nil {
		return fmt.Errorf("sqlite: create listing %q: %w", l.ID, err)
	}
	return s.create(ctx, "listing", l.ID, "provider", l.ProviderID,
		`SELECT COUNT(*) FROM providers WHERE id = ?`,
		`INSERT INTO listings (id, provider_id, kind, name, city, time_zone, attributes, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.ProviderID, string(l.Kind), l.Name, l.City, l.TimeZone, attrs, createdAt(l.CreatedAt))
}

// GetListing returns the listing id, or an error matching
// persistence.ErrNotFound.
func (s *Store) GetListing(ctx context.Context, id string) (persistence.Listing, error) {
	l, err := scanListing(s.r.QueryRowContext(ctx, `SELECT `+listingColumns+` FROM listings WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return persistence.Listing{}, fmt.Errorf("sqlite: listing %q: %w", id, persistence.ErrNotFound)
	case err != nil:
		return persistence.Listing{}, fmt.Errorf("sqlite: listing %q: %w", id, err)
	}
	return l, nil
}

// UpdateListing replaces l's name, city, time zone and attributes when its
// version is ifVersion.
func (s *Store) UpdateListing(ctx context.Context, l persistence.Listing, ifVersion int64) error {
	attrs, err := encodeAttributes(l.Attributes)
	if err != nil {
		return fmt.Errorf("sqlite: update listing %q: %w", l.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE listings SET name = ?, city = ?, time_zone = ?, attributes = ?, version = version + 1
		WHERE id = ? AND version = ?`, l.Name, l.City, l.TimeZone, attrs, l.ID, ifVersion)
	if err != nil {
		return fmt.Errorf("sqlite: update listing %q: %w", l.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.GetListing(ctx, l.ID); err != nil {
		return fmt.Errorf("sqlite: update listing: %w", err)
	}
	return fmt.Errorf("sqlite: update listing %q: %w", l.ID, persistence.ErrPrecondition)
}

// ListListings returns up to q.Limit listings with id > q.After (byte order)
// and, when set, exactly q.City and q.Kind, by id; more is true when further
// listings match. It is keyset pagination: a page never repeats or skips a
// listing that existed before the walk began. q.Limit below 1 is an error.
func (s *Store) ListListings(ctx context.Context, q persistence.ListQuery) ([]persistence.Listing, bool, error) {
	if q.Limit < 1 {
		return nil, false, fmt.Errorf("sqlite: list listings: Limit is %d, want at least 1", q.Limit)
	}
	where := []string{"id > ?"}
	args := []any{q.After}
	if q.City != "" {
		where = append(where, "city = ?")
		args = append(args, q.City)
	}
	if q.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, string(q.Kind))
	}
	limit := int64(q.Limit)
	if limit < math.MaxInt64 {
		limit++ // one more tells whether there are more
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+listingColumns+` FROM listings WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: list listings: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var page []persistence.Listing
	for rows.Next() {
		l, err := scanListing(rows)
		if err != nil {
			return nil, false, fmt.Errorf("sqlite: list listings: %w", err)
		}
		page = append(page, l)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("sqlite: list listings: %w", err)
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
		return fmt.Errorf("sqlite: create resource %q: %w", r.ID, err)
	}
	return s.create(ctx, "resource", r.ID, "listing", r.ListingID,
		`SELECT COUNT(*) FROM listings WHERE id = ?`,
		`INSERT INTO resources (id, listing_id, name, unit, slot_minutes, capacity, hold_ttl_ms, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ListingID, r.Name, string(r.Unit), r.SlotMinutes, r.Capacity, r.HoldTTL.Milliseconds(), createdAt(r.CreatedAt))
}

// GetResource returns the resource id, or an error matching
// persistence.ErrNotFound.
func (s *Store) GetResource(ctx context.Context, id string) (persistence.Resource, error) {
	r, err := scanResource(s.r.QueryRowContext(ctx, `SELECT `+resourceColumns+` FROM resources WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return persistence.Resource{}, fmt.Errorf("sqlite: resource %q: %w", id, persistence.ErrNotFound)
	case err != nil:
		return persistence.Resource{}, fmt.Errorf("sqlite: resource %q: %w", id, err)
	}
	return r, nil
}

// ListResources returns the resources of the listing, by id. A listing with
// no resources, or no listing by that id, gives an empty result and no error.
func (s *Store) ListResources(ctx context.Context, listingID string) ([]persistence.Resource, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+resourceColumns+` FROM resources WHERE listing_id = ? ORDER BY id`, listingID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resources of listing %q: %w", listingID, err)
	}
	defer func() { _ = rows.Close() }()
	var rs []persistence.Resource
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: resources of listing %q: %w", listingID, err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: resources of listing %q: %w", listingID, err)
	}
	return rs, nil
}

// IsEmpty reports whether there is no provider.
func (s *Store) IsEmpty(ctx context.Context) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM providers LIMIT 1)`).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: is empty: %w", err)
	}
	return n == 0, nil
}

// create inserts a row that refers to a parent, in one write transaction:
// it returns ErrNotFound when parentQuery counts no parent, ErrExists when
// the insert hits the primary key.
func (s *Store) create(ctx context.Context, what, id, parentWhat, parentID, parentQuery, insert string, args ...any) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create %s %q: %w", what, id, err)
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, parentQuery, parentID).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: create %s %q: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: create %s %q: %s %q: %w", what, id, parentWhat, parentID, persistence.ErrNotFound)
	}
	_, err = tx.ExecContext(ctx, insert, args...)
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("sqlite: create %s %q: %w", what, id, persistence.ErrExists)
	case isForeignKeyViolation(err):
		return fmt.Errorf("sqlite: create %s %q: %s %q: %w", what, id, parentWhat, parentID, persistence.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: create %s %q: %w", what, id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create %s %q: commit: %w", what, id, err)
	}
	return nil
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

const listingColumns = `id, provider_id, kind, name, city, time_zone, attributes, created_at, version`

func scanListing(sc scanner) (persistence.Listing, error) {
	var (
		l     persistence.Listing
		kind  string
		attrs string
		at    int64
	)
	if err := sc.Scan(&l.ID, &l.ProviderID, &kind, &l.Name, &l.City, &l.TimeZone, &attrs, &at, &l.Version); err != nil {
		return persistence.Listing{}, err
	}
	l.Kind = persistence.ListingKind(kind)
	l.CreatedAt = fromMicros(at)
	if err := json.Unmarshal([]byte(attrs), &l.Attributes); err != nil {
		return persistence.Listing{}, fmt.Errorf("listing %q: attributes: %w", l.ID, err)
	}
	if len(l.Attributes) == 0 {
		l.Attributes = nil
	}
	return l, nil
}

const resourceColumns = `id, listing_id, name, unit, slot_minutes, capacity, hold_ttl_ms, created_at`

func scanResource(sc scanner) (persistence.Resource, error) {
	var (
		r      persistence.Resource
		unit   string
		ttl    int64
		atUsec int64
	)
	if err := sc.Scan(&r.ID, &r.ListingID, &r.Name, &unit, &r.SlotMinutes, &r.Capacity, &ttl, &atUsec); err != nil {
		return persistence.Resource{}, err
	}
	r.Unit = persistence.SlotUnit(unit)
	r.HoldTTL = time.Duration(ttl) * time.Millisecond
	r.CreatedAt = fromMicros(atUsec)
	return r, nil
}

// encodeAttributes is the JSON object stored for attrs ("{}" for none).
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
func createdAt(t time.Time) int64 {
	if t.IsZero() {
		t = now()
	}
	return toMicros(t)
}
