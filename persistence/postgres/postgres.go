// Package postgres is the production persistence.Store: PostgreSQL through a
// pgx connection pool (github.com/jackc/pgx/v5/pgxpool).
//
// Append is a single SQL statement, so it is one transaction and one round
// trip (after the pool's connection has prepared it once): it reads the
// stream's last seq, inserts the events only when that is the expected seq,
// and saves the snapshot and the wake time only when the events went in. A
// group commit therefore costs one commit's latency whatever the batch
// holds, and one row: the journal keeps a batch per row (first_seq …
// last_seq), since a row per event made PostgreSQL insert, index and log
// every event of a hot resource's batches on its own. The fence does not
// depend on the isolation level: rows are contiguous, so two writers that
// both saw the same last seq both insert a row at the next one, and the
// primary key on (stream, first_seq) makes the second wait for the first
// and fail with a unique violation, which Append reports as a
// *persistence.ConflictError.
//
// Several Stores, on one node or many, may share one database. The schema is
// a list of numbered migrations embedded in the binary
// (migrations/NNNN_name.sql), applied in order by Open, each in its own
// transaction under an advisory lock, and recorded in the table
// schema_migrations.
//
// Times are stored as TIMESTAMPTZ (microseconds) and come back in UTC. Text
// (ids, stream names, names) must be valid UTF-8 without NUL bytes, which
// PostgreSQL cannot store; such a value makes the call fail with a plain
// error.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bookd/bookd/persistence"
	"github.com/bookd/bookd/persistence/sqlaccounts"
)

var _ persistence.Store = (*Store)(nil)

// Options tune a Store. The zero value of a field means its default.
type Options struct {
	// MaxConns is the most connections the pool opens to the server. Every
	// call of the Store holds one for its round trips, so it bounds how
	// many appends of different streams commit at once. Default: the URL's
	// pool_max_conns when it has one, else max(16, 4 × GOMAXPROCS).
	MaxConns int32
}

// DefaultOptions returns the options Open uses for zero fields (when the
// URL does not set pool_max_conns).
func DefaultOptions() Options {
	return Options{MaxConns: int32(max(16, 4*runtime.GOMAXPROCS(0)))}
}

// Validate reports the first field that has no meaning.
func (o Options) Validate() error {
	if o.MaxConns < 0 {
		return fmt.Errorf("postgres: Options.MaxConns is %d, want >= 0", o.MaxConns)
	}
	return nil
}

// Store is a persistence.Store over one PostgreSQL database. It is safe for
// concurrent use. Close it when done.
type Store struct {
	pool *pgxpool.Pool
	// Accounts is the accounts part of the contract, through database/sql
	// over the same pool.
	*sqlaccounts.Accounts
	db *sql.DB

	closeOnce sync.Once
}

// Open connects to the database at url (a postgres:// URL or a libpq
// keyword/value string, with pgxpool's pool_* settings if wanted) and
// applies the migrations it has not applied yet. ctx bounds the first
// connection and the migrations only.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors do not repeat the password.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = DefaultOptions().MaxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "bookd"
	}
	// Plan every statement with the tables as they are now. In pgx's
	// default mode a pooled connection prepares its statements, and after
	// five runs PostgreSQL may keep a generic plan made when the tables were
	// small, such as a sequential scan of the journal behind Append's read
	// of the last seq:
	// on a new database every append then read the whole journal until the
	// connection was recycled (an hour). Planning costs tens of
	// microseconds a statement, paid once per batch. It is set after
	// connecting, not as a startup parameter (which PgBouncer refuses), and
	// only where statements are prepared and the server's, role's or
	// URL's setting is the default "auto".
	customPlans := cfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; ok {
		customPlans = false
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		// TIMESTAMPTZ values come back in UTC, not in time.Local.
		conn.TypeMap().RegisterType(&pgtype.Type{
			Name: "timestamptz", OID: pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
		})
		if customPlans {
			// current_setting(…, true) is NULL before PostgreSQL 12, which has
			// no plan cache mode.
			_, err := conn.Exec(ctx, `SELECT set_config('plan_cache_mode', 'force_custom_plan', false) WHERE current_setting('plan_cache_mode', true) = 'auto'`)
			return err
		}
		return nil
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	s := &Store{pool: pool, db: stdlib.OpenDBFromPool(pool)}
	s.Accounts = &sqlaccounts.Accounts{Name: "postgres", W: s.db, R: s.db, Dollar: true,
		IsUnique: func(err error) bool { return errCode(err) == codeUniqueViolation }}
	if err := migrate(ctx, pool, migrationFiles); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	return s, nil
}

// Ping runs a query on a pooled connection.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool's connections; it waits for the calls in progress
// to give theirs back. Calls after Close fail; Close itself may be called
// again and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		_ = s.db.Close()
		s.pool.Close()
	})
	return nil
}

// The SQLSTATE codes the Store tells apart.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeFeatureNotSupported  = "0A000"
)

// errCode returns the SQLSTATE of err, "" when err does not come from the
// server.
func errCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// now is the time the store stamps on what it creates.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
