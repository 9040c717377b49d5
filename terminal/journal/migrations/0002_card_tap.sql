-- Journal version 2: the last paying tap of each card, so that a card
-- left on the reader across a restart is not charged again (issue 13).
-- The card UID is not stored: uid_mac is HMAC-SHA256 of the UID under
-- this journal's random key (meta tap_key), hex.

CREATE TABLE card_tap (
    uid_mac TEXT PRIMARY KEY,
    at      INTEGER NOT NULL, -- unix ms of the tap (the transaction's creation)
    tx      TEXT NOT NULL     -- the transaction the tap started
);
CREATE INDEX card_tap_at ON card_tap(at);
