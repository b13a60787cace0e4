-- What a device did with a signed bank command, as the app that relayed it reports (issue 14:
-- the device's result reported back to the bank). The device answers a BankCommand with an
-- unsigned Status (PROTOCOL.md §3.4): a row is the relaying app's word, checked only against
-- the command the bank issued (docs/SECURITY.md). One row per command; `reports` counts the
-- reports that came (the latest is kept).
CREATE TABLE device_command_results (
    serial TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    lifecycle TEXT,
    device_lock TEXT,
    device_error TEXT,
    device_answer BLOB NOT NULL,
    reported_at BIGINT NOT NULL,
    reports BIGINT NOT NULL,
    PRIMARY KEY (serial, sequence),
    FOREIGN KEY (serial, sequence) REFERENCES device_commands (serial, sequence)
);
