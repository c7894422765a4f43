"""Plain HTTP on the WebSocket port: /protocol.json (the protocol's
declaration, for clients), /healthz, /stats, /metrics, /npc/NAME (why an
NPC did what it did) and /moderation (the notices NPCs withheld), both for
operators holding the admin token, and the browser client's static files.
websockets hands us every request before the upgrade; requests that are
not WebSocket upgrades get their answer here.

`client_files` (the declaration and the browser client) and `response`
(the headers every answer carries) are what a gateway's port serves alike
(server/cluster/gateway.py), so a browser opens a cluster as one process."""
from __future__ import annotations

import hmac
import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from agents.explain import npc_report
from protocol.declaration import declaration

if TYPE_CHECKING:
    from server.hosting import Host as HamletServer

DEFAULT_WEB_ROOT = Path(__file__).resolve().parent.parent / "client_demo" / "web"

# The declaration never changes while the server runs: encoded once.
PROTOCOL_JSON = json.dumps(declaration(), separators=(",", ":")).encode()

_FALLBACK_PAGE = b"""<!doctype html><meta charset="utf-8"><title>Hamlet</title>
<h1>Hamlet</h1><p>This server speaks the <code>hamlet.v1</code> WebSocket protocol on this port.
The browser client is not installed here; use <code>hamlet client</code>.</p>"""


def response(status: int, reason: str, body: bytes, content_type: str, cache: bool = False) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "max-age=60" if cache else "no-store"),
                       ("X-Content-Type-Options", "nosniff")])
    return Response(status, reason, headers, body)


def handle_http(server: HamletServer, request: Request) -> Response | None:
    """Return a response for plain HTTP requests, None to go on with the
    WebSocket handshake."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return None
    path = request.path.split("?", 1)[0]
    if path == "/healthz":
        body = json.dumps({"status": "ok", "tick": server.game.world.tick,
                           "clients": len(server.connections), "players": len(server.game.clients),
                           "entities": len(server.game.world.entities)}).encode()
        return response(200, "OK", body, "application/json")
    if path == "/stats":
        query = request.path.partition("?")[2]
        last = 0
        for part in query.split("&"):
            key, _, value = part.partition("=")
            if key == "last" and value.isdigit() and len(value) < 7:
                last = int(value)
        return response(200, "OK", json.dumps(tick_summary(server, last)).encode(), "application/json")
    if path == "/metrics":
        return response(200, "OK", server.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
    if path == "/npc" or path.startswith("/npc/"):
        return _npc(server, request, path)
    if path == "/moderation":
        return _moderation(server, request)
    return client_files(server.config.web_root, path)


# An NPC's name in /npc/NAME, percent-encoded: names are at most 24
# characters, so anything longer is not one.
MAX_NPC_PATH = 128


def _json(status: int, reason: str, obj: object) -> Response:
    return response(status, reason, json.dumps(obj).encode(), "application/json")


def _admin_refusal(server: HamletServer, request: Request) -> Response | None:
    """403 unless the request carries `Authorization: Bearer <admin token>`."""
    token = server.config.admin_token
    if not token:
        return _json(403, "Forbidden", {"error": "forbidden", "msg": "no admin token is set (HAMLET_ADMIN_TOKEN)"})
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _json(403, "Forbidden", {"error": "forbidden", "msg": "send Authorization: Bearer <admin token>"})
    return None


def _no_minds(server: HamletServer) -> Response | None:
    """404 when this server runs no NPC minds (`--model none`, or no NPCs)."""
    if server.minds is None or getattr(server.minds, "minds", None) is None:
        return _json(404, "Not Found", {"error": "not_found", "msg": "this server runs no NPC minds"})
    return None


def _moderation(server: HamletServer, request: Request) -> Response:
    """GET /moderation: the notices NPCs withheld (agents/moderation.py), for operators."""
    refused = _admin_refusal(server, request) or _no_minds(server)
    if refused is not None:
        return refused
    return _json(200, "OK", server.minds.desk.notices.log.report())


def _npc(server: HamletServer, request: Request, path: str) -> Response:
    """GET /npc (the NPCs' names) or /npc/NAME (npc_report), with
    `Authorization: Bearer <admin token>`: what NPCs remember is not public."""
    refused = _admin_refusal(server, request) or _no_minds(server)
    if refused is not None:
        return refused
    minds = server.minds.minds
    if path in ("/npc", "/npc/"):
        return _json(200, "OK", {"npcs": sorted(m.name for m in minds.values())})
    if len(path) > MAX_NPC_PATH:
        return _json(404, "Not Found", {"error": "not_found", "msg": "no such NPC"})
    mind = minds.get(unquote(path[len("/npc/"):]).casefold())
    if mind is None:
        return _json(404, "Not Found", {"error": "not_found", "msg": "no such NPC"})
    return _json(200, "OK", npc_report(server.game.world, mind))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def tick_summary(server: HamletServer, last: int = 0) -> dict:
    """Exact percentiles over the recent ticks (see HamletServer.tick_stats),
    or over the `last` N of them."""
    recent = list(server.tick_stats)[-last:] if last > 0 else list(server.tick_stats)
    durations = [d for d, _ in recent]
    lateness = [lt for _, lt in recent]
    out = {"ticks": len(durations), "tick": server.game.world.tick, "clients": len(server.connections),
           "players": len(server.game.clients), "entities": len(server.game.world.entities)}
    for q in (0.5, 0.95, 0.99):
        out[f"tick_p{int(q * 100)}_ms"] = round(_percentile(durations, q) * 1000, 3)
        out[f"lateness_p{int(q * 100)}_ms"] = round(_percentile(lateness, q) * 1000, 3)
    out["tick_max_ms"] = round(max(durations, default=0.0) * 1000, 3)
    return out


def client_files(web_root: str, path: str) -> Response:
    """What any client may fetch from a port that speaks hamlet.v1:
    /protocol.json, and the browser client's files from `web_root` (a
    server's `config.web_root`; empty: client_demo/web); 404 for the rest."""
    if path == "/protocol.json":
        return response(200, "OK", PROTOCOL_JSON, "application/json", cache=True)
    root = Path(web_root) if web_root else DEFAULT_WEB_ROOT
    if path in ("", "/"):
        path = "/index.html"
    if not root.is_dir():
        if path == "/index.html":
            return response(200, "OK", _FALLBACK_PAGE, "text/html; charset=utf-8")
        return response(404, "Not Found", b"not found\n", "text/plain")
    root = root.resolve()
    target = (root / path.lstrip("/")).resolve()
    if root not in target.parents or not target.is_file():  # no escaping the web root
        return response(404, "Not Found", b"not found\n", "text/plain")
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix in (".js", ".mjs"):
        ctype = "text/javascript"
    if ctype.startswith("text/"):
        ctype += "; charset=utf-8"
    return response(200, "OK", target.read_bytes(), ctype)


def reachable_host(host: str) -> str:
    """The address to connect to for a server listening on `host`: one
    listening on every address is reached here."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
