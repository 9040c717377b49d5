-- Ledger schema, version 1. Amounts are integer cents; times are Unix
-- nanoseconds (UTC), like the SQLite store, so that a time round-trips
-- exactly. The CHECK constraints repeat the engine's rules so that a bug
-- cannot commit a negative wallet; Check() verifies the rest.
--
-- The ledger_* functions apply one operation each and report business
-- outcomes (insufficient funds, key conflict, ...) as a status instead of
-- raising, so that a whole batch of operations can be pipelined in one
-- transaction without savepoints: only a bug or a broken rule aborts it.
-- Status codes (mirrored in ops.go):
--   0 applied   1 already applied (idempotent repeat)   2 insufficient
--   3 key conflict   4 hold not found   5 invalid   6 hold closed   7 over capture

CREATE TABLE accounts (
	id          text PRIMARY KEY,
	constrained boolean NOT NULL,
	balance     bigint NOT NULL DEFAULT 0, -- sum of this account's postings
	held        bigint NOT NULL DEFAULT 0, -- sum of its active holds
	CHECK (held >= 0),
	CHECK (NOT constrained OR (balance >= 0 AND held <= balance))
);

CREATE TABLE transfers (
	id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- ledger ID
	key  text NOT NULL UNIQUE, -- idempotency key
	kind text NOT NULL,
	memo text NOT NULL,
	at   bigint NOT NULL,      -- business time
	hash bytea NOT NULL        -- ledger.Transfer.ContentHash, for ErrKeyConflict
);

CREATE TABLE postings (
	transfer_id bigint NOT NULL REFERENCES transfers (id),
	leg         integer NOT NULL, -- position in Transfer.Postings
	account     text NOT NULL REFERENCES accounts (id),
	amount      bigint NOT NULL CHECK (amount <> 0),
	PRIMARY KEY (transfer_id, leg)
);

CREATE INDEX postings_by_account ON postings (account, transfer_id);

CREATE TABLE holds (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key         text NOT NULL UNIQUE,
	account     text NOT NULL REFERENCES accounts (id),
	amount      bigint NOT NULL CHECK (amount > 0),
	state       smallint NOT NULL CHECK (state IN (1, 2, 3, 4)), -- ledger.HoldState
	captured    bigint NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
	expires     bigint NOT NULL,
	memo        text NOT NULL,
	at          bigint NOT NULL,
	closed_at   bigint,                            -- capture, void or expiry time
	transfer_id bigint REFERENCES transfers (id)   -- the capture's transfer, if any
);

CREATE INDEX holds_active_by_expiry ON holds (expires) WHERE state = 1;

