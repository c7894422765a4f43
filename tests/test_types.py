"""mypy on the layers that must stay clean: protocol/ (sans-I/O, the
contract with every client) and server/world (the world model the agents
see). Settings in pyproject.toml's [tool.mypy]."""
from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("protocol", "server/world")


def test_protocol_and_the_world_model_type_check():
    out, err, status = api.run([*(str(ROOT / p) for p in CHECKED),
                                "--config-file", str(ROOT / "pyproject.toml"),
                                "--cache-dir", str(ROOT / ".venv" / "mypy-cache")])
    assert status == 0, out + err
