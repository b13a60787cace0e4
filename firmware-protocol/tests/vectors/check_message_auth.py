#!/usr/bin/env python3
"""Independent cross-check of auth_input_hex in tests/vectors/messages.json.

Rebuilds the exact bytes every MAC covers and every ECDSA signature hashes from the encoded
messages (their `hex`), following the table of firmware-protocol/PROTOCOL.md section 3.6 and
the domain labels of section 4.4 only; nothing is shared with the Rust implementation.

    python3 check_message_auth.py      # exit 1 on any difference

Standard library only. Not run by CI; run it after changing an authenticated payload.
"""

import json
import sys
from pathlib import Path

VECTORS = Path(__file__).with_name("messages.json")
HEADER = 7  # version, message type, request id
SIG, MAC = 64, 16

BANK = b"PinBridge/v1/sig/bank-command"
OPERATOR = b"PinBridge/v1/sig/operator-reset"
ATTESTATION = b"PinBridge/v1/sig/device-attestation"
OOB = b"PinBridge/v1/sig/oob-confirmation"


def main() -> int:
    vectors = {v["name"]: v for v in json.loads(VECTORS.read_text())["vectors"]}

    def body(name: str) -> bytes:
        return bytes.fromhex(vectors[name]["hex"])[HEADER:]

    def tagged(tag: bytes, *parts: bytes) -> bytes:
        return tag + b"\0" + b"".join(parts)

    def signed(label: bytes, tag: bytes, *parts: bytes) -> bytes:
        return label + b"\0" + tagged(tag, *parts)

    envelope = body("HostVerified")
    inner_len = int.from_bytes(envelope[16:18], "big")
    expected = {
        "HostVerified": tagged(
            b"PinBridge/v1/host-auth/request",
            envelope[:16],  # host id, counter
            inner_len.to_bytes(8, "big"),  # u64 in the MAC input, u16 on the wire
            envelope[18 : 18 + inner_len],
        ),
        "Initialise": signed(BANK, b"PinBridge/1/initialise", body("Initialise")[:-SIG]),
        "Enrol": signed(BANK, b"PinBridge/1/enrol", body("Enrol")[:-SIG]),
        "OperatorReset": signed(
            OPERATOR, b"PinBridge/1/operator-reset", body("OperatorReset")[:-SIG]
        ),
        "BankCommand": signed(BANK, b"PinBridge/1/bank-command", body("BankCommand")[:-SIG]),
        "ApprovePayment": tagged(b"PinBridge/1/approve-payment", body("ApprovePayment")[:-MAC]),
        "VerifyBankResponse": tagged(
            b"PinBridge/1/bank-response", body("VerifyBankResponse")[:-MAC]
        ),
        "SignConfirmation": signed(OOB, b"PinBridge/1/confirmation", body("SignConfirmation")),
        "ChallengeResponse": tagged(
            b"PinBridge/1/challenge-response",
            body("BankChallenge"),
            body("ChallengeResponse")[:-MAC],
        ),
        "PaymentApproved": tagged(
            b"PinBridge/1/payment-approved",
            body("ApprovePayment"),
            body("PaymentApproved")[:-MAC],
        ),
        "ChangePin": tagged(b"PinBridge/1/change-pin", body("ChangePin")[:-MAC]),
        "VerifyPinChange": tagged(
            b"PinBridge/1/pin-change-result", body("VerifyPinChange")[:-MAC]
        ),
        "PinChangeEntered": tagged(
            b"PinBridge/1/pin-change-entered",
            body("ChangePin"),
            body("PinChangeEntered")[:-MAC],
        ),
        "DeviceWiped": signed(
            ATTESTATION,
            b"PinBridge/1/device-wiped",
            body("WipeDevice"),
            body("DeviceWiped")[:-SIG],
        ),
        "IntegrityReport": signed(
            ATTESTATION,
            b"PinBridge/1/integrity-report",
            body("GetIntegrityReport"),
            body("IntegrityReport")[:-SIG],
        ),
    }
    with_auth = {n for n, v in vectors.items() if "auth_input_hex" in v}
    failed = sorted(with_auth ^ expected.keys())
    for name in failed:
        print(f"MISMATCH {name}: auth_input_hex present in only one of the file and this check")
    for name, data in expected.items():
        if vectors[name].get("auth_input_hex") != data.hex():
            print(f"MISMATCH {name}")
            failed.append(name)
    print(f"{len(expected) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
