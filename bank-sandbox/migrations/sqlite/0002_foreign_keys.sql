-- Foreign keys (issue 14): a row that points at a customer, device, binding, account or
-- payment that does not exist is refused by the schema itself, whatever code writes it.
-- (An account opened for a customer that did not exist used to be stored, and a customer
-- created later under that id owned its balance.) Payee accounts are not keys: a payee is
-- usually an account at another bank.
--
-- SQLite cannot add a constraint to a table: each table is rebuilt (new table, copy, drop,
-- rename), parents before children, so every REFERENCES names a table's final name. The
-- store turns `PRAGMA foreign_keys` on for every connection, so the copies are checked
-- too: a database holding rows that point at nothing stops here with "FOREIGN KEY
-- constraint failed", and those rows must be repaired by hand first.

CREATE TABLE accounts_new (
    account_number TEXT PRIMARY KEY,
    customer_id TEXT REFERENCES customers (customer_id),
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    exponent BIGINT NOT NULL,
    balance_minor BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO accounts_new SELECT account_number, customer_id, name, currency, exponent, balance_minor, created_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;
CREATE INDEX accounts_customer ON accounts (customer_id);

CREATE TABLE bindings_new (
    binding_id TEXT PRIMARY KEY,
    device_serial TEXT NOT NULL REFERENCES devices (serial),
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
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
INSERT INTO bindings_new SELECT binding_id, device_serial, customer_id, pin_account_number, status, enrol_pin_key, pvv,
    wrong_pin_count, pin_locked, payment_counter, device_counter, created_at, ended_at FROM bindings;
DROP TABLE bindings;
ALTER TABLE bindings_new RENAME TO bindings;
CREATE INDEX bindings_device ON bindings (device_serial, status);
CREATE INDEX bindings_customer ON bindings (customer_id, status);

CREATE TABLE payments_new (
    transaction_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    binding_id TEXT NOT NULL REFERENCES bindings (binding_id),
    session_id TEXT,
    idempotency_key TEXT NOT NULL,
    payer_account TEXT NOT NULL REFERENCES accounts (account_number),
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
INSERT INTO payments_new SELECT transaction_id, kind, customer_id, binding_id, session_id, idempotency_key, payer_account,
    payee_account, payee_name, amount_minor, currency, exponent, reference, bank_counter, request, status, result,
    device_counter, approval, response, created_by, created_at, expires_at, decided_at FROM payments;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_customer_status ON payments (customer_id, status);

CREATE TABLE journal_new (
    transaction_id TEXT PRIMARY KEY REFERENCES payments (transaction_id),
    payer_account TEXT NOT NULL REFERENCES accounts (account_number),
    payee_account TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO journal_new SELECT transaction_id, payer_account, payee_account, amount_minor, currency, created_at FROM journal;
DROP TABLE journal;
ALTER TABLE journal_new RENAME TO journal;

CREATE TABLE device_commands_new (
    serial TEXT NOT NULL REFERENCES devices (serial),
    sequence BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message BLOB NOT NULL,
    issued_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (serial, sequence)
);
INSERT INTO device_commands_new SELECT serial, sequence, kind, message, issued_by, created_at FROM device_commands;
DROP TABLE device_commands;
ALTER TABLE device_commands_new RENAME TO device_commands;
