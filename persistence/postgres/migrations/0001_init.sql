-- 0001_init: the journal and the catalog.
--
-- Identifiers (stream names, ids, cities, kinds) are TEXT COLLATE "C": they
-- compare and sort byte by byte, as in the SQLite store, whatever the
-- database's locale, so that pages of ListListings and the id order agree
-- between the stores. Times are TIMESTAMPTZ (microseconds). Sequence
-- numbers are BIGINT; the Go side keeps them below 2^63.

-- events is the journal: one row per event, one stream per actor. The primary
-- key on (stream, seq) is the fence of last resort: two writers can never both
-- store the same seq of a stream; the loser of a race gets a unique violation,
-- which Append reports as a conflict.
CREATE TABLE events (
    stream TEXT COLLATE "C" NOT NULL,
    seq    BIGINT           NOT NULL CHECK (seq >= 1),
    data   BYTEA            NOT NULL,
    at     TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (stream, seq)
);

-- snapshots keeps the newest snapshot of each stream only.
CREATE TABLE snapshots (
    stream TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    seq    BIGINT           NOT NULL CHECK (seq >= 1),
    data   BYTEA            NOT NULL,
    at     TIMESTAMPTZ      NOT NULL
);

CREATE TABLE providers (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name       TEXT             NOT NULL,
    created_at TIMESTAMPTZ      NOT NULL
);

-- listings.attributes is a JSON object of strings.
CREATE TABLE listings (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    provider_id TEXT COLLATE "C" NOT NULL REFERENCES providers (id),
    kind        TEXT COLLATE "C" NOT NULL,
    name        TEXT             NOT NULL,
    city        TEXT COLLATE "C" NOT NULL,
    time_zone   TEXT             NOT NULL,
    attributes  JSONB            NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    created_at  TIMESTAMPTZ      NOT NULL
);

CREATE INDEX listings_provider ON listings (provider_id, id);
CREATE INDEX listings_city ON listings (city, id);
CREATE INDEX listings_kind ON listings (kind, id);

-- resources.hold_ttl_ms is the hold lifetime in milliseconds.
CREATE TABLE resources (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    listing_id   TEXT COLLATE "C" NOT NULL REFERENCES listings (id),
    name         TEXT             NOT NULL,
    unit         TEXT COLLATE "C" NOT NULL,
    slot_minutes INTEGER          NOT NULL CHECK (slot_minutes >= 0),
    capacity     INTEGER          NOT NULL CHECK (capacity >= 1),
    hold_ttl_ms  BIGINT           NOT NULL CHECK (hold_ttl_ms >= 0),
    created_at   TIMESTAMPTZ      NOT NULL
);

CREATE INDEX resources_listing ON resources (listing_id, id);
