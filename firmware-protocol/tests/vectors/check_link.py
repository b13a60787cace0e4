#!/usr/bin/env python3
"""Independent implementation of the PinBridge link-layer packet format (PROTOCOL.md section 2).

Written from the specification, not from the Rust code, using zlib.crc32 for the CRC.

    python3 check_link.py           # verify link.json: every packet and reply recomputed here
    python3 check_link.py --write   # regenerate link.json from this script

Not run by CI; the Rust tests (tests/link_vectors.rs) check the same file against the crate.
"""

import json
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "link.json")

COMMANDS = {
    "PING": 0x81,
    "MSG": 0x83,
    "ACK": 0x84,
    "NACK": 0x85,
    "INIT": 0x86,
    "WINK": 0x88,
    "CANCEL": 0x91,
    "KEEPALIVE": 0xBB,
    "ERROR": 0xBF,
}
ERRORS = {
    "INVALID_COMMAND": 0x01,
    "INVALID_PARAMETER": 0x02,
    "INVALID_LENGTH": 0x03,
    "INVALID_SEQUENCE": 0x04,
    "MESSAGE_TIMEOUT": 0x05,
    "CHANNEL_BUSY": 0x06,
    "INVALID_CHANNEL": 0x07,
    "CRC_MISMATCH": 0x08,
    "MESSAGE_TOO_LARGE": 0x09,
    "CANCELLED": 0x0A,
    "OTHER": 0x7F,
}
TRANSIENT = {"INVALID_SEQUENCE", "MESSAGE_TIMEOUT", "CRC_MISMATCH"}
KEEPALIVE = {"processing": 0x01, "awaiting_user": 0x02, "pin_entry": 0x03}
BROADCAST = 0xFFFFFFFF
MAX_PAYLOAD = 4096
HOST_CHANNEL = 0x1A2B3C4D
OTHER_CHANNEL = 0x55667788


def max_payload(mtu):
    return min(MAX_PAYLOAD, (mtu - 7) + 128 * (mtu - 5) - 4)


def message_crc(channel, command, payload):
    header = channel.to_bytes(4, "big") + bytes([command]) + len(payload).to_bytes(2, "big")
    return zlib.crc32(header + payload) & 0xFFFFFFFF


def packetize(mtu, channel, command, payload):
    assert len(payload) <= max_payload(mtu)
    stream = payload + message_crc(channel, command, payload).to_bytes(4, "big")
    cid = channel.to_bytes(4, "big")
    first = stream[: mtu - 7]
    packets = [cid + bytes([command]) + len(payload).to_bytes(2, "big") + first]
    rest = stream[mtu - 7 :]
    seq = 0
    while rest:
        chunk, rest = rest[: mtu - 5], rest[mtu - 5 :]
        packets.append(cid + bytes([seq]) + chunk)
        seq += 1
    assert seq <= 128
    return [p + bytes(mtu - len(p)) for p in packets]


def pattern(n, start=0):
    return bytes(((start + i) * 31 + 7) & 0xFF for i in range(n))


def body_payload(body):
    """Payload bytes of a described control frame."""
    kind = body["type"]
    if kind == "init_request":
        return bytes.fromhex(body["nonce"])
    if kind == "init_response":
        return (
            bytes.fromhex(body["nonce"])
            + int(body["channel"], 16).to_bytes(4, "big")
            + bytes([body["version"], body["capabilities"]])
            + body["mtu"].to_bytes(2, "big")
        )
    if kind == "ack":
        return bytes([body["seq"]])
    if kind in ("nack", "error"):
        return bytes([ERRORS[body["code"]]])
    if kind in ("cancel", "wink"):
        return b""
    if kind == "keepalive":
        status = bytes([KEEPALIVE[body["status"]]])
        if body["status"] == "pin_entry":
            return status + bytes([body["entered"], body["max"]])
        return status
    raise ValueError(kind)


def message_vector(name, mtu, channel, command, payload, direction, body=None):
    vector = {
        "name": name,
        "mtu": mtu,
        "direction": direction,
        "channel": "%08x" % channel,
        "command": command,
        "command_byte": "%02x" % COMMANDS[command],
        "payload": payload.hex(),
        "crc": "%08x" % message_crc(channel, COMMANDS[command], payload),
        "packets": [p.hex() for p in packetize(mtu, channel, COMMANDS[command], payload)],
    }
    if body is not None:
        vector["body"] = body
    return vector


