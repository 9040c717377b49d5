-- Ledger schema, version 1. Amounts are integer cents; times are Unix
-- nanoseconds (UTC). The CHECK constraints repeat the engine's rules so that
-- a bug cannot commit a negative wallet; Check() verifies the rest.

CREATE TABLE accounts (
	id          TEXT PRIMARY KEY,
	constrained INTEGER NOT NULL CHECK (constrained IN (0, 1)),
	balance     INTEGER NOT NULL DEFAULT 0, -- sum of this account's postings
	held        INTEGER NOT NULL DEFAULT 0, -- sum of its active holds
	CHECK (typeof(balance) = 'integer' AND typeof(held) = 'integer'), -- SQLite turns an overflowing sum into a REAL
	CHECK (held >= 0),
	CHECK (constrained = 0 OR (balance >= 0 AND held <= balance))
) WITHOUT ROWID;

CREATE TABLE transfers (
	id   INTEGER PRIMARY KEY,  -- ledger ID; rows are never deleted, so it only grows
	key  TEXT NOT NULL UNIQUE, -- idempotency key
	kind TEXT NOT NULL,
	memo TEXT NOT NULL,
	at   INTEGER NOT NULL,     -- business time
	hash BLOB NOT NULL         -- ledger.Transfer.ContentHash, for ErrKeyConflict
);

CREATE TABLE postings (
	transfer_id INTEGER NOT NULL REFERENCES transfers (id),
	leg         INTEGER NOT NULL, -- position in Transfer.Postings
	account     TEXT NOT NULL REFERENCES accounts (id),
	amount      INTEGER NOT NULL CHECK (amount <> 0),
	PRIMARY KEY (transfer_id, leg)
) WITHOUT ROWID;

CREATE INDEX postings_by_account ON postings (account, transfer_id);

CREATE TABLE holds (
	id          INTEGER PRIMARY KEY,
	key         TEXT NOT NULL UNIQUE,
	account     TEXT NOT NULL REFERENCES accounts (id),
	amount      INTEGER NOT NULL CHECK (amount > 0),
	state       INTEGER NOT NULL CHECK (state IN (1, 2, 3, 4)), -- ledger.HoldState
	captured    INTEGER NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
	expires     INTEGER NOT NULL,
	memo        TEXT NOT NULL,
	at          INTEGER NOT NULL,
	closed_at   INTEGER,                           -- capture, void or expiry time
	transfer_id INTEGER REFERENCES transfers (id)  -- the capture's transfer, if any
);

CREATE INDEX holds_active_by_expiry ON holds (expires) WHERE state = 1;
