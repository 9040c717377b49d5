-- The student wallet's pages: the water each shower metered (shower
-- history in litres) and the name students know a terminal by (scan-to-pay
-- shows it before the password).
ALTER TABLE records ADD COLUMN ml bigint NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN name text NOT NULL DEFAULT '';
