#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (spec/fuzz/corpus/<name>/
seed-*): valid messages of each format and a few malformed ones. The
corpora also hold inputs kept by fuzz runs (merged with -merge=1); this
script only (re)writes the seed-* files. Usage: spec/fuzz/seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- ZMTP ----------------------------------------------------------------

def greeting(major=3, minor=1, mech=b"NULL"):
    return (b"\xff" + b"\0" * 8 + b"\x7f" + bytes([major, minor]) +
            mech.ljust(20, b"\0") + b"\0" + b"\0" * 31)


def frame(body, more=False, command=False, long=False):
    flags = (1 if more else 0) | (4 if command else 0)
    if long or len(body) > 255:
        return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def command(name, body=b""):
    return frame(bytes([len(name)]) + name + body, command=True)


def ready(socket_type=b"PUSH", extra=b""):
    prop = b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    return command(b"READY", prop + extra)


def message(*parts, long=False):
    return b"".join(frame(p, more=i < len(parts) - 1, long=long)
                    for i, p in enumerate(parts))


def zmtp():
    pull = greeting() + ready(b"PUSH")      # what a PULL session hears
    push = greeting() + ready(b"PULL")
    put("zmtp", "one-part", bytes([1, 255]) + pull + message(b"hello"))
    put("zmtp", "multipart-chunked", bytes([1, 3]) + pull +
        message(b"a", b"", b"ccc" * 40))
    put("zmtp", "long-form", bytes([0x15, 16]) + pull + message(b"x" * 300, long=True))
    put("zmtp", "zero-copy", bytes([0x1d, 255]) + pull + message(b"y" * 2000) +
        message(b"z" * 5000))
    put("zmtp", "push-side", bytes([0, 7]) + push + message(b"to a push"))
    put("zmtp", "borrowed", bytes([0x21, 255]) + pull +
        b"".join(message(b"\x01\x00", b"\x02", b"\x00", b"m" * (7 * i)) for i in range(40)))
    put("zmtp", "borrowed-split", bytes([0x21, 60]) + pull +
        message(b"\x01\x00", b"\x02", b"\x00", b"s" * 100) +
        command(b"PING", b"\x00\x0a" + b"c") +
        message(b"\x01\x00", b"\x02", b"\x00", b"b" * 400) + message(b"", b"t" * 50))
    put("zmtp", "ping-pong", bytes([9, 255]) + pull +
        command(b"PING", b"\x00\x0a" + b"ctx") + command(b"PONG", b"ctx") +
        message(b"after"))
    put("zmtp", "ping-no-drain", bytes([1, 255]) + pull +
        command(b"PING", b"\x00\x01" + b"c" * 16) * 80)
    put("zmtp", "error", bytes([1, 255]) + pull + command(b"ERROR", b"\x04oops"))
    put("zmtp", "unknown-command", bytes([1, 255]) + pull + command(b"HELLO") +
        message(b"still open"))
    put("zmtp", "second-ready", bytes([1, 255]) + pull + ready(b"PUSH") + message(b"m"))
    put("zmtp", "wrong-type", bytes([1, 255]) + greeting() + ready(b"PULL"))
    put("zmtp", "empty-prop-name", bytes([1, 255]) + greeting() +
        command(b"READY", b"\x00\x00\x00\x00\x00"))
    put("zmtp", "old-major", bytes([1, 255]) + greeting(major=2) + ready())
    put("zmtp", "curve", bytes([1, 255]) + greeting(mech=b"CURVE") + ready())
    put("zmtp", "message-before-ready", bytes([1, 255]) + greeting() + message(b"early"))
    put("zmtp", "big-command-before-ready", bytes([1, 255]) + greeting() +
        frame(b"\x05READY" + b"\0" * 9000, command=True))
    put("zmtp", "over-limit", bytes([3, 255]) + pull + message(b"q" * 1001))
    put("zmtp", "too-many-parts", bytes([3, 255]) + pull + message(*([b"p"] * 5)))
    put("zmtp", "cut-short", bytes([1, 5]) + pull + message(b"r" * 100)[:60])


