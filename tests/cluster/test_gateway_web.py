"""The browser client through a gateway: the gateway's port serves the page,
its modules, its stylesheet and /protocol.json with the same bytes and
headers as `hamlet serve` (the files of client_demo/web/, and nothing from
outside it), and in headless Chromium a player opened there joins, sees
itself and walks across the region border, seeing itself arrive."""
from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from server.http import DEFAULT_WEB_ROOT
from tests.cluster.helpers import MAP, eventually, start_gateway, start_region
from tests.cluster.test_gateway import BORDER_X
from tests.e2e.test_browser import click_tile, join_with_keyboard, open_page, seen_at

HEADERS = ("Content-Type", "Content-Length", "Cache-Control", "X-Content-Type-Options")


def get(url: str) -> tuple[int, dict[str, str | None], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, {h: r.headers.get(h) for h in HEADERS}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {h: e.headers.get(h) for h in HEADERS}, e.read()


async def fetch(base: str, path: str) -> tuple[int, dict[str, str | None], bytes]:
    return await asyncio.to_thread(get, base + path)


async def test_gateway_serves_the_browser_client_as_hamlet_serve_does(nats_server, tmp_path, server):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    gw = await start_gateway(nats_server.url)
    try:
        base, one = f"http://127.0.0.1:{gw.port}", f"http://127.0.0.1:{server.port}"
        status, headers, body = await fetch(base, "/")
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert body == (DEFAULT_WEB_ROOT / "index.html").read_bytes()
        status, headers, body = await fetch(base, "/app.js")
        assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert body == (DEFAULT_WEB_ROOT / "app.js").read_bytes()
        # every file, the declaration and the refusals answer as from one process
        paths = ["/", "/index.html", "/protocol.json", "/style.css", "/screenshot.png", "/nope.js",
                 "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/?x=1"]
        paths += [f"/{p.name}" for p in sorted(DEFAULT_WEB_ROOT.glob("*.js"))]
        for path in paths:
            assert await fetch(base, path) == await fetch(one, path), path
        status, _, _ = await fetch(base, "/../pyproject.toml")
        assert status == 404
        # the gateway's own endpoints are still its own
        status, headers, body = await fetch(base, "/healthz")
        assert status == 200 and b'"gateway"' in body and headers["X-Content-Type-Options"] == "nosniff"
    finally:
        await gw.stop()
        await r0.stop()
        await r1.stop()


@pytest.mark.browser
async def test_browser_plays_through_a_gateway(nats_server, tmp_path, chromium):
    r0 = await start_region(nats_server.url, tmp_path, "r0")
    r1 = await start_region(nats_server.url, tmp_path, "r1")
    gw = await start_gateway(nats_server.url)
    try:
        page, errors = await open_page(chromium, gw)
        me = await join_with_keyboard(page, "ann")
        await seen_at(page, "ann", me["x"], me["y"])
        assert await page.locator("#status").get_attribute("data-state") == "connected"
        # a click on a tile each side of the border (the square straddles
        # it): the avatar is handed from region to region and the page
        # sees it arrive, as in one process
        y = me["y"]
        for side in (range(BORDER_X - 3, BORDER_X - 8, -1), range(BORDER_X + 3, BORDER_X + 8)):
            x = next(x for x in side if MAP.walkable(x, y))
            await click_tile(page, x, y)
            await seen_at(page, "ann", x, y)
            holder = r0 if x < BORDER_X else r1
            assert await eventually(lambda: me["id"] in holder.entity_ids())
        assert errors == []
    finally:
        await gw.stop()
        await r0.stop()
        await r1.stop()
