-- Journal version 3: codes accepted offline under an offline allowance
-- (issue 17). The code text is kept: it is the student's signed
-- authorisation that the authorizer settles against (entry.cred carries
-- it up). allowance_id and at (the corrected clock, unix ms) give the
-- allowance's spend at this terminal and its payments in the last hour.

CREATE TABLE offline (
    tx           TEXT PRIMARY KEY,
    allowance_id INTEGER NOT NULL,
    device_id    INTEGER NOT NULL,
    amount       INTEGER NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX offline_allowance ON offline(allowance_id, at);

ALTER TABLE entry ADD COLUMN cred TEXT NOT NULL DEFAULT '';
