-- countersign-server schema, version 7: how a sign-in reaches the user
-- (push, code, sms, voice), and for texts and calls their secret.
ALTER TABLE signins ADD COLUMN method TEXT NOT NULL DEFAULT 'push';
-- sms: HMAC of the code sent; voice: HMAC of the token the gateway's
-- key-press callback carries. Never the code or token itself.
ALTER TABLE signins ADD COLUMN secret_hash TEXT;
-- Codes typed for this sign-in (5 at most; the fifth wrong one denies it).
ALTER TABLE signins ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
-- The user's preferred method; NULL: push when they have a device.
ALTER TABLE users ADD COLUMN preferred_method TEXT;