# ---- memory bridge -------------------------------------------------------

PROBE = 0xFFFFFFFE
READ, WRITE, POST, VERIFY = 1, 2, 3, 4


def request(tid, addr, size, typ, data=None):
    parts = [struct.pack("<I", tid), struct.pack("<Q", addr),
             struct.pack("<I", size), struct.pack("<I", typ)]
    if data is not None:
        parts.append(data)
    return message(*parts)


def response(tid, addr, size, typ, data, result=b"OK"):
    return message(struct.pack("<I", tid), struct.pack("<Q", addr),
                   struct.pack("<I", size), struct.pack("<I", typ), data, result)


def mem():
    put("mem_request", "read", request(1, 0x1000, 4, READ))
    put("mem_request", "write", request(2, 0x1000, 8, WRITE, b"\x01" * 8))
    put("mem_request", "post-then-verify", request(3, 0, 4, POST, b"abcd") +
        request(4, 0, 4, VERIFY))
    put("mem_request", "probe", request(5, 0, 0, PROBE))
    put("mem_request", "read-with-data", request(6, 0, 4, READ, b"junk"))
    put("mem_request", "large-write", request(7, 1 << 40, 3000, WRITE, b"w" * 3000))
    put("mem_request", "bad-probe", request(8, 0, 4, PROBE))
    put("mem_request", "write-short", request(9, 0, 8, WRITE, b"1234"))
    put("mem_request", "three-parts", message(b"\0" * 4, b"\0" * 8, b"\0" * 4))
    put("mem_request", "wide-id", message(b"\0" * 5, b"\0" * 8, b"\0" * 4, b"\0" * 4))
    put("mem_request", "huge-size", request(10, 0, 0x7FFFFFFF, READ))
    put("mem_response", "read-ok", response(1, 0x1000, 4, READ, b"\x11\x22\x33\x44"))
    put("mem_response", "write-ok", response(2, 0x1000, 8, WRITE, b""))
    put("mem_response", "probe-ok", response(3, 0, 0, PROBE, b""))
    put("mem_response", "error-text", response(4, 0, 4, READ, b"", b"bus error"))
    put("mem_response", "empty-result", response(5, 0, 4, READ, b"\0" * 4, b""))
    put("mem_response", "longest-result", response(6, 0, 4, READ, b"", b"e" * 999))
    put("mem_response", "result-too-long", response(7, 0, 4, READ, b"", b"e" * 1000))
    put("mem_response", "five-parts", request(8, 0, 4, READ, b"abcd"))
    put("mem_response", "seven-parts", response(9, 0, 4, READ, b"abcd") + message(b"x"))
    put("mem_response", "two-in-a-row", response(10, 4, 4, READ, b"abcd") +
        response(11, 8, 4, READ, b"efgh", b"Timeout"))


# ---- SRPv3 ---------------------------------------------------------------

def srp_header(op, tid, addr, size, hw=0x0A, version=3):
    w0 = version | (op & 3) << 8 | hw << 24
    return struct.pack("<IIIII", w0, tid, addr & 0xFFFFFFFF, addr >> 32, (size - 1) & 0xFFFFFFFF)


def srp_record(frame, ferr=0):
    return struct.pack("<HB", len(frame), ferr) + frame


def srpv3_request():
    w = srp_header(1, 1, 0x100, 8) + bytes(range(8))
    r = srp_header(0, 2, 0x100, 8)
    put("srpv3_request", "write-read", srp_record(w) + srp_record(r))
    put("srpv3_request", "post-read", srp_record(srp_header(2, 3, 0xFFC, 8) + b"P" * 8) +
        srp_record(srp_header(0, 4, 0xFF8, 16)))
    put("srpv3_request", "read-unwritten", srp_record(srp_header(0, 5, 1 << 40, 4096)))
    put("srpv3_request", "wrap", srp_record(srp_header(1, 6, (1 << 64) - 4, 8) + b"W" * 8) +
        srp_record(srp_header(0, 7, 0, 4)))
    put("srpv3_request", "bad-version", srp_record(srp_header(0, 8, 0, 4, version=2)))
    put("srpv3_request", "null-op", srp_record(srp_header(3, 9, 0, 4)))
    put("srpv3_request", "bad-sizes", srp_record(srp_header(0, 10, 0, 6)) +
        srp_record(srp_header(0, 11, 0, 4100)) + srp_record(srp_header(0, 12, 0, 0)))
    put("srpv3_request", "frame-error", srp_record(srp_header(0, 13, 0, 4), ferr=1))
    put("srpv3_request", "short-write", srp_record(srp_header(1, 14, 0, 8) + b"1234"))
    put("srpv3_request", "undersized", srp_record(b"\x03\x00\x00"))


