-- Foreign keys (issue 14): a row that points at a customer, device, binding, account or
-- payment that does not exist is refused by the schema itself, whatever code writes it.
-- (An account opened for a customer that did not exist used to be stored, and a customer
-- created later under that id owned its balance.) Payee accounts are not keys: a payee is
-- usually an account at another bank. Existing rows are checked as each constraint is
-- added: a database holding rows that point at nothing stops here, and those rows must be
-- repaired by hand first. Parents are never deleted, so the referencing columns need no
-- index of their own beyond those the queries already use.
ALTER TABLE accounts ADD CONSTRAINT accounts_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (customer_id);
ALTER TABLE bindings ADD CONSTRAINT bindings_device_fk FOREIGN KEY (device_serial) REFERENCES devices (serial);
ALTER TABLE bindings ADD CONSTRAINT bindings_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (customer_id);
ALTER TABLE payments ADD CONSTRAINT payments_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (customer_id);
ALTER TABLE payments ADD CONSTRAINT payments_binding_fk FOREIGN KEY (binding_id) REFERENCES bindings (binding_id);
ALTER TABLE payments ADD CONSTRAINT payments_payer_fk FOREIGN KEY (payer_account) REFERENCES accounts (account_number);
ALTER TABLE journal ADD CONSTRAINT journal_payment_fk FOREIGN KEY (transaction_id) REFERENCES payments (transaction_id);
ALTER TABLE journal ADD CONSTRAINT journal_payer_fk FOREIGN KEY (payer_account) REFERENCES accounts (account_number);
ALTER TABLE device_commands ADD CONSTRAINT device_commands_device_fk FOREIGN KEY (serial) REFERENCES devices (serial);
