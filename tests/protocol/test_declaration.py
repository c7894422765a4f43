"""The protocol as one declaration: PROTOCOL.md's tables are generated from
it (the file must equal its regenerated self), every code has its wording,
/protocol.json carries it, and the server's world uses (or matches) the
values the protocol declares."""
from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys

import msgpack
import pytest

from protocol import gen_doc
from protocol.declaration import declaration
from protocol.entities import (FLAG_AWAY, FLAG_THINKING, FLAGS, HEARING_RANGE, KINDS, ROWS, VIEW_CELL_TILES,
                               VIEW_RADIUS_CELLS)
from protocol.errors import CLOSE_DOCS, ERROR_DOCS, CloseCode, ErrorCode
from protocol.limits import SERVER_BOUNDS
from protocol.schema import CLIENT_MESSAGES, SERVER_MESSAGES


def test_protocol_md_equals_its_regenerated_self():
    text = gen_doc.DOC.read_text(encoding="utf-8")
    assert gen_doc.render(text) == text, "PROTOCOL.md is stale: run python -m protocol.gen_doc"
    assert gen_doc.main(["--check"]) == 0


def test_a_stale_table_is_noticed_and_rewritten():
    text = gen_doc.DOC.read_text(encoding="utf-8")
    stale = text.replace("| `bad_frame` |", "| `bad_frame_old` |", 1)
    assert stale != text and gen_doc.render(stale) == text


def test_every_table_needs_exactly_its_region():
    text = gen_doc.DOC.read_text(encoding="utf-8")
    without = text.replace("<!-- generated:closes -->", "<!-- closes -->", 1)
    with pytest.raises(ValueError, match="closes"):
        gen_doc.render(without)
    with pytest.raises(ValueError, match="nonsense"):
        gen_doc.render(text + "\n<!-- generated:nonsense -->\n<!-- /generated -->\n")


def test_the_doc_shows_declared_values():
    text = gen_doc.DOC.read_text(encoding="utf-8")
    for code, doc in ERROR_DOCS.items():
        assert f"| `{code}` | {doc} |" in text
    for code, d in CLOSE_DOCS.items():
        assert f"| {int(code)} | {d.reason} |" in text
    for name, cols in ROWS.items():
        assert "[" + ", ".join(cols) + "]" in text
    assert f"{HEARING_RANGE} tiles" in text
    # the finding that started this: an empty token is `bad_value`, and the table says so
    token_row = next(line for line in text.splitlines() if line.startswith("| `hello.token`"))
    assert "`bad_value` if empty" in token_row


def test_every_code_has_its_wording():
    assert set(ERROR_DOCS) == set(ErrorCode)
    assert set(CLOSE_DOCS) == set(CloseCode)
    assert all(doc.strip() for doc in ERROR_DOCS.values())
    assert not CLOSE_DOCS[CloseCode.NORMAL].reconnect and CLOSE_DOCS[CloseCode.GOING_AWAY].reconnect
    assert not CLOSE_DOCS[CloseCode.SESSION_REPLACED].reconnect and not CLOSE_DOCS[CloseCode.KICKED].reconnect


def test_the_declaration_is_json_and_complete():
    d = json.loads(json.dumps(declaration()))
    assert d["version"] == 1 and d["subprotocol"] == "hamlet.v1"
    assert set(d["messages"]["client"]) == set(CLIENT_MESSAGES)
    assert set(d["messages"]["server"]) == set(SERVER_MESSAGES)
    assert set(d["errors"]) == {str(c) for c in ErrorCode}
    assert set(d["closes"]) == {str(int(c)) for c in CloseCode}
    assert d["flags"] == {"thinking": {"bit": 1, "doc": FLAGS["thinking"][1]},
                          "away": {"bit": 2, "doc": FLAGS["away"][1]}}
    assert d["rows"]["enter"] == ["id", "kind", "name", "x", "y", "flags"]
    assert d["hearing_range"] == HEARING_RANGE and d["kinds"] == list(KINDS)
    assert d["limits"]["max_seq"] == 2**32 - 1 and d["limits"]["max_text"] == 280
    hello = {f["name"]: f for f in d["messages"]["client"]["hello"]["fields"]}
    assert hello["v"]["choices"] == [1] and hello["name"]["hi"] == 24 and not hello["token"]["required"]
    every_type_takes_seq = all(any(f["name"] == "seq" for f in m["fields"])
                               for m in d["messages"]["client"].values())
    assert every_type_takes_seq


def test_the_world_uses_the_protocols_values():
    from server.replication import Replicator
    from server.world import world

    assert world.FLAG_THINKING == FLAG_THINKING == 1 and world.FLAG_AWAY == FLAG_AWAY == 2
    rules = world.WorldRules()
    assert rules.hearing_radius == HEARING_RANGE
    assert rules.grid_cell == VIEW_CELL_TILES
    assert inspect.signature(Replicator).parameters["view_cells"].default == VIEW_RADIUS_CELLS


def test_server_bounds_match_the_server_config():
    from server.config import ServerConfig

    config = ServerConfig()
    for f in dataclasses.fields(SERVER_BOUNDS):
        assert getattr(config, f.name) == getattr(SERVER_BOUNDS, f.name), f.name


def test_rows_on_the_wire_have_the_declared_columns():
    from server.replication import EMPTY_VIEW, Replicator
    from server.world.inputs import Join
    from server.world.village import village
    from server.world.world import World

    tilemap = village()
    w = World(tilemap, seed=1)
    w.begin_tick()
    spot = next((x, y) for y in range(tilemap.height) for x in range(tilemap.width) if tilemap.walkable(x, y))
    w.apply(Join(1, "ann", *spot))
    w.simulate()
    rep = Replicator(w)
    cell = (spot[0] // VIEW_CELL_TILES, spot[1] // VIEW_CELL_TILES)
    state = msgpack.unpackb(rep.delta_frame(EMPTY_VIEW, rep.view(cell)))
    [row] = state["enter"]
    assert len(row) == len(ROWS["enter"])
    named = dict(zip(ROWS["enter"], row))
    assert named["id"] == 1 and named["kind"] in KINDS and named["name"] == "ann"
    assert (named["x"], named["y"]) == spot and named["flags"] == 0
    places = tilemap.to_wire()["places"]
    assert places and all(len(p) == len(ROWS["place"]) for p in places)


def test_protocol_imports_only_msgpack():
    code = ("import sys, protocol.declaration, protocol.gen_doc, protocol.connection;"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'asyncio', 'server', 'agents', 'client_demo', 'websockets', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
