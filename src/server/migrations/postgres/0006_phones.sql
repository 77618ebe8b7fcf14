-- countersign-server schema, version 6: users' phones for the phone
-- methods, in E.164 (an office phone may have an extension).
CREATE TABLE phones (
    user_name TEXT NOT NULL REFERENCES users (name),
    kind TEXT NOT NULL,
    number TEXT NOT NULL,
    extension TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_name, kind)
);
