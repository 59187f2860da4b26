-- 0002_wakes: durable timers. A resource with open holds keeps the time its
-- first hold expires here, written in the same transaction as the events that
-- changed it; each node's sweeper wakes the resources whose time has come, so
-- a hold expires on time even when nobody touches its resource and after a
-- restart.
CREATE TABLE wakes (
    stream TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    at     TIMESTAMPTZ      NOT NULL
);
CREATE INDEX wakes_at ON wakes (at, stream);
