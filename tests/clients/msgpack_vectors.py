"""Shared MessagePack test vectors for the browser codec (client_demo/web/msgpack.js).

The vectors are built here from Python values and packed with the Python
`msgpack` package; `python tests/clients/msgpack_vectors.py` writes them to
msgpack_vectors.json beside this file, which the browser test loads. JSON
cannot hold every MessagePack value exactly, so each value is written in a
tagged form that both sides understand:

    null, true, false          themselves
    {"int": "123"}             an integer, as a decimal string (64-bit exact)
    {"float": 1.5}             a float64 ("nan", "inf", "-inf" for those)
    {"str": "..."}             a UTF-8 string
    {"bin": "00ff"}            binary, as hex
    {"array": [...]}           an array of tagged values
    {"map": [[k, v], ...]}     a map with string keys, in order

`same_bytes` is false where JavaScript cannot ask for the same encoding
(a float with an integral value is a plain Number there and is sent as an
integer, as the protocol wants). `invalid` vectors must be refused.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgpack

VECTORS_PATH = Path(__file__).with_name("msgpack_vectors.json")


def tag(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"float": "nan"}
        if math.isinf(value):
            return {"float": "inf" if value > 0 else "-inf"}
        return {"float": value}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    if isinstance(value, list):
        return {"array": [tag(v) for v in value]}
    if isinstance(value, dict):
        return {"map": [[k, tag(v)] for k, v in value.items()]}
    raise TypeError(type(value))


def untag(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    (kind, inner), = value.items()
    if kind == "int":
        return int(inner)
    if kind == "float":
        return float(inner) if isinstance(inner, str) else float(inner)
    if kind == "str":
        return inner
    if kind == "bin":
        return bytes.fromhex(inner)
    if kind == "array":
        return [untag(v) for v in inner]
    if kind == "map":
        return {k: untag(v) for k, v in inner}
    raise ValueError(kind)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _values() -> list[tuple[str, Any]]:
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1, 2**53, 2**53 + 1,
            2**63 - 1, 2**63, 2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1,
            -2**53 + 1, -2**53 - 1, -2**63]
    out: list[tuple[str, Any]] = [("nil", None), ("false", False), ("true", True)]
    out += [(f"int {i}", i) for i in ints]
    out += [(f"float {f!r}", f) for f in (0.5, -1.25, 3.141592653589793, 1e-300, 1.7976931348623157e308,
                                          5e-324, 20.0, 0.0, -0.0, float("inf"), float("-inf"), float("nan"))]
    out += [
        ("empty string", ""),
        ("ascii string", "hello, village"),
        ("fixstr limit 31", "a" * 31),
        ("str8 32", "b" * 32),
        ("str8 255", "c" * 255),
        ("str16 256", "d" * 256),
        ("utf-8 accents", "Grüße, café, naïve"),
        ("utf-8 cjk", "村の広場で会いましょう"),
        ("utf-8 astral emoji", "🎭 to be 🐉"),
        ("newline and quotes", 'line one\nline "two"'),
        ("280 code points of 4-byte UTF-8", "𝄞" * 280),
        ("empty bin", b""),
        ("bin bytes", bytes(range(256))),
        ("bin16", bytes(300)),
        ("empty array", []),
        ("fixarray 15", list(range(15))),
        ("array16 16", list(range(16))),
        ("array16 300", list(range(300))),
        ("empty map", {}),
        ("fixmap 15", {f"k{i}": i for i in range(15)}),
        ("map16 16", {f"k{i}": i for i in range(16)}),
        ("nested", {"a": [1, [2, [3, {"b": None}]]], "c": {"d": {"e": "f"}}}),
        ("__proto__ key", {"__proto__": 1, "constructor": 2}),
        ("hello message", {"t": "hello", "v": 1, "name": "ann", "token": "6EkSp1crEr3kuU_FVWDtotmUGcv7Dg7C",
                           "seq": 4294967295}),
        ("move message", {"t": "move", "to": [64, 48], "seq": 7}),
        ("say message", {"t": "say", "text": "Hallo Mira! 👋", "to": 2, "seq": 8}),
        ("state message", {"t": "state", "tick": 123456, "enter": [[4, "npc", "Elena", 75, 24, 0],
                                                                   [1, "player", "ann", 60, 45, 2]],
                           "move": [[4, 76, 24]], "leave": [9, 10], "upd": [[4, 1]]}),
        ("welcome message", {"t": "welcome", "v": 1, "id": 1, "token": "tok", "resumed": False, "tick": 1,
                             "tick_rate": 20.0, "grace_s": 60.5,
                             "map": {"name": "village", "w": 3, "h": 2, "tiles": bytes([5, 0, 1, 2, 3, 4]),
                                     "places": [["square", "square", 0, 0, 2, 2, 1, 1]]},
                             "limits": {"max_text": 280, "max_name": 24, "max_frame": 4096}}),
        ("error message", {"t": "error", "code": "too_long", "msg": "text is longer than 280 characters",
                           "seq": 3}),
    ]
    return out


def large_values() -> list[tuple[str, Any]]:
    """Values whose encodings are too big for the checked-in file (32-bit
    lengths); tests build these vectors at run time with the same packer."""
    return [("str32 70000", "e" * 70000), ("bin32 70000", bytes(range(256)) * 274),
            ("array32 70000", [0] * 70000), ("map32 70000", {f"k{i}": i for i in range(70000)})]


def js_integral(value: float) -> bool:
    """JavaScript sends this float as an integer (a safe integral Number)."""
    return math.isfinite(value) and value == int(value) and abs(value) <= 2**53 - 1


def _same_bytes(value: Any) -> bool:
    """False where JavaScript's one Number type cannot produce Python's bytes."""
    if isinstance(value, float):
        return not js_integral(value)
    if isinstance(value, list):
        return all(_same_bytes(v) for v in value)
    if isinstance(value, dict):
        return all(_same_bytes(v) for v in value.values())
    return True


# Bytes that a decoder must refuse. `python` says whether Python's msgpack
# (with the protocol's settings) refuses them too; the depth bound is the
# JavaScript decoder's own.
_INVALID = [
    ("empty input", b"", True),
    ("truncated uint32", b"\xce\x00\x01", True),
    ("truncated str8", b"\xd9\x05abc", True),
    ("truncated array", b"\x93\x01\x02", True),
    ("array32 claiming 4 billion items", b"\xdd\xff\xff\xff\xff\x01", True),
    ("map16 claiming more than is there", b"\xde\xff\xff\xa1a\x01", True),
    ("trailing bytes", b"\x01\x02", True),
    ("reserved byte 0xc1", b"\xc1", True),
    ("fixext1", b"\xd4\x01\x00", True),
    ("ext8", b"\xc7\x01\x05\x00", True),
    ("invalid UTF-8", b"\xa2\xc3\x28", True),
    ("integer map key", b"\x81\x01\x02", True),
    ("nested 40 deep", b"\x91" * 40 + b"\x00", False),
]


def vector(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "value": tag(value), "hex": pack(value).hex(), "same_bytes": _same_bytes(value)}


def build() -> dict[str, Any]:
    valid = [vector(name, value) for name, value in _values()]
    invalid = [{"name": name, "hex": data.hex(), "python_rejects": py} for name, data, py in _INVALID]
    return {"valid": valid, "invalid": invalid}


def render() -> str:
    """One vector per line, so that a change shows as a readable diff."""
    data = build()
    lines = ["{"]
    for i, key in enumerate(("valid", "invalid")):
        lines.append(f' "{key}": [')
        rows = [json.dumps(v, ensure_ascii=False) for v in data[key]]
        lines.append(",\n".join("  " + r for r in rows))
        lines.append(" ]" + ("," if i == 0 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def load() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


if __name__ == "__main__":
    VECTORS_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")
