"""The browser's MessagePack codec (client_demo/web/msgpack.js) against the
shared vectors packed by Python's msgpack: run in headless Chromium, loaded
from the server like the client loads it (and in Node where it is installed).

Both directions are checked: JavaScript decodes Python's bytes to the tagged
value, and Python's msgpack unpacks JavaScript's bytes to the original
value (byte for byte the same where JavaScript can ask for that encoding).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import msgpack
import pytest

from tests.clients import msgpack_vectors as mv
from tests.clients.test_msgpack_vectors import same

HERE = Path(__file__).resolve().parent
WEB = HERE.parents[1] / "client_demo" / "web"
CHECK_JS = (HERE / "codec_check.mjs").read_text(encoding="utf-8")


def all_vectors() -> dict:
    vectors = mv.load()
    vectors["valid"] = vectors["valid"] + [mv.vector(name, value) for name, value in mv.large_values()]
    return vectors


def integral_floats_as_ints(value):
    if isinstance(value, float) and mv.js_integral(value):
        return int(value)
    if isinstance(value, list):
        return [integral_floats_as_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: integral_floats_as_ints(v) for k, v in value.items()}
    return value


def assert_results(vectors: dict, results: dict) -> None:
    assert len(results["valid"]) == len(vectors["valid"])
    failures = []
    for vec, res in zip(vectors["valid"], results["valid"]):
        assert res["name"] == vec["name"]
        if res["decode_error"]:
            failures.append(f"{vec['name']}: decode: {res['decode_error']}")
        if res["encode_error"]:
            failures.append(f"{vec['name']}: encode: {res['encode_error']}")
            continue
        js_bytes = bytes.fromhex(res["encoded_hex"])
        if vec["same_bytes"] and res["encoded_hex"] != vec["hex"]:
            failures.append(f"{vec['name']}: JS encoded {res['encoded_hex'][:40]}, Python {vec['hex'][:40]}")
        value = mv.untag(vec["value"])
        back = msgpack.unpackb(js_bytes, raw=False)
        if not vec["same_bytes"]:
            # an integral float comes back from JavaScript as an integer
            value = integral_floats_as_ints(value)
        if not same(back, value):
            failures.append(f"{vec['name']}: Python unpacked JS bytes to {str(back)[:60]}")
    for vec, res in zip(vectors["invalid"], results["invalid"]):
        if not res["refused"]:
            failures.append(f"invalid {vec['name']}: not refused ({res['error']})")
    assert not failures, "\n".join(failures)


@pytest.mark.browser
async def test_codec_matches_python_msgpack_in_chromium(chromium, server):
    vectors = all_vectors()
    page = await chromium.new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/")
    results = await page.evaluate(
        """async ({check, vectors}) => {
            // JSON text both ways: far faster than Playwright's argument serializer
            vectors = JSON.parse(vectors);
            const codec = await import("/msgpack.js");
            const url = URL.createObjectURL(new Blob([check], {type: "text/javascript"}));
            const harness = await import(url);
            return JSON.stringify(harness.check(codec, vectors));
        }""",
        {"check": CHECK_JS, "vectors": json.dumps(vectors)},
    )
    results = json.loads(results)
    assert_results(vectors, results)


def test_codec_matches_python_msgpack_in_node(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the Chromium test covers the codec)")
    # .mjs copies so that Node treats both files as ES modules
    (tmp_path / "msgpack.mjs").write_text((WEB / "msgpack.js").read_text(encoding="utf-8"))
    (tmp_path / "check.mjs").write_text(CHECK_JS)
    vectors = all_vectors()
    (tmp_path / "vectors.json").write_text(json.dumps(vectors))
    script = ("import * as codec from './msgpack.mjs'; import {check} from './check.mjs';"
              "import {readFileSync} from 'node:fs';"
              "const v = JSON.parse(readFileSync('vectors.json', 'utf8'));"
              "process.stdout.write(JSON.stringify(check(codec, v)));")
    (tmp_path / "run.mjs").write_text(script)
    out = subprocess.run([node, "run.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert_results(vectors, json.loads(out.stdout))