-- ledger_content_hash is ledger.Transfer.ContentHash in SQL, for the
-- capture transfer whose hold account only the database knows: SHA-256
-- over the length-prefixed kind, then per leg, sorted bytewise by account
-- and then by amount, the length-prefixed account and the amount, all
-- integers as 8 big-endian bytes.
CREATE FUNCTION ledger_content_hash(p_kind text, p_accounts text[], p_amounts bigint[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT sha256(
		int8send(octet_length(p_kind)::bigint) || convert_to(p_kind, 'UTF8') ||
		COALESCE((SELECT string_agg(int8send(octet_length(u.a)::bigint) || convert_to(u.a, 'UTF8') || int8send(u.x), ''::bytea
				ORDER BY convert_to(u.a, 'UTF8'), u.x)
			FROM unnest(p_accounts, p_amounts) AS u(a, x)), ''::bytea))
$$;

-- ledger_post applies one validated transfer. Every constrained account it
-- debits is locked (FOR NO KEY UPDATE: foreign-key checks of other
-- postings still pass) before its available balance is read, so two
-- authorizers can never both spend the same money.
CREATE FUNCTION ledger_post(p_key text, p_kind text, p_memo text, p_at bigint, p_hash bytea,
	p_accounts text[], p_amounts bigint[], p_constrained boolean[],
	OUT o_status integer, OUT o_id bigint, OUT o_at bigint, OUT o_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	d record;
	v_hash bytea;
	v_avail bigint;
BEGIN
	SELECT t.id, t.hash, t.at INTO o_id, v_hash, o_at FROM transfers t WHERE t.key = p_key;
	IF FOUND THEN
		o_status := CASE WHEN v_hash = p_hash THEN 1 ELSE 3 END;
		RETURN;
	END IF;
	-- Net effect per account, so that an account named twice is checked on its total.
	FOR d IN SELECT u.a, bool_or(u.c) AS c, sum(u.x)::bigint AS x
		FROM unnest(p_accounts, p_amounts, p_constrained) AS u(a, x, c)
		GROUP BY u.a ORDER BY u.a
	LOOP
		IF d.c AND d.x < 0 THEN
			SELECT a.balance - a.held INTO v_avail FROM accounts a WHERE a.id = d.a FOR NO KEY UPDATE;
			v_avail := COALESCE(v_avail, 0);
			IF v_avail + d.x < 0 THEN
				-- The lock may have waited for another authorizer applying this very key.
				SELECT t.id, t.hash, t.at INTO o_id, v_hash, o_at FROM transfers t WHERE t.key = p_key;
				IF FOUND THEN
					o_status := CASE WHEN v_hash = p_hash THEN 1 ELSE 3 END;
					RETURN;
				END IF;
				o_status := 2;
				o_detail := format('%s has %s available, transfer %L needs %s', d.a, v_avail, p_key, -d.x);
				RETURN;
			END IF;
		END IF;
	END LOOP;
	INSERT INTO transfers (key, kind, memo, at, hash) VALUES (p_key, p_kind, p_memo, p_at, p_hash)
		ON CONFLICT (key) DO NOTHING
		RETURNING transfers.id INTO o_id;
	IF NOT FOUND THEN
		-- Another authorizer committed this key since the first look.
		SELECT t.id, t.hash, t.at INTO o_id, v_hash, o_at FROM transfers t WHERE t.key = p_key;
		o_status := CASE WHEN v_hash = p_hash THEN 1 ELSE 3 END;
		RETURN;
	END IF;
	-- Update the accounts that exist and create the others. (Not a single
	-- upsert: CHECK constraints are tested on the row proposed for insertion,
	-- and a debit's proposed row is negative.) A constrained account that
	-- did not exist cannot have passed the debit check above, so a row
	-- created here is never a negative wallet.
	WITH delta AS (
		SELECT u.a AS account, bool_or(u.c) AS c, sum(u.x)::bigint AS x
		FROM unnest(p_accounts, p_amounts, p_constrained) AS u(a, x, c)
		GROUP BY u.a
	), upd AS (
		UPDATE accounts acc SET balance = acc.balance + delta.x FROM delta WHERE acc.id = delta.account RETURNING acc.id
	)
	INSERT INTO accounts AS a (id, constrained, balance)
		SELECT delta.account, delta.c, delta.x FROM delta
		WHERE delta.account NOT IN (SELECT upd.id FROM upd) ORDER BY delta.account
		ON CONFLICT (id) DO UPDATE SET balance = a.balance + EXCLUDED.balance;
	INSERT INTO postings (transfer_id, leg, account, amount)
		SELECT o_id, u.n - 1, u.a, u.x FROM unnest(p_accounts, p_amounts) WITH ORDINALITY AS u(a, x, n);
	o_status := 0;
	o_at := p_at;
END
$$;

-- ledger_place_hold reserves p_amount on a wallet, or reports the hold
-- already placed under p_key (status 1, with its current row).
CREATE FUNCTION ledger_place_hold(p_key text, p_account text, p_amount bigint, p_expires bigint,
	p_memo text, p_at bigint,
	OUT o_status integer, OUT o_detail text, OUT o_state smallint, OUT o_captured bigint,
	OUT o_expires bigint, OUT o_memo text, OUT o_at bigint)
LANGUAGE plpgsql AS $$
DECLARE
	v_account text;
	v_amount bigint;
	v_avail bigint;
BEGIN
	FOR attempt IN 1..2 LOOP
		SELECT h.account, h.amount, h.state, h.captured, h.expires, h.memo, h.at
			INTO v_account, v_amount, o_state, o_captured, o_expires, o_memo, o_at
			FROM holds h WHERE h.key = p_key;
		IF FOUND THEN
			IF v_account <> p_account OR v_amount <> p_amount THEN
				o_status := 3;
				o_state := NULL;
			ELSE
				o_status := 1;
			END IF;
			RETURN;
		END IF;
		IF attempt = 2 THEN
			RAISE EXCEPTION 'ledger: hold % neither inserted nor found', p_key;
		END IF;
		SELECT a.balance - a.held INTO v_avail FROM accounts a WHERE a.id = p_account FOR NO KEY UPDATE;
		v_avail := COALESCE(v_avail, 0);
		IF v_avail < p_amount AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.key = p_key) THEN
			o_status := 2;
			o_detail := format('%s has %s available, hold %L needs %s', p_account, v_avail, p_key, p_amount);
			RETURN;
		END IF;
		IF v_avail < p_amount THEN
			CONTINUE; -- the lock waited for another authorizer placing this very key
		END IF;
		INSERT INTO holds (key, account, amount, state, captured, expires, memo, at)
			VALUES (p_key, p_account, p_amount, 1, 0, p_expires, p_memo, p_at)
			ON CONFLICT (key) DO NOTHING;
		IF FOUND THEN
			UPDATE accounts SET held = held + p_amount WHERE id = p_account;
			o_status := 0;
			o_state := 1; o_captured := 0; o_expires := p_expires; o_memo := p_memo; o_at := p_at;
			RETURN;
		END IF;
		-- Placed by another authorizer meanwhile: report that one.
	END LOOP;
END
$$;

-- ledger_lock_hold locks a hold's account and then the hold (always in
-- that order, like every other operation) and returns the hold, or no row.
CREATE FUNCTION ledger_lock_hold(p_key text) RETURNS SETOF holds
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM accounts a WHERE a.id = (SELECT h.account FROM holds h WHERE h.key = p_key) FOR NO KEY UPDATE;
	RETURN QUERY SELECT * FROM holds h WHERE h.key = p_key FOR UPDATE;
END
$$;

-- ledger_release closes an active hold in a final state and gives its
-- amount back to the account's available balance.
CREATE FUNCTION ledger_release(p_key text, p_state smallint, p_captured bigint, p_at bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v_account text;
	v_amount bigint;
BEGIN
	UPDATE holds SET state = p_state, captured = p_captured, closed_at = p_at
		WHERE key = p_key AND state = 1
		RETURNING account, amount INTO v_account, v_amount;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'ledger: hold % is not active', p_key;
	END IF;
	UPDATE accounts SET held = held - v_amount WHERE id = v_account;
END
$$;

-- ledger_capture posts the capture transfer of a hold (key p_capture_key,
-- kind 'capture') and releases the rest, or reports why not. With status 0
-- and a NULL o_id the hold was voided (a capture of 0). The o_* hold
-- columns are the hold after the call.
CREATE FUNCTION ledger_capture(p_hold_key text, p_amount bigint, p_to text, p_to_constrained boolean,
	p_memo text, p_at bigint, p_capture_key text,
	OUT o_status integer, OUT o_detail text, OUT o_id bigint, OUT o_at bigint,
	OUT o_account text, OUT o_amount bigint, OUT o_state smallint, OUT o_captured bigint,
	OUT o_expires bigint, OUT o_memo text, OUT o_hold_at bigint)
LANGUAGE plpgsql AS $$
DECLARE
	h holds;
	v_hash bytea;
	v_have bytea;
	r record;
BEGIN
	SELECT * INTO h FROM ledger_lock_hold(p_hold_key);
	IF h.key IS NULL THEN
		o_status := 4;
		RETURN;
	END IF;
	o_account := h.account; o_amount := h.amount; o_state := h.state; o_captured := h.captured;
	o_expires := h.expires; o_memo := h.memo; o_hold_at := h.at;
	IF p_to = h.account THEN
		o_status := 5;
		o_detail := format('capture %L to its own account', p_hold_key);
		RETURN;
	END IF;
	v_hash := ledger_content_hash('capture', ARRAY[h.account, p_to], ARRAY[-p_amount, p_amount]);
	IF h.state = 2 AND h.captured = p_amount THEN -- a repeat: a duplicate or a conflict
		SELECT t.id, t.at, t.hash INTO o_id, o_at, v_have FROM transfers t WHERE t.key = p_capture_key;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'ledger: captured hold % has no capture transfer', p_hold_key;
		END IF;
		o_status := CASE WHEN v_have = v_hash THEN 1 ELSE 3 END;
		RETURN;
	ELSIF h.state = 3 AND p_amount = 0 THEN
		o_status := 0;
		RETURN;
	ELSIF h.state <> 1 THEN
		o_status := 6;
		o_detail := format('hold %L is state %s (captured %s), capture of %s refused', p_hold_key, h.state, h.captured, p_amount);
		RETURN;
	ELSIF p_amount > h.amount THEN
		o_status := 7;
		o_detail := format('capture %s of hold %L for %s', p_amount, p_hold_key, h.amount);
		RETURN;
	ELSIF p_amount = 0 THEN
		PERFORM ledger_release(p_hold_key, 3::smallint, 0, p_at);
		o_state := 3;
		o_status := 0;
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM transfers t WHERE t.key = p_capture_key) THEN
		o_status := 3;
		o_detail := format('transfer %L exists but hold %L was not captured', p_capture_key, p_hold_key);
		RETURN;
	END IF;
	PERFORM ledger_release(p_hold_key, 2::smallint, p_amount, p_at);
	SELECT * INTO r FROM ledger_post(p_capture_key, 'capture', p_memo, p_at, v_hash,
		ARRAY[h.account, p_to], ARRAY[-p_amount, p_amount], ARRAY[true, p_to_constrained]);
	IF r.o_status <> 0 THEN
		RAISE EXCEPTION 'ledger: capture % of hold %: status %', p_capture_key, p_hold_key, r.o_status;
	END IF;
	UPDATE holds SET transfer_id = r.o_id WHERE key = p_hold_key;
	o_status := 0; o_id := r.o_id; o_at := r.o_at;
	o_state := 2; o_captured := p_amount;
END
$$;

-- ledger_void releases a hold without moving money: status 0 with the hold
-- as it is now (voided, or unchanged if it was voided or expired before).
CREATE FUNCTION ledger_void(p_key text, p_at bigint,
	OUT o_status integer, OUT o_detail text,
	OUT o_account text, OUT o_amount bigint, OUT o_state smallint, OUT o_captured bigint,
	OUT o_expires bigint, OUT o_memo text, OUT o_hold_at bigint)
LANGUAGE plpgsql AS $$
DECLARE
	h holds;
BEGIN
	SELECT * INTO h FROM ledger_lock_hold(p_key);
	IF h.key IS NULL THEN
		o_status := 4;
		RETURN;
	END IF;
	o_account := h.account; o_amount := h.amount; o_state := h.state; o_captured := h.captured;
	o_expires := h.expires; o_memo := h.memo; o_hold_at := h.at;
	IF h.state = 2 THEN
		o_status := 6;
		o_detail := format('hold %L was captured (%s), void refused', p_key, h.captured);
		RETURN;
	ELSIF h.state = 1 THEN
		PERFORM ledger_release(p_key, 3::smallint, 0, p_at);
		o_state := 3;
	END IF;
	o_status := 0;
END
$$;

-- ledger_expire releases every active hold with expires <= p_now, locking
-- the accounts first in id order; a hold placed on another account after
-- that lock is left for the next run. Returns how many it released.
CREATE FUNCTION ledger_expire(p_now bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	v_locked text[];
	v_n integer;
BEGIN
	SELECT array_agg(s.id) INTO v_locked FROM (
		SELECT a.id FROM accounts a
		WHERE a.id IN (SELECT h.account FROM holds h WHERE h.state = 1 AND h.expires <= p_now)
		ORDER BY a.id FOR NO KEY UPDATE) s;
	IF v_locked IS NULL THEN
		RETURN 0;
	END IF;
	WITH e AS (
		UPDATE holds h SET state = 4, closed_at = p_now
		WHERE h.state = 1 AND h.expires <= p_now AND h.account = ANY (v_locked)
		RETURNING h.account, h.amount
	), per AS (
		SELECT e.account, sum(e.amount)::bigint AS amount, count(*) AS n FROM e GROUP BY e.account
	), upd AS (
		UPDATE accounts a SET held = a.held - per.amount FROM per WHERE a.id = per.account
	)
	SELECT COALESCE(sum(per.n), 0) INTO v_n FROM per;
	RETURN v_n;
END
$$;
