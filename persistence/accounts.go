package persistence

import (
	"context"
	"errors"
	"time"
)

// Role is what a user may do.
type Role string

// The roles.
const (
	RoleCustomer Role = "customer" // books: its own holds only
	RoleProvider Role = "provider" // sells: its own providers, listings, resources
	RoleAdmin    Role = "admin"    // everything
)

// Valid reports whether r is one of the roles above.
func (r Role) Valid() bool { return r == RoleCustomer || r == RoleProvider || r == RoleAdmin }

// User is an account.
type User struct {
	ID    string
	Email string // unique, stored as given (the edge lowercases it)
	Name  string
	Role  Role
	// PasswordHash is a PHC string ($argon2id$…).
	PasswordHash string
	CreatedAt    time.Time
}

// SigningKey is one key that signs access tokens. Every node reads them all
// from the store, so a token signed on one node verifies on every node.
type SigningKey struct {
	ID        string // the JWT kid
	Algorithm string // "EdDSA"
	// Private and Public are the raw key bytes (Ed25519: 64 and 32 bytes).
	Private, Public []byte
	CreatedAt       time.Time
	// RetiredAt is when the key stopped signing (zero: it may sign). A
	// retired key still verifies until the tokens it signed expire.
	RetiredAt time.Time
}

// RefreshToken is a stored refresh token. Only a hash of the secret is kept.
type RefreshToken struct {
	Hash      string
	Family    string // every token rotated from one login shares it
	UserID    string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// APIKey is a provider's key for machine clients. Only a hash of its secret
// is kept.
type APIKey struct {
	ID        string
	OwnerID   string // the user the key acts as
	Name      string
	Hash      string
	Scopes    []string
	CreatedAt time.Time
	RevokedAt time.Time // zero: valid
}

// AuditEntry is one admin or provider change: who, what, when, from where.
type AuditEntry struct {
	Seq     int64 // set by the store, increasing
	At      time.Time
	ActorID string
	Role    Role
	Action  string // "create listing", …
	Target  string // the id changed
	Remote  string // the client address
}

// IdemRecord is what an Idempotency-Key of a user stands for: the request
// it was first used with (its fingerprint) and, once answered, the answer.
type IdemRecord struct {
	UserID, Key string
	Fingerprint string
	// Status is 0 while the first request is in flight.
	Status int
	// Location is the answer's Location header, if any.
	Location  string
	Body      []byte
	CreatedAt time.Time
}

// IdemTTL is how long an Idempotency-Key is kept.
const IdemTTL = 24 * time.Hour

var (
	// ErrTokenReused means a refresh token was used a second time; its
	// family is revoked.
	ErrTokenReused = errors.New("refresh token reused")
	// ErrPrecondition means a conditional update found another version.
	ErrPrecondition = errors.New("version mismatch")
)

// Accounts stores users, signing keys, refresh tokens, API keys, the audit
// log and idempotency keys.
type Accounts interface {
	// CreateUser returns ErrExists when the id or the email is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser and GetUserByEmail return ErrNotFound when there is none.
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)

	// AddSigningKey returns ErrExists when the kid is taken.
	AddSigningKey(ctx context.Context, k SigningKey) error
	// SigningKeys returns every key, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey sets the key's RetiredAt (ErrNotFound when there is
	// no such kid); a key retired already keeps its first time.
	RetireSigningKey(ctx context.Context, kid string, at time.Time) error

	// CreateRefreshToken stores t (ErrExists when the hash is taken).
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken spends the token whose hash is oldHash and stores
	// next in its family, atomically, and returns the spent token. A token
	// that is unknown, expired at now or revoked gives ErrNotFound; one
	// spent already gives ErrTokenReused and revokes its whole family.
	// next.Family and next.UserID are taken from the spent token.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, now time.Time) (RefreshToken, error)
	// RevokeRefreshFamily revokes every token of the family of the token
	// whose hash is hash (logout). An unknown hash is ErrNotFound.
	RevokeRefreshFamily(ctx context.Context, hash string) error

	// CreateAPIKey returns ErrExists when the id is taken.
	CreateAPIKey(ctx context.Context, k APIKey) error
	// GetAPIKey returns ErrNotFound when there is none (revoked ones too).
	GetAPIKey(ctx context.Context, id string) (APIKey, error)
	// ListAPIKeys returns the keys of an owner, revoked ones too, by id.
	ListAPIKeys(ctx context.Context, ownerID string) ([]APIKey, error)
	// RevokeAPIKey revokes the owner's key id; ErrNotFound when the owner
	// has no such key.
	RevokeAPIKey(ctx context.Context, ownerID, id string, at time.Time) error

	// AppendAudit adds an entry; the store sets its Seq.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit returns up to limit entries with Seq > after, by Seq; more
	// is true when there are further ones.
	ListAudit(ctx context.Context, after int64, limit int) (page []AuditEntry, more bool, err error)

	// BeginIdempotent claims (rec.UserID, rec.Key) for rec (Status 0) and
	// returns started true, or returns the record that holds the key and
	// started false. A record older than IdemTTL at rec.CreatedAt no
	// longer holds its key: it is replaced.
	BeginIdempotent(ctx context.Context, rec IdemRecord) (prev IdemRecord, started bool, err error)
	// FinishIdempotent stores the answer of the claim (userID, key).
	FinishIdempotent(ctx context.Context, userID, key string, status int, location string, body []byte) error
	// AbandonIdempotent removes the claim (userID, key): the request may be
	// made again (a 5xx answer is not kept).
	AbandonIdempotent(ctx context.Context, userID, key string) error
}
