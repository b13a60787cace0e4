-- Device lifecycle (issue 14 item 2). A binding's loss-report code: SHA-256 of a random code
-- the customer receives at enrolment and uses to report the device lost with no device and
-- no session (`POST /v1/devices/{serial}/report-lost`). A device's pending ForgetHosts: the
-- creation time of a signed "forget every paired computer" command not yet followed by a
-- completed login (0: none); every login hands it to the device first until then.
ALTER TABLE bindings ADD COLUMN loss_code_hash BYTEA;
ALTER TABLE devices ADD COLUMN forget_hosts_pending BIGINT NOT NULL DEFAULT 0;
