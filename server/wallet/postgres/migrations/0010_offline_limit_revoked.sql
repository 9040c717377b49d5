-- Issue 17, server side. Offline payments count towards the daily limit: settled (or
-- being settled) offline records are in the day total wallet_put_intent
-- checks, as in PaidBetween. Only the total's condition changes.
CREATE OR REPLACE FUNCTION wallet_put_intent(p_limit_from bigint, p_limit_to bigint, p_limit_max bigint,
	p_code text, p_expires bigint, p_now bigint,
	p_key text, p_kind text, p_user bigint, p_terminal text, p_tx text, p_merchant text,
	p_amount bigint, p_channel text, p_bank_code text, p_bank_card text, p_last4 text, p_status text, p_code_reason text,
	p_req_hash text, p_response bytea, p_qr_seq bigint, p_created bigint, p_updated bigint,
	OUT o_over boolean, OUT o_owner text, OUT o_id bigint, OUT o_seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
	v_spent bigint;
BEGIN
	o_over := false;
	o_owner := p_key;
	IF p_limit_max IS NOT NULL THEN
		PERFORM 1 FROM users WHERE id = p_user FOR UPDATE;
		SELECT COALESCE(SUM(amount), 0) INTO v_spent FROM records WHERE user_id = p_user
			AND created >= p_limit_from AND created < p_limit_to
			AND ((kind IN ('payment', 'scan_pay', 'shower') AND status IN ('approved', 'processing', 'pending')
					AND channel IN ('balance', 'bank_card'))
				OR (kind = 'shower' AND status = 'held')
				OR (kind = 'offline' AND status IN ('approved', 'processing')));
		IF v_spent + p_amount > p_limit_max THEN
			o_over := true;
			o_owner := NULL;
			RETURN;
		END IF;
	END IF;
	IF p_code IS NOT NULL THEN
		o_owner := wallet_use_code(p_code, p_key, p_expires, p_now);
	END IF;
	IF o_owner = p_key THEN
		SELECT w.o_id, w.o_seq INTO o_id, o_seq FROM wallet_put_record(p_key, p_kind, p_user, p_terminal, p_tx, p_merchant,
			p_amount, p_channel, p_bank_code, p_bank_card, p_last4, p_status, p_code_reason, p_req_hash, p_response,
			p_qr_seq, p_created, p_updated) w;
	END IF;
END $$;

-- When a device was revoked: settlement flags an offline payment whose
-- code was made after it. Devices revoked before this step keep 0 (unknown).
ALTER TABLE devices ADD COLUMN revoked_at bigint NOT NULL DEFAULT 0;