def srp_tx(typ, size, addr, sel=0):
    return struct.pack("<BBHI", sel & 0xFE, typ, size, addr)


def srp_rx(frame, patch, ferr=0, length=None):
    n = len(frame) if length is None else length
    return struct.pack("<BHBB", 1, n, ferr, patch) + frame


def srpv3_response():
    body = lambda n: bytes(range(n))
    put("srpv3_response", "read-good", srp_tx(0, 8, 0x100) +
        srp_rx(b"\0" * 20 + body(8) + b"\0" * 4, 3))
    put("srpv3_response", "write-good", srp_tx(1, 4, 0x200) +
        srp_rx(b"\0" * 20 + body(4) + b"\0" * 4, 3))
    put("srpv3_response", "footer", srp_tx(0, 4, 0) +
        srp_rx(b"\0" * 24 + b"\x00\x01\x00\x00", 3))
    put("srpv3_response", "size-mismatch", srp_tx(3, 8, 0) +
        srp_rx(b"\0" * 20 + body(4) + b"\0" * 4, 3))
    put("srpv3_response", "header-mismatch", srp_tx(0, 4, 0) +
        srp_rx(b"\0" * 28, 1))
    put("srpv3_response", "unknown-id", srp_tx(0, 4, 0) + srp_rx(b"\0" * 28, 0))
    put("srpv3_response", "short", srp_tx(0, 4, 0) + srp_rx(b"\0" * 12, 3))
    put("srpv3_response", "errored", srp_tx(0, 4, 0) +
        srp_rx(b"\0" * 20 + body(4) + b"\0" * 4, 3, ferr=2))
    put("srpv3_response", "refused", srp_tx(0, 6, 0) + srp_tx(0, 4, 2) +
        srp_tx(4, 4, 0) + srp_tx(0, 8192, 0))
    put("srpv3_response", "post-and-two", srp_tx(2, 4, 0) + srp_tx(0, 4, 4) +
        srp_tx(0, 4, 8) + srp_rx(b"\0" * 20 + body(4) + b"\0" * 4, 3 | 4 * 2) +
        srp_rx(b"\0" * 20 + body(4) + b"\0" * 4, 3 | 4 * 1))
    put("srpv3_response", "duplicate", srp_tx(0, 4, 0) +
        srp_rx(b"\0" * 20 + body(4) + b"\0" * 4, 3) * 2)


# ---- StreamReader --------------------------------------------------------

def rec(payload, meta=0):
    return struct.pack("<II", len(payload) + 4, meta) + payload


def stream_reader():
    put("stream_reader", "records", rec(b"abc") + rec(b"d" * 300, 0x07000005) +
        rec(b"", 0x00010000))
    put("stream_reader", "empty", b"")
    put("stream_reader", "size-zero", rec(b"x") + struct.pack("<II", 0, 0))
    put("stream_reader", "short-header", rec(b"x") + b"\x09\x00\x00\x00\x01")
    put("stream_reader", "tiny-sizes", struct.pack("<II", 4, 0) + struct.pack("<II", 1, 2) +
        rec(b"after"))
    put("stream_reader", "short-payload", rec(b"y" * 100)[:50])
    put("stream_reader", "header-at-end", rec(b"z") + struct.pack("<II", 12, 0))
    put("stream_reader", "three-bytes", b"\x05\x00\x00")


# ---- batcher ---------------------------------------------------------------

