-- App sessions (the API's bearer tokens) by the SHA-256 of the token:
-- every authorizer on the database knows them, and a restart logs nobody out.
CREATE TABLE sessions (
	token_hash  text PRIMARY KEY,
	user_id     bigint NOT NULL,
	expires     bigint NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires);
