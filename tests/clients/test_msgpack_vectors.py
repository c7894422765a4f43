"""The shared MessagePack vectors agree with Python's msgpack, and the
checked-in file is what the generator produces."""
from __future__ import annotations

import math

import msgpack
import pytest

from tests.clients import msgpack_vectors as mv


def same(a, b) -> bool:
    """Equality that tells 1 from 1.0 from True, -0.0 from 0.0, and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def test_checked_in_vectors_are_current():
    assert mv.VECTORS_PATH.read_text(encoding="utf-8") == mv.render(), \
        "run: python tests/clients/msgpack_vectors.py"


def test_vectors_cover_the_protocol_types():
    kinds = set()

    def walk(t):
        if t is None or isinstance(t, bool):
            kinds.add(type(t).__name__)
            return
        (kind, inner), = t.items()
        kinds.add(kind)
        if kind == "array":
            for v in inner:
                walk(v)
        elif kind == "map":
            for _, v in inner:
                walk(v)

    for v in mv.load()["valid"]:
        walk(v["value"])
    assert kinds >= {"NoneType", "bool", "int", "float", "str", "bin", "array", "map"}
    prefixes = {bytes.fromhex(v["hex"])[0] for v in mv.load()["valid"]}
    # uint64, int64, float64, str8, str16, bin8, bin16, array16, map16 all appear
    assert {0xcf, 0xd3, 0xcb, 0xd9, 0xda, 0xc4, 0xc5, 0xdc, 0xde} <= prefixes


@pytest.mark.parametrize("vector", mv.load()["valid"], ids=lambda v: v["name"])
def test_python_msgpack_agrees_with_each_vector(vector):
    value = mv.untag(vector["value"])
    assert msgpack.packb(value, use_bin_type=True).hex() == vector["hex"]
    assert same(msgpack.unpackb(bytes.fromhex(vector["hex"]), raw=False), value)


@pytest.mark.parametrize("vector", [v for v in mv.load()["invalid"] if v["python_rejects"]],
                         ids=lambda v: v["name"])
def test_python_msgpack_refuses_the_invalid_vectors(vector):
    with pytest.raises(Exception):
        msgpack.unpackb(bytes.fromhex(vector["hex"]), raw=False, strict_map_key=True, max_ext_len=0)