def reply_packets(mtu, channel, code_name):
    command = "NACK" if code_name in TRANSIENT else "ERROR"
    packets = packetize(mtu, channel, COMMANDS[command], bytes([ERRORS[code_name]]))
    return command, [p.hex() for p in packets]


def build():
    messages = []
    for mtu in (20, 64, 244):
        to_device = "to_device"
        messages.append(message_vector("ping_empty", mtu, HOST_CHANNEL, "PING", b"", to_device))
        messages.append(message_vector("ping_1_byte", mtu, HOST_CHANNEL, "PING", b"\xa5", to_device))
        fills = mtu - 11
        messages.append(
            message_vector("msg_fills_init_packet", mtu, HOST_CHANNEL, "MSG",
                           b"\x00" + pattern(fills - 1), to_device))
        messages.append(
            message_vector("msg_crc_spills_into_continuation", mtu, HOST_CHANNEL, "MSG",
                           b"\x01" + pattern(mtu - 8), to_device))
        messages.append(
            message_vector("msg_100_bytes", mtu, HOST_CHANNEL, "MSG",
                           b"\x00" + pattern(99), to_device))
        messages.append(
            message_vector("msg_600_bytes", mtu, HOST_CHANNEL, "MSG",
                           b"\x07" + pattern(599, 5), "to_host"))
        messages.append(
            message_vector("msg_maximum_size", mtu, HOST_CHANNEL, "MSG",
                           b"\x02" + pattern(max_payload(mtu) - 1, 3), to_device))

    for mtu in (20, 64):
        controls = [
            ("init_request", BROADCAST, "INIT", "to_device",
             {"type": "init_request", "nonce": "a1a2a3a4a5a6a7a8"}),
            ("init_response", BROADCAST, "INIT", "to_host",
             {"type": "init_response", "nonce": "a1a2a3a4a5a6a7a8", "channel": "%08x" % HOST_CHANNEL,
              "version": 1, "capabilities": 6, "mtu": mtu}),
            ("init_resync", HOST_CHANNEL, "INIT", "to_device",
             {"type": "init_request", "nonce": "0011223344556677"}),
            ("ack", HOST_CHANNEL, "ACK", "to_host", {"type": "ack", "seq": 0}),
            ("nack_crc_mismatch", HOST_CHANNEL, "NACK", "to_device",
             {"type": "nack", "code": "CRC_MISMATCH"}),
            ("cancel", HOST_CHANNEL, "CANCEL", "to_device", {"type": "cancel"}),
            ("wink", HOST_CHANNEL, "WINK", "to_device", {"type": "wink"}),
            ("keepalive_processing", HOST_CHANNEL, "KEEPALIVE", "to_host",
             {"type": "keepalive", "status": "processing"}),
            ("keepalive_awaiting_user", HOST_CHANNEL, "KEEPALIVE", "to_host",
             {"type": "keepalive", "status": "awaiting_user"}),
            ("keepalive_pin_entry_3_of_6", HOST_CHANNEL, "KEEPALIVE", "to_host",
             {"type": "keepalive", "status": "pin_entry", "entered": 3, "max": 6}),
            ("error_channel_busy", OTHER_CHANNEL, "ERROR", "to_host",
             {"type": "error", "code": "CHANNEL_BUSY"}),
            ("error_invalid_channel", HOST_CHANNEL, "ERROR", "to_host",
             {"type": "error", "code": "INVALID_CHANNEL"}),
            ("error_cancelled", HOST_CHANNEL, "ERROR", "to_host",
             {"type": "error", "code": "CANCELLED"}),
        ]
        for name, channel, command, direction, body in controls:
            messages.append(
                message_vector(name, mtu, channel, command, body_payload(body), direction, body))

    faults = []
    mtu = 64
    good = packetize(mtu, HOST_CHANNEL, COMMANDS["MSG"], b"\x00" + pattern(199))

    damaged = list(good)
    flipped = bytearray(damaged[1])
    flipped[10] ^= 0x01
    damaged[1] = bytes(flipped)
    faults.append(("crc_mismatch", damaged, HOST_CHANNEL, "CRC_MISMATCH", None))

    faults.append(("continuation_lost", [good[0], good[2]], HOST_CHANNEL, "INVALID_SEQUENCE", None))

    too_large = HOST_CHANNEL.to_bytes(4, "big") + bytes([COMMANDS["MSG"]]) + (MAX_PAYLOAD + 1).to_bytes(2, "big")
    faults.append(("length_over_cap", [too_large + bytes(mtu - len(too_large))], HOST_CHANNEL,
                   "MESSAGE_TOO_LARGE", None))

    faults.append(("unknown_channel", packetize(mtu, 0xDEADBEEF, COMMANDS["PING"], b"hi"), 0xDEADBEEF,
                   "INVALID_CHANNEL", None))
    faults.append(("ping_on_broadcast", packetize(mtu, BROADCAST, COMMANDS["PING"], b""), BROADCAST,
                   "INVALID_CHANNEL", None))

    unknown = HOST_CHANNEL.to_bytes(4, "big") + bytes([0x99, 0x00, 0x00])
    unknown += zlib.crc32(unknown).to_bytes(4, "big")
    faults.append(("unknown_command", [unknown + bytes(mtu - len(unknown))], HOST_CHANNEL,
                   "INVALID_COMMAND", None))

    faults.append(("busy_with_other_channel", packetize(mtu, OTHER_CHANNEL, COMMANDS["PING"], b"\x01"),
                   OTHER_CHANNEL, "CHANNEL_BUSY", "%08x" % HOST_CHANNEL))

    padded = bytearray(packetize(mtu, HOST_CHANNEL, COMMANDS["PING"], b"\x01")[0])
    padded[-1] = 0xEE
    faults.append(("nonzero_padding", [bytes(padded)], HOST_CHANNEL, "INVALID_LENGTH", None))

    fault_vectors = []
    for name, packets, channel, code, owner in faults:
        command, reply = reply_packets(mtu, channel, code)
        fault_vectors.append({
            "name": name,
            "mtu": mtu,
            "receiver": "device",
            "open_channels": ["%08x" % HOST_CHANNEL, "%08x" % OTHER_CHANNEL],
            "transaction_owner": owner,
            "packets": [p.hex() for p in packets],
            "reply_channel": "%08x" % channel,
            "reply_command": command,
            "reply_code": code,
            "reply_packets": reply,
        })

    return {
        "description": "PinBridge link layer (PROTOCOL.md section 2): frames and the exact packets "
                       "carrying them at MTU 20, 64 and 244; control frames at MTU 20 and 64; and "
                       "faulty packet sequences with the device's exact reply.",
        "note": "Generated by tests/vectors/check_link.py, an implementation written from "
                "PROTOCOL.md independently of the Rust crate, with Python's zlib.crc32 as the "
                "CRC-32/ISO-HDLC. The Rust tests (tests/link_vectors.rs) check every vector both "
                "ways against the crate (packetize -> packets, reassemble -> payload, fault -> "
                "reply). The CRC algorithm itself is pinned by the published check value below, and the "
                "CRCs of the ACK (ed18d4ef) and INIT request (e9841469) frames were also "
                "recomputed by hand with a bit-by-bit CRC-32 loop (poly 0xEDB88320), not zlib. "
                "Payload bytes are synthetic: MSG payloads are a sequence byte followed by "
                "((start + i) * 31 + 7) mod 256.",
        "crc_check": {
            "algorithm": "CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF)",
            "input_ascii": "123456789",
            "check": "cbf43926",
            "source": "CRC RevEng catalogue of parametrised CRC algorithms, entry CRC-32/ISO-HDLC",
        },
        "messages": messages,
        "faults": fault_vectors,
    }


def main():
    assert zlib.crc32(b"123456789") == 0xCBF43926
    built = build()
    if "--write" in sys.argv:
        with open(VECTORS, "w") as f:
            json.dump(built, f, indent=1)
            f.write("\n")
        print("wrote", VECTORS, len(built["messages"]), "messages", len(built["faults"]), "faults")
        return
    with open(VECTORS) as f:
        stored = json.load(f)
    if stored != built:
        for key in ("messages", "faults"):
            for a, b in zip(stored[key], built[key]):
                if a != b:
                    print("MISMATCH", key, a.get("name"), a.get("mtu"))
        sys.exit(1)
    print("ok:", len(stored["messages"]), "messages and", len(stored["faults"]), "faults recomputed")


if __name__ == "__main__":
    main()
