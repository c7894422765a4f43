"""The browser client's modules (world.js, conn.js, net.js, spec.js) under
Node's test runner (web_units.test.mjs), against the declaration the
server serves as /protocol.json.

Node runs them on a copy of client_demo/web marked as ES modules (the page
loads them as modules; Node would take a bare .js file for CommonJS). The
test skips, and says so, where Node is not installed.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from protocol.declaration import declaration

HERE = Path(__file__).resolve().parent
WEB = HERE.parents[1] / "client_demo" / "web"
HARNESS = HERE / "web_units.test.mjs"
# The harness's tests, counted so that a harness that stops finding its
# tests (or a runner that runs none) fails here.
EXPECTED_TESTS = len(re.findall(r"^test\(", HARNESS.read_text(encoding="utf-8"), re.M))


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs): the browser modules' unit tests need it")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"node {version} is too old for these tests (20 or later)")
    return node


def test_browser_modules_under_node(tmp_path):
    node = node_or_skip()
    web = tmp_path / "web"
    shutil.copytree(WEB, web, ignore=shutil.ignore_patterns("*.png", "*.css", "*.html"))
    (web / "package.json").write_text('{"type": "module"}')
    (web / "protocol.json").write_text(json.dumps(declaration()))
    out = subprocess.run([node, "--test", "--test-reporter=tap", str(HARNESS)], cwd=tmp_path,
                         env={"HAMLET_WEB": str(web), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-6000:]
    passed = re.search(r"^# pass (\d+)$", out.stdout, re.M)
    assert passed and int(passed.group(1)) == EXPECTED_TESTS >= 15, report[-3000:]
    assert re.search(r"^# fail 0$", out.stdout, re.M), report[-3000:]
