-- Terminal journal, version 1. Money is integer cents; times are unix
-- milliseconds (UTC). No secret (water or payment password, code text,
-- card UID) is ever stored here: only the credential's kind.

CREATE TABLE tx (
    id          TEXT PRIMARY KEY,          -- protocol.TxID, the idempotency key
    flow        INTEGER NOT NULL,          -- journal.Flow: 1 pay, 2 shower
    state       INTEGER NOT NULL,          -- journal.State
    amount      INTEGER NOT NULL DEFAULT 0, -- requested (pay) or captured (shower) cents
    cred_kind   TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT '',  -- last authorizer status
    code        TEXT NOT NULL DEFAULT '',  -- reason code of a refusal
    channel     TEXT NOT NULL DEFAULT '',
    hold        INTEGER NOT NULL DEFAULT 0,
    pulses0     INTEGER NOT NULL DEFAULT 0, -- flow meter counter when the valve opened
    pulses      INTEGER NOT NULL DEFAULT 0, -- pulses metered since then (last persisted)
    ml          INTEGER NOT NULL DEFAULT 0,
    cost        INTEGER NOT NULL DEFAULT 0,
    deadline    INTEGER NOT NULL DEFAULT 0, -- USERPAYING: reverse after this
    entry_seq   INTEGER NOT NULL DEFAULT 0, -- its journal entry once finished
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX tx_open ON tx(state);

-- Every state a transaction went through, in order (audit and tests).
CREATE TABLE tx_history (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    tx    TEXT NOT NULL,
    state INTEGER NOT NULL,
    at    INTEGER NOT NULL
);

-- The outbox: finished transactions numbered from 1 without gaps.
CREATE TABLE entry (
    seq       INTEGER PRIMARY KEY,
    tx        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    status    TEXT NOT NULL,
    code      TEXT NOT NULL DEFAULT '',
    amount    INTEGER NOT NULL,
    channel   TEXT NOT NULL DEFAULT '',
    cred_kind TEXT NOT NULL DEFAULT '',
    ml        INTEGER NOT NULL DEFAULT 0,
    at        INTEGER NOT NULL,
    acked     INTEGER NOT NULL DEFAULT 0, -- 1 acknowledged
    ack_ok    INTEGER NOT NULL DEFAULT 0,
    ack_code  TEXT NOT NULL DEFAULT '',
    UNIQUE (tx, kind)
);

-- Small durable values: conn_seq, notice_cursor, config (JSON).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Static-QR payments notified for this terminal, each recorded once.
CREATE TABLE notice (
    tx        TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    amount    INTEGER NOT NULL,
    user      TEXT NOT NULL DEFAULT '',
    at        INTEGER NOT NULL,
    recorded  INTEGER NOT NULL
);

-- Payment codes this terminal has seen, until they could no longer be fresh.
CREATE TABLE seen_code (
    id      TEXT PRIMARY KEY,
    expires INTEGER NOT NULL
);
CREATE INDEX seen_code_expires ON seen_code(expires);
