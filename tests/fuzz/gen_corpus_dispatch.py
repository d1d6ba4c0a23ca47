#!/usr/bin/env python3
# Writes the checked-in seed corpus of fuzz_dispatch (see the input layout
# at the top of fuzz_dispatch.c): CONF records for the built-in plugins,
# then the records that reach their hooks. Run: python3 tests/fuzz/gen_corpus_dispatch.py
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-dispatch")
CONF, ACCESS, REWRITE, HEADER_FILTER, LOG, FORGET = range(1, 7)


def mp(v):
    """The msgpack of v (dict, list, str, bool, None, int >= 0)."""
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        return bytes([v]) if v < 128 else b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, str):
        s = v.encode()
        return (bytes([0xA0 | len(s)]) if len(s) < 32 else b"\xd9" + bytes([len(s)])) + s
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())


def rec(typ, payload, req=True):
    return struct.pack("<BBH", typ, 1 if req else 0, len(payload)) + payload


def conf(cid, plugin, config):
    return rec(CONF, mp({"conf": cid, "plugin": plugin, "config": config}))


def access(cid, typ=ACCESS, **fields):
    return rec(typ, mp(dict({"conf": cid, "method": "GET", "path": "/a"}, **fields)))


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "key-auth": conf(1, "key-auth", {"key_names": ["apikey"]})
        + access(1, headers={"apikey": "k"}) + access(1, entities=[[1, "k", None]]),
        "request-transformer": conf(2, "request-transformer",
                                    {"remove": {"querystring": ["secret"]},
                                     "rename": {"headers": ["x-old:x-new"]}})
        + access(2, headers={"x-old": "1"}, query={"secret": "1"}),
        "correlation-id": conf(3, "correlation-id", {"header_name": "x-id"})
        + access(3) + access(3, HEADER_FILTER, status=200),
        "rate-limiting": conf(4, "rate-limiting", {"second": 2, "policy": "local"})
        + access(4) * 3,
        "log": conf(5, "log", {"path": "log.txt"})
        + rec(LOG, mp({"conf": 5, "entry": {"status": 200}}), req=False),
        "unknown": conf(6, "nosuch", {}) + access(99) + rec(9, b"\x80")
        + rec(LOG, mp({"conf": 98}), req=True),
        "forget": rec(FORGET, mp({"all": True})) + rec(FORGET, mp({"entities": [[1, "k"]]})),
        "poison": conf(7, "hello", {}) + access(7) + access(7),
    }
    for name, data in seeds.items():
        if name != "poison":
            data = b"\x00" + data
        else:
            data = b"\x03" + data
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
