-- 0005_journal_storage: keep a batch row in its page, compressed with lz4.
-- A hot resource's batch of tens to hundreds of events is 5–30 kB, over
-- the 2 kB at which PostgreSQL starts to TOAST a row: by default it
-- compressed the events with pglz and, when still too long, cut them into
-- chunks of a side table with an index of its own. With one writer
-- appending batches of 77 events in a loop, this form took the backend
-- about 365 µs of CPU per batch where the default took 500; in a sale
-- (make bench-flash, 256 clients) pglz alone was an eighth of the
-- server's CPU.
--
-- With lz4 (PostgreSQL 14 and later, when built with it, as Debian's and
-- most packages are) and storage MAIN, the events are compressed cheaply
-- and stay in the row whenever it then fits a page. toast_tuple_target
-- lets a row grow to a page (8160 bytes) before any of this starts, so a
-- small batch is neither compressed nor moved. Without lz4 the events are
-- never compressed (EXTERNAL): pglz costs more than the space it saves.
-- Snapshots, a resource's whole state and often larger than a page, are
-- compressed with lz4 too when the server has it. Existing rows keep
-- their form; only new rows are written this way.
DO $$
BEGIN
    -- EXECUTE, so that a server without the clause (before 14) raises
    -- the syntax error here, where it is caught.
    EXECUTE 'ALTER TABLE journal ALTER COLUMN events SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE snapshots ALTER COLUMN data SET COMPRESSION lz4';
    ALTER TABLE journal ALTER COLUMN events SET STORAGE MAIN;
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    ALTER TABLE journal ALTER COLUMN events SET STORAGE EXTERNAL;
END
$$;

-- toast_tuple_target needs PostgreSQL 11 or later.
ALTER TABLE journal SET (toast_tuple_target = 8160);
