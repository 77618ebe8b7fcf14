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
