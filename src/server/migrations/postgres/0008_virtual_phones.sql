-- countersign-server schema, version 8: devices that answer for their
-- user's phone numbers (virtual phones, the `virtual` phone provider).
-- A row counts only while its device exists and the number is still one
-- of that device's user's phones.
CREATE TABLE phone_devices (
    device_id TEXT NOT NULL,
    number TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, number)
);
CREATE INDEX phone_devices_number ON phone_devices (number);
-- The number a text or call went to: a virtual phone answers only what
-- reached a number it answers for.
ALTER TABLE signins ADD COLUMN sent_to TEXT;
-- Sessions opened with the listener key: they get no texts or calls, so a
-- device counts as answering its phone only with a device-key session.
ALTER TABLE push_sessions ADD COLUMN receive_only BIGINT NOT NULL DEFAULT 0;
