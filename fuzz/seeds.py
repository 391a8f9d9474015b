#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/seed-*): the vectors of
PROTOCOL.md, plus calls of every method of the dispatch target's object. Run from fuzz/."""
import hashlib, os, re, struct

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def zz(n, bits=64):
    return varint((n << 1) ^ (n >> (bits - 1)) if n < 0 else n << 1)

def s(text):
    b = text.encode()
    return varint(len(b)) + b

# Value wire form (PROTOCOL.md section 4)
def V_unit(): return b"\x00"
def V_bool(b): return b"\x01" + bytes([b])
def V_int(n): return b"\x02" + zz(n)
def V_uint(n): return b"\x03" + varint(n)
def V_i128(n): return b"\x04" + zz(n, 128)
def V_u128(n): return b"\x05" + varint(n)
def V_float(f): return b"\x06" + struct.pack("<d", f)
def V_char(c): return b"\x07" + s(c)
def V_str(t): return b"\x08" + s(t)
def V_bytes(b): return b"\x09" + varint(len(b)) + b
def V_opt(v): return b"\x0a" + (b"\x00" if v is None else b"\x01" + v)
def V_seq(items): return b"\x0b" + varint(len(items)) + b"".join(items)
def V_map(pairs): return b"\x0c" + varint(len(pairs)) + b"".join(k + v for k, v in pairs)
def V_var(name, v): return b"\x0d" + s(name) + v
def V_ref(i): return b"\x0e" + varint(i)

def call(cid, method, args, flags=0, target="calc", refs=b"\x00", deadline=None):
    return (b"\x00" + varint(cid) + b"\x00" + s(target) + s(method) + refs + args + varint(flags)
            + (b"\x00" if deadline is None else b"\x01" + varint(deadline)) + b"\x00")

def typed(payload): return b"\x00" + varint(len(payload)) + payload
def positional(values): return b"\x01" + varint(len(values)) + b"".join(values)
def named(pairs): return b"\x02" + varint(len(pairs)) + b"".join(s(n) + v for n, v in pairs)

def write(target, data):
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join("corpus", target, name), "wb") as f:
        f.write(data)

vectors = {}
text = open("../PROTOCOL.md").read()
for m in re.finditer(r"^vector (\S+)\n([0-9a-f ]+)$", text, re.M):
    vectors[m.group(1)] = bytes.fromhex(m.group(2))

messages = {k: v for k, v in vectors.items() if not k.startswith(("value-", "hello", "auth-"))}
values = {k: v for k, v in vectors.items() if k.startswith("value-")}

for v in messages.values():
    write("message", v)
for v in values.values():
    write("value", v)

point = V_map([(V_str("x"), V_float(1.0)), (V_str("y"), V_float(2.5)), (V_str("label"), V_opt(V_str("p"))),
               (V_str("tags"), V_seq([V_str("t")]))])
point_seq = V_seq([V_float(0.0), V_float(-1.0), V_opt(None), V_seq([])])
extra_values = [
    V_unit(), V_bool(1), V_uint(300), V_i128(-(1 << 100)), V_u128((1 << 127) + 5), V_char("é"), V_bytes(b"\x00\xff"),
    V_seq([point, point_seq]), V_var("Polygon", V_map([(V_str("points"), V_seq([point]))])),
    V_var("Rect", V_seq([V_float(2.0), V_float(3.0)])), V_opt(V_opt(V_opt(V_int(1)))), V_ref(0),
    V_map([(V_str("a"), V_uint(1)), (V_int(-3), V_seq([V_unit(), V_bool(0)]))]),
]
for v in extra_values:
    write("value", v)

# Dispatch: every method of dopy_fuzz::Calc, typed, positional and named.
f64 = lambda x: struct.pack("<d", x)
calls = [
    call(1, "add", typed(zz(2) + zz(3))),
    call(2, "add", positional([V_int(2), V_int(3)]), flags=1),
    call(3, "accumulate", typed(zz(7))),
    call(4, "accumulate", named([("x", V_uint(7))]), flags=1),
    call(5, "total", typed(b"")),
    call(6, "divide", named([("b", V_int(0)), ("a", V_int(10))]), flags=1),
    call(7, "divide", typed(zz(10) + zz(0))),
    call(8, "centroid", typed(varint(1) + f64(1.0) + f64(2.0) + b"\x01" + s("p") + varint(1) + s("t"))),
    call(9, "centroid", positional([V_seq([point, point_seq])]), flags=1),
    call(10, "area", typed(varint(1) + f64(2.0))),
    call(11, "area", positional([V_str("Empty")]), flags=1),
    call(12, "area", positional([V_var("Polygon", V_map([(V_str("points"), V_seq([point]))]))])),
    call(13, "word_count", typed(s("a bb a") + b"\x01" + varint(2))),
    call(14, "word_count", named([("text", V_str("x x"))]), flags=1),
    call(15, "wide", typed(zz(-5, 128) + varint(7) + varint(2) + b"\x01\x02")),
    call(16, "wide", positional([V_i128(-1), V_u128(1 << 100), V_bytes(b"ab")]), flags=1),
    call(17, "echo", positional([V_map([(V_str("k"), V_seq([V_unit(), V_char("c")]))])]), flags=1),
    call(18, "echo", typed(V_var("X", V_opt(V_int(-1))))),
    call(19, "small", typed(s("c") + b"\x05" + zz(-2) + b"\x01" + varint(9) + b"\x01" + s("s"))),
    call(20, "small", positional([V_char("z"), V_uint(255), V_int(-300), V_bool(1), V_seq([V_uint(1), V_opt(None)])]), flags=1),
    call(21, "has_ref", positional([V_opt(V_ref(0))]), flags=1),
    call(22, "has_ref", typed(b"\x01\x00")),
    call(23, "dopy.methods", typed(b""), flags=1),
    call(24, "nope", typed(b"")),
]
for c in calls:
    write("dispatch", c)
    write("message", c)

# Frames: a pattern byte (read sizes), then length-prefixed payloads.
def framed(*payloads): return b"".join(struct.pack("<I", len(p)) + p for p in payloads)
msgs = list(messages.values())
for pattern, data in [
    (0, framed(*msgs[:3])), (0x5a, framed(*msgs[3:8])), (0xff, framed(b"", b"x" * 64)),
    (1, framed(b"y" * 64) + struct.pack("<I", 65)), (0x12, framed(b"ab") + b"\x03\x00\x00\x00a"),
    (0, struct.pack("<I", 0xFFFFFFFF)), (7, framed(msgs[0]) + b"\x01\x00"),
]:
    write("frame", bytes([pattern]) + data)