VECTORS = os.path.join(HERE, "..", "..", "..", "shared", "spec", "vectors")


def vector(name):
    """The bytes of an annotated vector file (its hex lines)."""
    out = b""
    with open(os.path.join(VECTORS, name + ".txt")) as f:
        for line in f:
            if len(line) > 5 and line[4] == ":" and not line.startswith("#"):
                out += bytes.fromhex(line[5:])
    return out


def batcher():
    for name in ("batch_v1_w0", "batch_v1_w2", "batch_v1_w3"):
        put("batcher", name, b"\x00" + vector(name))
        put("batcher", name + "-buffers", b"\x02" + vector(name))
    put("batcher", "batch_v2", b"\x01" + vector("batch_v2"))
    put("batcher", "batch_v2-buffers", b"\x03" + vector("batch_v2"))
    put("batcher", "errored", b"\x34" + vector("batch_v2"))
    put("batcher", "empty-record-v1", b"\x00" + b"\x01" + b"\x00" * 15)
    put("batcher", "empty-record-v2", b"\x01" + b"\x02" + b"\x00" * 11)
    put("batcher", "huge-size", b"\x00" + vector("batch_v1_w2")[:48] + b"\xff" * 4 +
        b"\xff\x33\x44\x02")
    put("batcher", "bad-width", b"\x00\x61" + vector("batch_v1_w2")[1:])
    put("batcher", "short-v2", b"\x01\x02\x00" + b"\x00" * 7)


# ---- packetizer --------------------------------------------------------------


def pack_segments(name):
    """The segments of a pack_* vector file, one per [block] (or the file)."""
    segs, cur = [], None
    with open(os.path.join(VECTORS, name + ".txt")) as f:
        for line in f:
            if line.startswith("["):
                cur = b""
                segs.append(cur)
            elif len(line) > 5 and line[4] == ":" and not line.startswith("#"):
                if cur is None:
                    cur = b""
                    segs.append(cur)
                segs[-1] += bytes.fromhex(line[5:])
    return segs


def pack_input(control, segs, flags=0):
    out = bytes([control])
    for s in segs:
        out += struct.pack("<HB", len(s), flags) + s
    return out


def packetizer():
    for name in ("pack_v1_3byte", "pack_v1_multi"):
        put("packetizer", name, pack_input(0x04, pack_segments(name)))
    for name in ("pack_v2_3byte_crc", "pack_v2_multi_crc", "pack_v2_surf_full",
                 "pack_v2_interleaved"):
        put("packetizer", name, pack_input(0x07, pack_segments(name)))
    put("packetizer", "pack_v2_8byte_nocrc",
        pack_input(0x05, pack_segments("pack_v2_8byte_nocrc")))
    multi = pack_segments("pack_v2_multi_crc")
    put("packetizer", "reset-mid-frame", pack_input(0x07, multi[:1]) +
        struct.pack("<HB", len(multi[0]), 2) + multi[0])
    put("packetizer", "buffers-and-shared", pack_input(0x07, multi[:1], 4) +
        struct.pack("<HB", len(multi[0]), 8) + multi[0])
    put("packetizer", "bound", pack_input(0x17, multi))
    put("packetizer", "v1-replaced", pack_input(0x04, pack_segments("pack_v1_multi")[:1] +
                                                 pack_segments("pack_v1_3byte")))


# ---- SRPv0 ---------------------------------------------------------------

