-- countersign-server schema, version 1. Portable SQL (SQLite and PostgreSQL):
-- integers are Unix seconds, ids are text, keys and secrets are base64 text.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    blocked_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE activations (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    code_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    failures INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    public_key TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signins (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    app TEXT NOT NULL,
    ip TEXT NOT NULL,
    location TEXT NOT NULL,
    number INTEGER,
    pin_required INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    decided_at BIGINT,
    device_id TEXT
);
CREATE INDEX signins_pending ON signins (user_name, status, expires_at);

-- A TOTP step accepted once per user: a code is never accepted twice.
CREATE TABLE totp_used (
    user_name TEXT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (user_name, step)
);

-- The server's signing key and generated API tokens.
CREATE TABLE server_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
