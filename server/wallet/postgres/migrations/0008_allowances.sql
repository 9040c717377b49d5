-- Offline allowances (wallet/allowance.go): each a hold on the wallet and
-- an allowance carried in the device's certificate. state is
-- wallet.AllowanceState (1 active, 2 released, 3 replaced).
CREATE TABLE allowances (
	id          bigserial PRIMARY KEY,
	user_id     bigint NOT NULL,
	device_id   bigint NOT NULL,
	amount      bigint NOT NULL,
	valid_until bigint NOT NULL,
	state       integer NOT NULL,
	created     bigint NOT NULL,
	updated     bigint NOT NULL
);
CREATE INDEX allowances_user ON allowances (user_id, valid_until);
CREATE INDEX allowances_ended ON allowances (valid_until) WHERE state <> 1;