def srpv0_response():
    v = lambda name: vector(name)
    rd, wr = v("srpv0_read_response"), v("srpv0_write_response")
    # srp_tx/srp_rx as for SRPv3: type 0 read, 1 write, 2 post, 3 verify
    put("srpv0_response", "read-good", srp_tx(0, 8, 0x1000) + srp_rx(rd, 3))
    put("srpv0_response", "write-good", srp_tx(1, 8, 0x1000) + srp_rx(wr, 3))
    put("srpv0_response", "status", srp_tx(0, 8, 0x1000) +
        srp_rx(rd[:-4] + struct.pack("<I", 0x20000), 3))
    put("srpv0_response", "bad-length-then-good", srp_tx(0, 8, 0x1000) +
        srp_rx(rd[:-8] + rd[-4:], 3) + srp_rx(rd, 3))
    put("srpv0_response", "bad-header", srp_tx(0, 8, 0x1000) + srp_rx(rd, 1))
    put("srpv0_response", "unknown-id", srp_tx(0, 4, 0) + srp_rx(rd, 0))
    put("srpv0_response", "short", srp_tx(0, 4, 0) + srp_rx(rd[:15], 3))
    put("srpv0_response", "errored", srp_tx(0, 8, 0x1000) + srp_rx(rd, 3, ferr=1))
    put("srpv0_response", "refused", srp_tx(0, 6, 0) + srp_tx(0, 4, 2) +
        srp_tx(4, 4, 0) + srp_tx(0, 2052, 0))
    put("srpv0_response", "post-and-two", srp_tx(2, 4, 0) + srp_tx(0, 8, 0x1000) +
        srp_tx(3, 8, 0x1000) + srp_rx(rd, 3 | 4 * 2) + srp_rx(rd, 3 | 4 * 1))
    put("srpv0_response", "duplicate", srp_tx(0, 8, 0x1000) + srp_rx(rd, 3) * 2)


# ---- RSSI header ----------------------------------------------------------

