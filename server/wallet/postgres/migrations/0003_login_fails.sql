-- Login lockouts by throttled key (a student number, or a number and a
-- client address): every authorizer on the database sees a lock, and a
-- restart keeps it. Times are Unix nanoseconds; locked_until = 0: never
-- locked.
CREATE TABLE login_fails (
	lock_key      text PRIMARY KEY,
	fails         integer NOT NULL,
	last_fail     bigint NOT NULL,
	locked_until  bigint NOT NULL
);
CREATE INDEX login_fails_last ON login_fails (last_fail);
