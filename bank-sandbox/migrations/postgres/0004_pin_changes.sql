-- The customer's PIN change on the device (issue 14 item 7, PROTOCOL.md 6.13). One row per
-- ChangePin the bank prepared: the MACed request (its bank counter comes from the binding's
-- payment counter, shared with payments), and once the device's PinChangeEntered came back
-- the decision and the MACed VerifyPinChange, so a retry of the same answer gets the same
-- verdict and nothing else is decided twice. PIN blocks are never stored.
CREATE TABLE pin_changes (
    change_id TEXT PRIMARY KEY,
    binding_id TEXT NOT NULL REFERENCES bindings (binding_id),
    session_id TEXT NOT NULL,
    bank_counter BIGINT NOT NULL,
    request BYTEA NOT NULL,
    status TEXT NOT NULL,
    device_counter BIGINT,
    answer_hash BYTEA,
    response BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX pin_changes_binding ON pin_changes (binding_id);
