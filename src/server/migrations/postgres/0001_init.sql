-- countersign-server schema for PostgreSQL, the same as SQLite's versions
-- 1 to 3 (see ../sqlite): every integer the server reads is BIGINT (sqlx
-- reads them as i64), and flags are BOOLEAN.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    blocked_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    -- TOTP codes are accepted in order: a step at or before this is refused.
    last_totp_step BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE activations (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    code_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    failures BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    -- A newer code, an activated device or the admin revoked it.
    revoked_at BIGINT
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    public_key TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Opens receive-only push sessions (base64 Ed25519 public key).
    listener_key TEXT
);
CREATE INDEX devices_user ON devices (user_name);

CREATE TABLE signins (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    app TEXT NOT NULL,
    ip TEXT NOT NULL,
    location TEXT NOT NULL,
    number BIGINT,
    pin_required BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    decided_at BIGINT,
    device_id TEXT
);
CREATE INDEX signins_pending ON signins (user_name, status, expires_at);

CREATE TABLE totp_used (
    user_name TEXT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (user_name, step)
);

-- API token hashes, and the signing key when instances share it.
CREATE TABLE server_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
