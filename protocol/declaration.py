"""The whole protocol as one plain-data declaration: message types and their
fields, limits, error and close codes with their wording, the rows of
`state`, flags, hearing range and view.

`declaration()` assembles it from the modules that own each part (schema,
limits, errors, entities, connection). The server serves it as
`/protocol.json` for the clients; `protocol.gen_doc` renders PROTOCOL.md's
tables from the same values.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from protocol.connection import TRANSITIONS, ConnectionPolicy
from protocol.entities import (FLAGS, HEARING_RANGE, KINDS, ROWS, VIEW_CELL_TILES, VIEW_RADIUS_CELLS,
                               VIEW_SIDE_TILES)
from protocol.errors import CLOSE_DOCS, ERROR_DOCS
from protocol.limits import DEFAULT_LIMITS, PROTOCOL_VERSION, SERVER_BOUNDS, SUBPROTOCOL
from protocol import board, trade
from protocol.schema import CLIENT_MESSAGES, SERVER_MESSAGES, STRING_RULE, Field, MessageSpec


def _number(v: float | None) -> float | int | None:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def field_data(f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "kind": f.kind, "required": f.required}
    if f.lo is not None:
        out["lo"] = _number(f.lo)
    if f.hi is not None:
        out["hi"] = _number(f.hi)
    if f.choices:
        out["choices"] = list(f.choices)
    if f.rule:
        out["rule"] = f.rule
    if f.shape:
        out["shape"] = f.shape
    if f.doc:
        out["doc"] = f.doc
    return out


def message_data(spec: MessageSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"doc": spec.doc, "fields": [field_data(f) for f in spec.fields]}
    if spec.one_of:
        out["one_of"] = list(spec.one_of)
    return out


def declaration() -> dict[str, Any]:
    """Everything a client needs to know, as JSON-ready data."""
    return {
        "version": PROTOCOL_VERSION,
        "subprotocol": SUBPROTOCOL,
        "limits": dataclasses.asdict(DEFAULT_LIMITS),
        "string_rule": STRING_RULE,
        "policy": dataclasses.asdict(ConnectionPolicy()),
        "server_bounds": dataclasses.asdict(SERVER_BOUNDS),
        "messages": {
            "client": {t: message_data(s) for t, s in CLIENT_MESSAGES.items()},
            "server": {t: message_data(s) for t, s in SERVER_MESSAGES.items()},
        },
        "states": {str(state): sorted(allowed) for state, allowed in TRANSITIONS.items()},
        "errors": {str(code): doc for code, doc in ERROR_DOCS.items()},
        "closes": {str(int(code)): {"reason": d.reason, "reconnect": d.reconnect}
                   for code, d in CLOSE_DOCS.items()},
        "rows": {name: list(cols) for name, cols in ROWS.items()},
        "kinds": list(KINDS),
        "flags": {name: {"bit": bit, "doc": doc} for name, (bit, doc) in FLAGS.items()},
        "hearing_range": HEARING_RANGE,
        "economy": {
            "coins": trade.COINS, "item_rule": trade.ITEM_RULE, "max_item_name": trade.MAX_ITEM_NAME,
            "max_count": trade.MAX_COUNT, "max_price": trade.MAX_PRICE, "max_offer_lines": trade.MAX_OFFER_LINES,
            "max_stack": trade.MAX_STACK, "max_coins": trade.MAX_COINS, "handover_range": trade.HANDOVER_RANGE,
            "offer_ttl_ticks": trade.OFFER_TTL_TICKS, "max_open_offers": trade.MAX_OPEN_OFFERS,
            "offer_states": list(trade.OFFER_STATES),
        },
        "board": {
            "place": board.BOARD_PLACE, "range": board.BOARD_RANGE, "max_notice_text": board.MAX_NOTICE_TEXT,
            "max_notices": board.MAX_NOTICES, "max_notices_per_author": board.MAX_NOTICES_PER_AUTHOR,
            "max_open_quests": board.MAX_OPEN_QUESTS, "quest_ttl_ticks": board.QUEST_TTL_TICKS,
        },
        "view": {"cell_tiles": VIEW_CELL_TILES, "radius_cells": VIEW_RADIUS_CELLS,
                 "side_tiles": VIEW_SIDE_TILES},
    }
