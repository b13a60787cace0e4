#!/usr/bin/env python3
"""Decodes the rig's btmon capture (PINBRIDGE_RIG_TRACE=1 -> btmon.snoop) into one line per
ATT PDU per controller: time, hciN, TX/RX, bearer (fixed CID 4 or an EATT credit-based
channel), opcode and the first bytes of each value (a PinBridge packet starts with its
channel id and command byte). Debian 12's btmon 5.66 crashes on these captures; this reads
the btsnoop (Linux monitor) format itself. Compare a controller's TX with the other's RX to
see where a packet went missing or overtook another.

Usage: att-trace.py btmon.snoop [--credits]
"""
import struct
import sys

ATT = {0x01: "ERROR", 0x02: "MTU_REQ", 0x03: "MTU_RSP", 0x04: "FIND_INFO_REQ",
       0x05: "FIND_INFO_RSP", 0x08: "READ_BY_TYPE_REQ", 0x09: "READ_BY_TYPE_RSP",
       0x0A: "READ_REQ", 0x0B: "READ_RSP", 0x10: "READ_BY_GROUP_REQ", 0x11: "READ_BY_GROUP_RSP",
       0x12: "WRITE_REQ", 0x13: "WRITE_RSP", 0x1B: "NOTIFY", 0x1D: "INDICATE", 0x1E: "CONFIRM",
       0x23: "NOTIFY_MULTIPLE", 0x52: "WRITE_CMD"}
EPOCH_US = 0x00DCDDB30F2F8000  # btsnoop time zero (year 0) to the Unix epoch, microseconds


def records(data):
    if data[:8] != b"btsnoop\0":
        sys.exit("not a btsnoop file")
    offset = 16
    while offset + 24 <= len(data):
        _, length, flags, _, stamp = struct.unpack(">IIIIq", data[offset:offset + 24])
        body = data[offset + 24:offset + 24 + length]
        offset += 24 + length
        yield (stamp - EPOCH_US) / 1e6, flags >> 16, flags & 0xFFFF, body


def describe(pdu):
    opcode = pdu[0]
    name = ATT.get(opcode, f"0x{opcode:02x}")
    if opcode in (0x12, 0x1B, 0x1D, 0x52) and len(pdu) >= 3:
        handle = struct.unpack("<H", pdu[1:3])[0]
        return f"{name} handle=0x{handle:04x} len={len(pdu) - 3} {pdu[3:11].hex()}"
    if opcode == 0x23:
        rest, values = pdu[1:], []
        while len(rest) >= 4:
            handle, length = struct.unpack("<HH", rest[:4])
            values.append(f"0x{handle:04x}:{length}:{rest[4:10].hex()}")
            rest = rest[4 + length:]
        return f"{name} n={len(values)} " + " ".join(values)
    if opcode in (0x02, 0x03):
        return f"{name} mtu={struct.unpack('<H', pdu[1:3])[0]}"
    return name


def main():
    show_credits = "--credits" in sys.argv
    acl, sdus = {}, {}
    for when, index, opcode, body in records(open(sys.argv[1], "rb").read()):
        if opcode not in (4, 5):  # ACL TX, ACL RX
            continue
        way = "TX" if opcode == 4 else "RX"
        word, length = struct.unpack("<HH", body[:4])
        handle, boundary = word & 0xFFF, (word >> 12) & 3
        key = (index, way, handle)
        if boundary != 1:  # a start fragment: the L2CAP header says how long the frame is
            acl[key] = [struct.unpack("<H", body[4:6])[0] + 4, bytearray(body[4:4 + length])]
        elif key in acl:
            acl[key][1] += body[4:4 + length]
        else:
            print(f"{when:.6f} hci{index} {way} continuation fragment without a start")
            continue
        need, frame = acl[key]
        if len(frame) < need:
            continue
        del acl[key]
        cid = struct.unpack("<H", frame[2:4])[0]
        payload = bytes(frame[4:need])
        prefix = f"{when:.6f} hci{index} {way}"
        if cid == 4:
            print(f"{prefix} fixed {describe(payload)}")
        elif cid == 5:
            if payload[0] == 0x16:  # LE flow control credit
                if show_credits:
                    channel, credits = struct.unpack("<HH", payload[4:8])
                    print(f"{prefix} credits channel=0x{channel:04x} +{credits}")
            else:
                print(f"{prefix} signalling code=0x{payload[0]:02x}")
        elif cid >= 0x40:  # a credit-based channel: EATT; the first K-frame has the SDU length
            skey = key + (cid,)
            if skey not in sdus:
                sdus[skey] = [struct.unpack("<H", payload[:2])[0], bytearray(payload[2:])]
            else:
                sdus[skey][1] += payload
            total, sdu = sdus[skey]
            if len(sdu) >= total:
                del sdus[skey]
                print(f"{prefix} eatt-0x{cid:04x} {describe(bytes(sdu))}")


if __name__ == "__main__":
    main()
