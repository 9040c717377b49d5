-- wallet_put_intent is wallet.Store.PutIntent: a payment's intent with its
-- checks in one statement. The daily limit is checked under the user's row
-- lock, so two payments of one student on two authorizers at once cannot
-- both pass on the same total; the code's single-use mark as in
-- wallet_put_record_using_code. o_over is true (and nothing written) when
-- the limit would be exceeded. A NULL p_code skips the code, a NULL
-- p_limit_max the limit.
CREATE FUNCTION wallet_put_intent(p_limit_from bigint, p_limit_to bigint, p_limit_max bigint,
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
				OR (kind = 'shower' AND status = 'held'));
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

DROP FUNCTION wallet_put_record_using_code(text, bigint, bigint, text, text, bigint, text, text, text,
	bigint, text, text, text, text, text, text, text, bytea, bigint, bigint, bigint);
