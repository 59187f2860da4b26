-- 0003_accounts: accounts, tokens, API keys, the audit log, idempotency
-- keys; provider owners and listing versions.

ALTER TABLE providers ADD COLUMN owner_id TEXT NOT NULL DEFAULT '';
ALTER TABLE listings ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- signing_keys holds the raw key bytes: whoever reads the database can sign
-- tokens, as whoever reads it can change every booking.
CREATE TABLE signing_keys (
    kid        TEXT    NOT NULL PRIMARY KEY,
    algorithm  TEXT    NOT NULL,
    private    BLOB    NOT NULL,
    public     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER NOT NULL DEFAULT 0
);

-- refresh_tokens: hash is the SHA-256 of the secret. spent_at and
-- revoked_at are 0 until set.
CREATE TABLE refresh_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    family     TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    spent_at   INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    owner_id   TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    scopes     TEXT    NOT NULL CHECK (json_valid(scopes)),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_owner ON api_keys (owner_id, id);

CREATE TABLE audit_log (
    seq      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor_id TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    remote   TEXT    NOT NULL
);

-- idempotency: status 0 while the first request is in flight.
CREATE TABLE idempotency (
    user_id     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    location    TEXT    NOT NULL DEFAULT '',
    body        BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
