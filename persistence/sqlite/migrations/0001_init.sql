-- 0001_init: the journal and the catalog.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC. Sequence numbers
-- are INTEGER (SQLite's signed 64 bits); the Go side keeps them below 2^63.

-- events is the journal: one row per event, one stream per actor. The primary
-- key on (stream, seq) is the fence of last resort: two writers can never both
-- store the same seq of a stream. WITHOUT ROWID keeps a stream's events
-- together on disk, in seq order, which is how Load reads them.
CREATE TABLE events (
    stream TEXT    NOT NULL,
    seq    INTEGER NOT NULL CHECK (seq >= 1),
    data   BLOB    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;

-- snapshots keeps the newest snapshot of each stream only.
CREATE TABLE snapshots (
    stream TEXT    NOT NULL PRIMARY KEY,
    seq    INTEGER NOT NULL CHECK (seq >= 1),
    data   BLOB    NOT NULL,
    at     INTEGER NOT NULL
);

CREATE TABLE providers (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- listings.attributes is a JSON object of strings.
CREATE TABLE listings (
    id          TEXT    NOT NULL PRIMARY KEY,
    provider_id TEXT    NOT NULL REFERENCES providers (id),
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    city        TEXT    NOT NULL,
    time_zone   TEXT    NOT NULL,
    attributes  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    created_at  INTEGER NOT NULL
);

CREATE INDEX listings_provider ON listings (provider_id, id);
CREATE INDEX listings_city ON listings (city, id);
CREATE INDEX listings_kind ON listings (kind, id);

-- resources.hold_ttl_ms is the hold lifetime in milliseconds.
CREATE TABLE resources (
    id           TEXT    NOT NULL PRIMARY KEY,
    listing_id   TEXT    NOT NULL REFERENCES listings (id),
    name         TEXT    NOT NULL,
    unit         TEXT    NOT NULL,
    slot_minutes INTEGER NOT NULL CHECK (slot_minutes >= 0),
    capacity     INTEGER NOT NULL CHECK (capacity >= 1),
    hold_ttl_ms  INTEGER NOT NULL CHECK (hold_ttl_ms >= 0),
    created_at   INTEGER NOT NULL
);

CREATE INDEX resources_listing ON resources (listing_id, id);
