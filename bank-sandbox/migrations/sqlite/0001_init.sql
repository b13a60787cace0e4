-- PinBridge sandbox bank schema (SQLite). Times are Unix milliseconds; flags are 0/1.
CREATE TABLE bank_keys (name TEXT PRIMARY KEY, key_block TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE trusted_cas (key_id TEXT PRIMARY KEY, public_key BLOB NOT NULL, label TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE allowed_hashes (kind TEXT NOT NULL, hash BLOB NOT NULL, label TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (kind, hash));
CREATE TABLE staff (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE staff_tokens (token_hash BLOB PRIMARY KEY, username TEXT NOT NULL, role TEXT NOT NULL, expires_at BIGINT NOT NULL);
CREATE TABLE customers (customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, pin_account_number TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE accounts (account_number TEXT PRIMARY KEY, customer_id TEXT, name TEXT NOT NULL, currency TEXT NOT NULL, exponent BIGINT NOT NULL, balance_minor BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX accounts_customer ON accounts (customer_id);
CREATE TABLE devices (
    serial TEXT PRIMARY KEY,
    attestation_public_key BLOB NOT NULL,
    certificate BLOB NOT NULL,
    firmware_version TEXT NOT NULL,
    firmware_hash BLOB NOT NULL,
    state TEXT NOT NULL,
    locked_by_bank BIGINT NOT NULL DEFAULT 0,
    last_sequence BIGINT NOT NULL DEFAULT 0,
    kbpk TEXT,
    pending_kbpk TEXT,
    pending_kcv BLOB,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    throttled_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE bindings (
    binding_id TEXT PRIMARY KEY,
    device_serial TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    pin_account_number TEXT NOT NULL,
    status TEXT NOT NULL,
    enrol_pin_key TEXT,
    pvv BLOB,
    wrong_pin_count BIGINT NOT NULL DEFAULT 0,
    pin_locked BIGINT NOT NULL DEFAULT 0,
    payment_counter BIGINT NOT NULL DEFAULT 0,
    device_counter BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX bindings_device ON bindings (device_serial, status);
CREATE INDEX bindings_customer ON bindings (customer_id, status);
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    device_serial TEXT NOT NULL,
    binding_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    integrity_nonce BLOB NOT NULL,
    pin_key TEXT,
    mac_key TEXT,
    response_key TEXT,
    load_keys BLOB,
    bank_challenge BLOB,
    challenge_expires_at BIGINT,
    token_hash BLOB UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_device ON sessions (device_serial);
CREATE TABLE payments (
    transaction_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    binding_id TEXT NOT NULL,
    session_id TEXT,
    idempotency_key TEXT NOT NULL,
    payer_account TEXT NOT NULL,
    payee_account TEXT NOT NULL,
    payee_name TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    exponent BIGINT NOT NULL,
    reference TEXT NOT NULL,
    bank_counter BIGINT,
    request BLOB NOT NULL,
    status TEXT NOT NULL,
    result BIGINT,
    device_counter BIGINT,
    approval BLOB,
    response BLOB,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    UNIQUE (customer_id, idempotency_key)
);
CREATE INDEX payments_customer_status ON payments (customer_id, status);
CREATE TABLE journal (
    transaction_id TEXT PRIMARY KEY,
    payer_account TEXT NOT NULL,
    payee_account TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE device_commands (
    serial TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message BLOB NOT NULL,
    issued_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (serial, sequence)
);
CREATE TABLE intrusion_reports (serial TEXT NOT NULL, detail TEXT NOT NULL, created_at BIGINT NOT NULL);
