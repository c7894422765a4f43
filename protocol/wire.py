"""MessagePack at the edge: turning untrusted bytes into plain values with
every bound checked, before any field is looked at.

Owns the structural rules of a frame: its nesting depth and number of
values (walked over the bytes before anything is built), the sizes the C unpacker may allocate, and
maps whose keys are strings given once each. `unpack_client` raises
`FrameError` on anything else; `protocol.codec` turns that into `bad_frame`.
"""
from __future__ import annotations

from typing import Any

import msgpack

from protocol.limits import Limits


class FrameError(ValueError):
    """The bytes are not one well-formed MessagePack value within bounds."""


# Header byte -> (bytes of the header's length field, fixed payload size) for
# the formats whose size the first byte alone does not give. Containers are
# handled separately. A length field of n bytes means a payload of that
# many bytes follows the field (str, bin), plus one type byte for ext.
_SIZED = {
    0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin 8/16/32
    0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),  # ext 8/16/32 (+ the type byte)
    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str 8/16/32
}
_FIXED = {  # header byte -> total size of the value in bytes
    0xC0: 1, 0xC2: 1, 0xC3: 1,  # nil, false, true
    0xCA: 5, 0xCB: 9,  # float 32/64
    0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9,  # uint 8-64
    0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9,  # int 8-64
    0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18,  # fixext 1-16
}
_CONTAINERS = {  # header byte -> (bytes of the count field, items per count)
    0xDC: (2, 1), 0xDD: (4, 1),  # array 16/32
    0xDE: (2, 2), 0xDF: (4, 2),  # map 16/32: a key and a value per entry
}


def shape_problem(data: bytes, max_depth: int, max_values: int) -> str | None:
    """Why the first value in `data` is out of shape, or None: containers
    nested over `max_depth` deep (a map holding a list is 2), or more than
    `max_values` values in all (a map's keys count). Walks the headers
    without building anything, iteratively, and stops at the first excess,
    so a hostile frame costs at most `max_values` steps. Malformed bytes
    return None: the unpacker refuses them with its own reason."""
    open_items: list[int] = []  # items still to read in each open container
    i, n = 0, len(data)
    values = 0
    while i < n:
        values += 1
        if values > max_values:
            return f"more than {max_values} values"
        b = data[i]
        count = -1  # items of a container starting here; -1: a scalar
        if b <= 0x7F or b >= 0xE0:  # positive / negative fixint
            i += 1
        elif b <= 0x8F:
            count, i = 2 * (b & 0x0F), i + 1
        elif b <= 0x9F:
            count, i = b & 0x0F, i + 1
        elif b <= 0xBF:
            i += 1 + (b & 0x1F)
        elif b in _FIXED:
            i += _FIXED[b]
        elif b in _SIZED:
            width, extra = _SIZED[b]
            i += 1 + width + extra + int.from_bytes(data[i + 1:i + 1 + width], "big")
        elif b in _CONTAINERS:
            width, per = _CONTAINERS[b]
            count = per * int.from_bytes(data[i + 1:i + 1 + width], "big")
            i += 1 + width
        else:  # 0xC1, never used
            return None
        if count >= 0 and len(open_items) + 1 > max_depth:
            return f"nested deeper than {max_depth}"
        if count > 0:
            open_items.append(count)
            continue
        # a scalar or an empty container finished: close what it completes
        while open_items:
            open_items[-1] -= 1
            if open_items[-1]:
                break
            open_items.pop()
        if not open_items:
            return None
    return None


def _pairs(pairs: list[tuple[Any, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise FrameError("a map key is given twice")
    for key in out:
        if not isinstance(key, str):
            raise FrameError("map keys must be strings")
    return out


def unpack_client(data: bytes, limits: Limits) -> Any:
    """One value from a client frame, or FrameError. Bounds on every
    container the C unpacker may allocate, so a tiny frame declaring a huge
    length is refused before any allocation."""
    problem = shape_problem(data, limits.max_depth, limits.max_values)
    if problem is not None:
        raise FrameError(problem)
    n = limits.max_frame_in
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False, use_list=True, object_pairs_hook=_pairs,
            max_str_len=n, max_bin_len=n, max_array_len=n, max_map_len=n, max_ext_len=0,
        )
    except FrameError:
        raise
    except Exception as exc:  # any malformed input: truncated, extra data, limits
        raise FrameError(f"not a MessagePack message ({type(exc).__name__})") from None
