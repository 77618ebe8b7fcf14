-- countersign-server schema, version 2: each device may have a listener key,
-- which opens receive-only push sessions (base64 Ed25519 public key).
ALTER TABLE devices ADD COLUMN listener_key TEXT;