def rssi_sum(hdr):
    s = sum(struct.unpack(">%dH" % (len(hdr) // 2), hdr))
    s = (s & 0xFFFF) + (s >> 16)
    return struct.pack(">H", (s ^ 0xFFFF) & 0xFFFF)


def rssi_seg(flags, seq, ack, params=None, data=b""):
    if params is None:
        hdr = bytes([flags, 8, seq, ack, 0, 0])
    else:
        hdr = bytes([flags, 24, seq, ack]) + params
    return hdr + rssi_sum(hdr) + data


def rssi_header():
    syn = struct.pack(">BBHHHHBBBBI", 0x1C, 32, 1464, 20, 5, 1000, 15, 2, 0, 3,
                      0x78000000)
    put("rssi_header", "syn", rssi_seg(0x80, 100, 0, syn))
    put("rssi_header", "synack", rssi_seg(0xC0, 100, 0, syn))
    put("rssi_header", "ack", rssi_seg(0x40, 101, 101))
    put("rssi_header", "data", rssi_seg(0x40, 101, 100, data=b"\xa1\xb2\xc3"))
    put("rssi_header", "nul", rssi_seg(0x48, 102, 101))
    put("rssi_header", "busy", rssi_seg(0x41, 107, 115))
    put("rssi_header", "rst", rssi_seg(0x10, 148, 103))
    edge = bytes.fromhex("c0184067 1c080400 00140005 03e80f02 00031234 ba3e")
    put("rssi_header", "edge", edge + b"\xff\xff")
    put("rssi_header", "edge-full", edge + b"\xff\xfe")
    put("rssi_header", "bad-sum", rssi_seg(0x40, 1, 1)[:6] + b"\0\0")
    put("rssi_header", "syn-len8", bytes([0x80, 8, 1, 1, 0, 0, 0, 0]))
    put("rssi_header", "short", b"\x40\x08\x01")


def rssi_record(seg, patch=0):
    return bytes([len(seg), patch]) + seg


def rssi_link():
    syn = struct.pack(">BBHHHHBBBBI", 0x1C, 8, 1464, 20, 5, 1000, 15, 2, 0, 3,
                      0x78000000)
    open_srv = rssi_record(rssi_seg(0x80, 100, 0, syn))
    put("rssi_link", "server-open", b"\0" + open_srv)
    data = b"".join(rssi_record(rssi_seg(0x40, 101 + k, 100, data=bytes([k]) * (k + 1)))
                    for k in range(6))
    put("rssi_link", "server-data", b"\0" + open_srv + data)
    swapped = (rssi_record(rssi_seg(0x40, 102, 100, data=b"b")) +
               rssi_record(rssi_seg(0x40, 101, 100, data=b"a")) +
               rssi_record(rssi_seg(0x40, 101, 100, data=b"a")) +
               rssi_record(rssi_seg(0x48, 103, 100)))
    put("rssi_link", "server-reorder-dup", b"\0" + open_srv + swapped)
    put("rssi_link", "server-rst", b"\0" + open_srv + rssi_record(rssi_seg(0x10, 101, 100)))
    put("rssi_link", "server-restart", b"\0" + open_srv + open_srv)
    put("rssi_link", "server-bad", b"\0" + open_srv + rssi_record(b"\x40\x08\x65\x64\0\0\0\0\x99", 2) +
        rssi_record(b"\x40\x08\x65\x64\0\0\0\0\x99", 1) + rssi_record(b"\x40"))
    synack = rssi_record(rssi_seg(0xC0, 7, 0, syn))
    put("rssi_link", "client-open", b"\1" + synack + rssi_record(rssi_seg(0x40, 8, 100, data=b"xyz")))
    put("rssi_link", "client-busy", b"\1" + synack + rssi_record(rssi_seg(0x41, 8, 100)) +
        rssi_record(rssi_seg(0xC0, 7, 0, syn)))


# ---- YAML configuration -----------------------------------------------------

def yaml_config():
    put("yaml_config", "config", b"""Top:
  enable: True
  ForceWrite: False
  Adc[0]:
    ScratchPad: 0x000000
    Mode: 'Off'
    Gain: 0.000
    Coef: '[0, 0, 0, 0]'
    Tbl: '[0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
      0x0000, 0x0000]'
    Counts: !!int '5 counts'
    Nan: !!float 'nan'
    Label: adc
""")
    put("yaml_config", "load", b"""Top:
  Adc[*]:
    Mode: Fast
    ScratchPad: 0x1234
    Thresh[*]: 100
    Coef: '[1, -2, 3, -4]'
  Adc[1]:
    Coef[3]: 7
    Gain: -1.5
    Coef: {0: 5, 2: 6}
    Tbl[2:4]: [1, 2]
""")
    put("yaml_config", "typing", b"a: Off\nb: 010\nc: 1:30\nd: 1.5e+3\ne: ~\nf: 2024-01-01\n"
        b"g: 0b101\nh: 1_000\ni: .inf\nj: 18446744073709551615\n")
    put("yaml_config", "anchors", b"base: &b {x: 1, y: 2}\nder:\n  <<: *b\n  y: 3\nl: [*b, *b]\n")
    put("yaml_config", "quoting", "s: \"caf\\u00e9\\t\\n\"\nt: 'it''s'\n"
        "u: |\n  two\n  lines\nv: >\n  folded\n  text\n".encode())
    put("yaml_config", "include", b"a: !include x.yml\n")
    put("yaml_config", "bad", b"Top:\n  a: [1, 2\n  b: !!int 'ff'\n")
    put("yaml_config", "docs", b"--- a\n--- b\n")



# ---- Python literals and display formats (model.lua) -----------------------

def py_literal():
    # first byte even: a literal; odd: a format string (the byte picks the value)
    for i, text in enumerate([b"0x10", b"-3", b"1_000", b"1.5e3", b".5", b"True", b"None",
                              b"'it\\'s \\x41'", b"[1, [2, (3,)], {'a': 4}]",
                              b"0xffffffffffffffffffff", b"[1,", b"--3", b"b'ab' b'c'"]):
        put("py_literal", "literal-%d" % i, bytes([0]) + text)
    for i, text in enumerate([b"{:#x}", b"{:#08x}", b"{:d} counts", b"{}", b"{:.3f}",
                              b"{:,}", b"{:*^12_b}", b"{!r:>9}", b"{{x}} {:e}", b"{:z.1%}"]):
        put("py_literal", "format-%d" % i, bytes([2 * i + 1]) + text)


if __name__ == "__main__":
    zmtp()
    mem()
    srpv3_request()
    srpv3_response()
    stream_reader()
    batcher()
    packetizer()
    srpv0_response()
    rssi_header()
    rssi_link()
    yaml_config()
    py_literal()
