-- A student's sessions and devices by user: the device list, revoking
-- from another phone, and logging out everywhere read them by user.
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX devices_user ON devices (user_id);
