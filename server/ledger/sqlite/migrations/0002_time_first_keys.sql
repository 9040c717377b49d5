-- Ledger schema, version 2: transfer keys found through an index that
-- starts with the key's last 26 characters. A payment's key ends with its
-- transaction ID, a ULID whose first ten characters are the time
-- ("pay:T:<terminal>:<ULID>"), so a commit's new keys land at the right
-- edge of the index instead of into one leaf page per terminal (about a
-- WAL page fewer for every payment; docs/money-path.md item 7). The index is
-- unique on (tail, key): two equal keys have equal tails, so keys stay
-- unique exactly as before. Lookups name both columns as a row value,
-- (substr(key, -26), key) = (substr(?1, -26), ?1): with "key = ?" beside
-- the tail SQLite would fold the tail into a constant and scan the table.
--
-- SQLite cannot drop a column's UNIQUE in place: the table is rebuilt
-- (its rows copied, IDs kept). The migration runs with foreign keys off
-- and checked before it commits (postings and holds refer to transfers).

CREATE TABLE transfers_new (
	id   INTEGER PRIMARY KEY,  -- ledger ID; rows are never deleted, so it only grows
	key  TEXT NOT NULL,        -- idempotency key, unique through transfers_key
	kind TEXT NOT NULL,
	memo TEXT NOT NULL,
	at   INTEGER NOT NULL,     -- business time
	hash BLOB NOT NULL         -- ledger.Transfer.ContentHash, for ErrKeyConflict
);

INSERT INTO transfers_new (id, key, kind, memo, at, hash) SELECT id, key, kind, memo, at, hash FROM transfers;

DROP TABLE transfers;

ALTER TABLE transfers_new RENAME TO transfers;

CREATE UNIQUE INDEX transfers_key ON transfers (substr(key, -26), key);
