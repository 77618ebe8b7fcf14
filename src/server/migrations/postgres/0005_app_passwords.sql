-- countersign-server schema, version 5: app passwords for older apps.
-- Only an Argon2id PHC string of each is kept; last_used_* say when and
-- from where (the relying party's caller) it last worked.
CREATE TABLE app_passwords (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    last_used_from TEXT
);
CREATE INDEX app_passwords_user ON app_passwords (user_name);
