-- countersign-server schema, version 4: what several instances share.

-- Instances that are alive (seen_at is renewed every few seconds), and the
-- push sessions each holds: `delivered` counts the devices connected to
-- any live instance.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE TABLE push_sessions (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    opened_at BIGINT NOT NULL
);
CREATE INDEX push_sessions_device ON push_sessions (device_id);
-- Each sign-in looks up its user's devices (to count those connected).
CREATE INDEX IF NOT EXISTS devices_user ON devices (user_name);

-- Rate-limit events (a sliding window per bucket, milliseconds) and wrong
-- TOTP codes per (user, caller), when the limits are shared.
CREATE TABLE rate_events (
    bucket TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX rate_events_bucket ON rate_events (bucket, at_ms);
CREATE TABLE totp_failures (
    user_name TEXT NOT NULL,
    caller TEXT NOT NULL,
    failures BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (user_name, caller)
);
