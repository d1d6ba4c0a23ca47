#!/usr/bin/env python3
# Writes the checked-in seed corpus of fuzz_ring (see the input layout at the
# top of fuzz_ring.c). Run from anywhere: python3 tests/fuzz/gen_corpus.py
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
RING = 4096

PEEK, RELEASE, READY, ARM, TAIL, CLAIM, HEAD, FLIP = range(8)


def op(kind, arg=0):
    return bytes([kind | (arg << 3)])


def rec(payload, typ=2, flags=0, req_id=1):
    b = struct.pack("<IHHQ", len(payload), typ, flags, req_id) + payload
    return b + b"\0" * (-len(b) % 8)


def pad(nbytes):
    return struct.pack("<IHH", nbytes, 0, 0) + b"\0" * (nbytes - 8)


def mp_str(s):
    s = s.encode()
    return bytes([0xA0 | len(s)]) + s


def mp_snapshot():
    # {"conf": 7, "plugin": "jwt", "headers": {"authorization": "Bearer x"}}
    return (b"\x83" + mp_str("conf") + b"\x07" + mp_str("plugin") + mp_str("jwt")
            + mp_str("headers") + b"\x81" + mp_str("authorization") + mp_str("Bearer x"))


def seed(flags, in_head, ring, ops, in_len=None, out_head=0, out_used=0):
    if in_len is None:
        in_len = len(ring)
    hdr = struct.pack("<BBHIQIIQ", flags, len(ops), 0, in_len, in_head, out_used, 0, out_head)
    assert len(hdr) == 32
    return hdr + ring + ops


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    three = rec(mp_snapshot(), req_id=1) + rec(b"\x90", req_id=2) + rec(b"", 5, req_id=3)
    seeds["server-three-records"] = seed(0, 0, three, op(PEEK) * 3 + op(RELEASE) + op(PEEK))
    wrapped = pad(64) + rec(mp_snapshot(), 0x80, req_id=9)
    seeds["client-wrap-pad64"] = seed(1, RING - 64, wrapped,
                                      op(ARM) + op(PEEK) + op(PEEK) + op(RELEASE) + op(ARM))
    seeds["server-wrap-pad8"] = seed(0, 3 * RING - 8, pad(8) + rec(b"\xc0"),
                                     op(PEEK) + op(RELEASE))
    seeds["server-pad-at-zero"] = seed(0, RING, pad(RING), op(PEEK) + op(READY))
    seeds["server-len-too-big"] = seed(0, 0, struct.pack("<IHHQ", 4000, 2, 0, 1), op(PEEK))
    seeds["server-tail-moves"] = seed(0, 0, three, op(PEEK) + op(TAIL, 3) + op(PEEK) * 3
                                      + op(FLIP, 1) + op(PEEK), in_len=24)
    seeds["client-produce"] = seed(1, 0, b"", op(CLAIM, 2) * 40 + op(HEAD, 8) + op(CLAIM, 31),
                                   out_used=RING - 64)
    seeds["raw-positions"] = seed(2, (1 << 63) + 3, three, op(PEEK) + op(READY), in_len=0xFFFFFFFF)
    big = b"".join(rec(bytes([i]) * (i * 8 % 200), req_id=i) for i in range(1, 40))
    big = big[:RING]
    seeds["server-full-ring"] = seed(0, 512, big + b"\0" * (RING - len(big)),
                                     op(PEEK) * 64 + op(RELEASE) + op(CLAIM, 5) * 8,
                                     in_len=len(big))
    seeds["mp-only"] = b"\x00" + mp_snapshot()
    seeds["mp-hostile-count"] = b"\x00\xdd\xff\xff\xff\xff"
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
