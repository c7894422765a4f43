"""PROTOCOL.md's tables, generated from the declaration.

The document marks each generated table with `<!-- generated:NAME -->` and
`<!-- /generated -->`; `python -m protocol.gen_doc` rewrites what lies
between from the tables below (`--check` only says whether the file is up
to date, exit status 1 if not). A test keeps the file equal to its
regenerated self, so the prose around the tables is the only hand-written
part.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from protocol.connection import TRANSITIONS, ConnectionPolicy
from protocol.entities import FLAGS, HEARING_RANGE, KINDS, ROWS, VIEW_CELL_TILES, VIEW_RADIUS_CELLS, VIEW_SIDE_TILES
from protocol.errors import CLOSE_DOCS, ERROR_DOCS
from protocol.limits import DEFAULT_LIMITS as L, SERVER_BOUNDS as B
from protocol import board as QB, trade as T
from protocol.schema import (BOOL, CLIENT_MESSAGES, GOODS, INT, SERVER_MESSAGES, STR, STRING_RULE, TILE, Field,
                             MessageSpec)

DOC = Path(__file__).resolve().parent / "PROTOCOL.md"
REGION = re.compile(r"(<!-- generated:([a-z-]+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def _table(header: tuple[str, ...], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _num(v: float | None) -> str:
    if v is None:
        return ""
    if not float(v).is_integer():
        return str(v)
    return {2**53: "2^53", 2**32 - 1: "2^32-1"}.get(int(v), str(int(v)))


def _kind(f: Field) -> str:
    if f.kind == TILE:
        return "[x, y]"
    if f.kind == BOOL and f.choices:
        return " / ".join(str(c).lower() for c in f.choices)
    if f.kind == INT and f.choices:
        return "int = " + " / ".join(str(c) for c in f.choices)
    if f.kind == STR and f.choices:
        return "str (" + " ".join(f"`{c}`" for c in f.choices) + ")"
    return f.shape or f.kind


def _field(f: Field) -> str:
    text = f"`{f.name}` {_kind(f)}{'' if f.required else '?'}"
    return f"{text}: {f.doc}" if f.doc else text


def _messages(table: dict[str, MessageSpec]) -> str:
    rows = [(f"`{s.type}`", "<br>".join(_field(f) for f in s.fields) or "—", s.doc) for s in table.values()]
    return _table(("type", "fields (`?`: optional)", "meaning"), rows)


def _field_limit(f: Field) -> tuple[str, str] | None:
    """(value, on violation) for one client field, or None for the seq-like
    groups handled together."""
    if f.kind == STR and f.choices:
        return "one of " + ", ".join(f"`{c}`" for c in f.choices), "`bad_value`"
    if f.kind == STR:
        rule = f"; {f.rule}" if f.rule else ""
        return (f"{_num(f.lo)}-{_num(f.hi)} characters{rule}; {STRING_RULE}",
                "`too_long` if longer; `bad_value` if empty or otherwise wrong")
    if f.kind == INT and f.choices:
        return " or ".join(str(c) for c in f.choices), f"`{f.refuse}` (`bad_type` if not an integer)"
    if f.kind == INT:
        return f"integer {_num(f.lo)} .. {_num(f.hi)}", "`out_of_range`"
    if f.kind == TILE:
        return f"two integers, each {_num(f.lo)} .. {_num(f.hi)}", "`out_of_range` / `bad_type`"
    if f.kind == BOOL and f.choices:
        return " or ".join(str(c).lower() for c in f.choices), "`bad_value` (`bad_type` if not a boolean)"
    if f.kind == GOODS:
        return (f"at most {T.MAX_OFFER_LINES} lines `[item, n]`, item as `item`, n {_num(f.lo)} .. {_num(f.hi)}",
                "`too_long` / `bad_type` / `bad_value` / `out_of_range`")
    return None


def _limits() -> str:
    p = ConnectionPolicy()
    groups: dict[tuple[str, str], list[str]] = {}
    for spec in CLIENT_MESSAGES.values():
        for f in spec.fields:
            got = _field_limit(f)
            if got is not None:
                groups.setdefault(got, []).append(f"{spec.type}.{f.name}")
    field_rows = []
    for (value, violation), where in groups.items():
        seqs = [w for w in where if w.endswith(".seq")]
        if len(seqs) == len(CLIENT_MESSAGES):  # `seq` is the same field in every message
            where = ["seq"] + [w for w in where if w not in seqs]
        label = ", ".join(f"`{w}`" for w in where).replace("`seq`", "`seq` (any message)")
        field_rows.append((label, value, violation))
    rows = [
        ("frame size", f"{L.max_frame_in} bytes, binary or text (text in bytes of UTF-8)", "close 1009"),
        ("nesting", f"maps and arrays {L.max_depth} deep (a message holding a tile is 2)", "`bad_frame`"),
        ("values per frame", f"{L.max_values}, counting keys, values and list items", "`bad_frame`"),
        ("map keys", "strings, each key at most once", "`bad_frame`"),
        ("fields per message", f"{L.max_keys} besides `t`", "`too_long`"),
        ("numbers", "MessagePack integers where `int` is declared (never floats); no NaN or infinity anywhere",
         "`bad_type` / `not_finite`"),
        *field_rows,
        ("message rate", f"{p.rate_per_s:g} per second sustained, bursts of {p.burst}",
         "`rate_limited` (message dropped)"),
        ("messages waiting for the next tick", f"{B.max_pending_per_client} per connection", "`rate_limited`"),
        ("connections from one address", str(B.max_clients_per_ip), "close 1008"),
        ("rejected messages", f"more than {p.max_errors} within {p.error_window_s:g} s", "close 4005"),
        ("time to send `hello`", f"{B.join_timeout_s:g} s after connecting", "close 4004"),
        ("reading", f"a state update may wait {B.slow_reader_timeout_s:g} s for you to read it", "close 4001"),
    ]
    return _table(("limit", "value", "on violation"), rows)


def _states() -> str:
    rows = [(f"`{state}`", ", ".join(f"`{t}` → `{nxt}`" for t, nxt in allowed.items()) or "nothing")
            for state, allowed in TRANSITIONS.items()]
    return _table(("state", "accepted message → next state (anything else: `not_joined` or `already_joined`)"),
                  rows)


def _rows() -> str:
    where = {"enter": "`state.enter`", "move": "`state.move`", "upd": "`state.upd`",
             "place": "`welcome.map.places`", "shop": "`shop.goods`",
             "quest": "`board.quests`", "notice": "`board.notices`"}
    rows = [(where[name], "[" + ", ".join(cols) + "]") for name, cols in ROWS.items()]
    return _table(("row of", "columns, in order"), rows)


def _flags() -> str:
    return _table(("flag", "bit", "meaning"), [(f"`{n}`", str(bit), doc) for n, (bit, doc) in FLAGS.items()])


def _world() -> str:
    rows = [
        ("entity kinds", ", ".join(f"`{k}`" for k in KINDS)),
        ("hearing range", f"{HEARING_RANGE} tiles (Euclidean distance, inclusive)"),
        ("view", f"cells of {VIEW_CELL_TILES} x {VIEW_CELL_TILES} tiles; your cell and those within "
                 f"{VIEW_RADIUS_CELLS}: {VIEW_SIDE_TILES} x {VIEW_SIDE_TILES} tiles"),
    ]
    return _table(("constant", "value"), rows)


def _economy() -> str:
    rows = [
        ("coins", f"`{T.COINS}`: the name of coins as an item of `give`"),
        ("hand-over range", f"{T.HANDOVER_RANGE} tiles (Chebyshev distance): `give`, `buy`, `sell`, `offer` and "
                            "`accept` need the other party this close"),
        ("largest stack", f"{T.MAX_STACK} of one item per holder"),
        ("most coins", f"{T.MAX_COINS:,} per holder"),
        ("offer lifetime", f"{T.OFFER_TTL_TICKS} ticks"),
        ("open offers", f"{T.MAX_OPEN_OFFERS} made by one player at a time"),
        ("offer states", ", ".join(f"`{s}`" for s in T.OFFER_STATES)),
    ]
    return _table(("constant", "value"), rows)


def _board() -> str:
    rows = [
        ("the board's place", f"`{QB.BOARD_PLACE}` (in `welcome.map.places`)"),
        ("turn-in range", f"{QB.BOARD_RANGE} tiles (Chebyshev distance) of the board's entry, or the hand-over "
                          "range of the quest's poster"),
        ("open quests", f"{QB.MAX_OPEN_QUESTS} at most"),
        ("quest lifetime", f"{QB.QUEST_TTL_TICKS:,} ticks (a game day)"),
        ("notice length", f"{QB.MAX_NOTICE_TEXT} characters"),
        ("notices", f"{QB.MAX_NOTICES} on the board (the oldest comes down), {QB.MAX_NOTICES_PER_AUTHOR} by one "
                    "person"),
    ]
    return _table(("constant", "value"), rows)


def _errors() -> str:
    return _table(("code", "meaning"), [(f"`{c}`", doc) for c, doc in ERROR_DOCS.items()])


def _closes() -> str:
    return _table(("code", "reason", "reconnect?"),
                  [(str(int(c)), d.reason, "yes" if d.reconnect else "no") for c, d in CLOSE_DOCS.items()])


TABLES: dict[str, Callable[[], str]] = {
    "limits": _limits, "states": _states, "client-messages": lambda: _messages(CLIENT_MESSAGES),
    "server-messages": lambda: _messages(SERVER_MESSAGES), "rows": _rows, "flags": _flags,
    "world": _world, "economy": _economy, "board": _board, "errors": _errors, "closes": _closes,
}


def render(text: str) -> str:
    """`text` with every generated region rewritten; every table must have
    exactly one region."""
    seen: list[str] = []

    def fill(m: re.Match) -> str:
        name = m.group(2)
        if name not in TABLES:
            raise ValueError(f"unknown generated region {name!r}")
        seen.append(name)
        return m.group(1) + TABLES[name]() + m.group(4)

    out = REGION.sub(fill, text)
    if sorted(seen) != sorted(TABLES):
        raise ValueError(f"generated regions {sorted(seen)} != tables {sorted(TABLES)}")
    return out


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    fresh = render(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{DOC} is out of date: run python -m protocol.gen_doc", file=sys.stderr)
            return 1
        return 0
    if fresh != text:
        DOC.write_text(fresh, encoding="utf-8")
        print(f"rewrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
