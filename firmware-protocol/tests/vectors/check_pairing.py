#!/usr/bin/env python3
"""Independent cross-check of tests/vectors/pairing.json.

Recomputes every derived value of the pairing, host-verification, initialisation-KEK and ECDSA
vectors with Python's `cryptography` package (OpenSSL) and, for the deterministic ECDSA
signatures, also with `pycryptodome`, then compares them with the JSON file that the Rust tests
read. Nothing here shares code with the Rust implementation: it follows the derivations as
written in firmware-protocol/PROTOCOL.md section 4.

    pip install cryptography pycryptodome
    python3 check_pairing.py           # check the JSON, exit 1 on any difference
    python3 check_pairing.py --write   # regenerate the computed fields of the JSON

Not run by CI (CI has no Python dependencies); run it after changing any derivation.
"""

import json
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VECTORS = Path(__file__).with_name("pairing.json")


def sha256(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    for part in parts:
        digest.update(part)
    return digest.finalize()


def tagged_hash(tag: str, *parts: bytes) -> bytes:
    return sha256(tag.encode("ascii"), b"\x00", *parts)


def hkdf(salt, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def private_key(hex_scalar: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(hex_scalar, 16), ec.SECP256R1())


def public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def ecdh(own: ec.EllipticCurvePrivateKey, peer_public: bytes) -> bytes:
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_public)
    return own.exchange(ec.ECDH(), peer)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def ecdsa_sign_deterministic(hex_scalar: str, data: bytes) -> bytes:
    """RFC 6979 with OpenSSL, cross-checked with pycryptodome when it is installed."""
    der = private_key(hex_scalar).sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    try:
        from Crypto.Hash import SHA256
        from Crypto.PublicKey import ECC
        from Crypto.Signature import DSS
    except ImportError:
        return raw
    key = ECC.construct(curve="P-256", d=int(hex_scalar, 16))
    other = DSS.new(key, "deterministic-rfc6979").sign(SHA256.new(data))
    assert other == raw, "OpenSSL and pycryptodome disagree on an RFC 6979 signature"
    return raw


def compute(v: dict) -> dict:
    labels = v["labels"]
    out = {}

    # --- pairing ---------------------------------------------------------------------------
    p = v["pairing"]
    host = private_key(p["host_secret"])
    device = private_key(p["device_secret"])
    host_public, device_public = public_bytes(host), public_bytes(device)
    host_nonce, device_nonce = bytes.fromhex(p["host_nonce"]), bytes.fromhex(p["device_nonce"])
    shared = ecdh(host, device_public)
    assert shared == ecdh(device, host_public)
    commitment = tagged_hash(labels["commitment_tag"], host_public, host_nonce)
    transcript = tagged_hash(
        labels["transcript_tag"], host_public, device_public, host_nonce, device_nonce
    )
    pairing_key = hkdf(transcript, shared, labels["host_pairing_key_info"].encode(), 32)
    code_bytes = hkdf(transcript, shared, labels["comparison_code_info"].encode(), 8)
    code = int.from_bytes(code_bytes, "big") % 1_000_000
    confirmation = hkdf(transcript, shared, labels["device_confirmation_info"].encode(), 16)
    host_id = tagged_hash(labels["host_id_tag"], transcript)[:8]
    out["pairing"] = {
        "host_public": host_public.hex(),
        "device_public": device_public.hex(),
        "shared_x": shared.hex(),
        "host_commitment": commitment.hex(),
        "transcript_hash": transcript.hex(),
        "comparison_code": f"{code:06d}",
        "host_id": host_id.hex(),
        "host_pairing_key": pairing_key.hex(),
        "device_confirmation": confirmation.hex(),
    }

    # --- host verification -----------------------------------------------------------------
    h = v["host_request"]
    mac_key = hkdf(None, pairing_key, labels["request_mac_key_info"].encode(), 32)
    inner = bytes.fromhex(h["inner"])
    mac_input = (
        labels["request_mac_tag"].encode()
        + b"\x00"
        + host_id
        + struct.pack(">Q", h["counter"])
        + struct.pack(">Q", len(inner))
        + inner
    )
    state = (
        b"PBHV"
        + bytes([1, 1])
        + host_id
        + struct.pack(">Q", h["counter"])
        + pairing_key
    )
    out["host_request"] = {
        "request_mac_key": mac_key.hex(),
        "mac_input": mac_input.hex(),
        "mac": aes_cmac(mac_key, mac_input).hex(),
        "verifier_state_after": state.hex(),
    }

    # --- initialisation KEK -----------------------------------------------------------------
    k = v["initialisation_kek"]
    device_key = private_key(k["device_attestation_secret"])
    bank_key = private_key(k["bank_secret"])
    context = bytes.fromhex(k["context"])
    serial = k["device_serial"].encode()
    expected_context = struct.pack(">H", len(serial)) + serial + struct.pack(">Q", k["sequence"])
    assert context == expected_context, "context is not u16 length | serial | u64 sequence"
    kek_shared = ecdh(device_key, public_bytes(bank_key))
    assert kek_shared == ecdh(bank_key, public_bytes(device_key))
    info = labels["initialisation_kek_info"].encode() + b"\x00" + context
    out["initialisation_kek"] = {
        "device_attestation_public": public_bytes(device_key).hex(),
        "bank_public": public_bytes(bank_key).hex(),
        "kek": hkdf(None, kek_shared, info, 32).hex(),
    }

    # --- ECDSA ------------------------------------------------------------------------------
    e = v["ecdsa"]
    signed = e["domain_label"].encode() + b"\x00" + bytes.fromhex(e["message"])
    out["ecdsa"] = {
        "public_key": public_bytes(private_key(e["secret"])).hex(),
        "signed_bytes": signed.hex(),
        "signature": ecdsa_sign_deterministic(e["secret"], signed).hex(),
    }
    r = v["ecdsa_rfc6979"]
    raw = ecdsa_sign_deterministic(r["secret"], r["message"].encode())
    assert raw.hex() == r["signature"], "RFC 6979 A.2.5 published vector does not reproduce"
    return out


def main() -> int:
    vectors = json.loads(VECTORS.read_text())
    computed = compute(vectors)
    if "--write" in sys.argv:
        for section, values in computed.items():
            vectors[section].update(values)
        VECTORS.write_text(json.dumps(vectors, indent=2) + "\n")
        print(f"wrote {VECTORS}")
        return 0
    failures = 0
    for section, values in computed.items():
        for name, value in values.items():
            stored = vectors[section].get(name)
            if stored != value:
                failures += 1
                print(f"MISMATCH {section}.{name}: json {stored} python {value}")
    checked = sum(len(values) for values in computed.values())
    print(f"{checked - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
