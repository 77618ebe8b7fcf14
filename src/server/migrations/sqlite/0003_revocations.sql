-- countersign-server schema, version 3: revocations, and TOTP steps in order.

-- An activation is revoked when a newer one is issued for its user, when the
-- user activates a device, or by the admin; a revoked code activates nothing.
ALTER TABLE activations ADD COLUMN revoked_at BIGINT;

-- TOTP codes are accepted in order: a step at or before the last accepted
-- one is refused, so an older unused code cannot follow a newer one.
ALTER TABLE users ADD COLUMN last_totp_step BIGINT NOT NULL DEFAULT 0;
