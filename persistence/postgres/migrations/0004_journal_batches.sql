-- 0004_journal_batches: the journal keeps a batch of events per row, not an
-- event per row. A hot resource's group commit writes a batch of tens to
-- hundreds of events at a time; one row per event made PostgreSQL insert,
-- index and log each of them, which was most of its work in a sale. A row
-- holds the events first_seq … last_seq of its stream, in order.
--
-- The fence is the primary key on (stream, first_seq) with the append's
-- check that the stream's last seq is the expected one: rows are
-- contiguous, so two writers that both saw the same last seq both insert
-- first_seq = that seq + 1, and one of them gets the unique violation (as
-- they met on (stream, seq) before).
-- Nodes of an older version append to events: the lock makes them wait for
-- this step and then fail (the table is gone), so that no event they commit
-- can slip in after the copy and be dropped. Stop them before upgrading.
LOCK TABLE events IN ACCESS EXCLUSIVE MODE;

CREATE TABLE journal (
    stream    TEXT COLLATE "C" NOT NULL,
    first_seq BIGINT           NOT NULL CHECK (first_seq >= 1),
    last_seq  BIGINT           NOT NULL,
    events    BYTEA[]          NOT NULL,
    at        TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (stream, first_seq),
    -- events is a list: not empty, one dimension from 1, no NULL, as long
    -- as the seqs.
    CHECK (CASE WHEN cardinality(events) >= 1 AND array_ndims(events) = 1 AND array_lower(events, 1) = 1
                THEN array_position(events, NULL) IS NULL AND last_seq = first_seq + cardinality(events) - 1
                ELSE false END)
);

-- The events of earlier versions, one row each; consecutive events of a
-- stream with the same time were one batch.
INSERT INTO journal (stream, first_seq, last_seq, events, at)
SELECT stream, min(seq), max(seq), array_agg(data ORDER BY seq), at
FROM (
    SELECT stream, seq, data, at,
           seq - row_number() OVER (PARTITION BY stream, at ORDER BY seq) AS run
    FROM events
) e
GROUP BY stream, at, run;

DROP TABLE events;
ANALYZE journal;
