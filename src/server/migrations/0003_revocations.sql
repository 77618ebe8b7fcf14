-- countersign-server schema, version 3: an activation is revoked when a newer
-- one is issued for its user, when the user activates a device, or by the
-- admin; a revoked code no longer activates anything.
ALTER TABLE activations ADD COLUMN revoked_at BIGINT;
