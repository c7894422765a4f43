"""A region's own HTTP port (`hamlet region --http-port P`): `GET /metrics`
(Prometheus text: the game's metrics, every sample labelled with the
region, and the region's handoff and session figures), `GET /healthz` and
`GET /figures` (JSON: region_figures.py, what `hamlet sim --regions` reads).
A region serves no WebSocket: clients go through a gateway.
"""
from __future__ import annotations

import asyncio
import json
import re

# A request line and headers: operators' scrapers send a few hundred bytes.
MAX_REQUEST = 8192
READ_TIMEOUT_S = 5.0

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?(\s.*)$")


def with_region(text: str, region: str) -> str:
    """Prometheus text with `region="<region>"` added to every sample."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line) if line and not line.startswith("#") else None
        if m is None:
            out.append(line)
            continue
        name, labels, rest = m.groups()
        inner = labels[1:-1] if labels else ""
        out.append(f'{name}{{region="{region}"{"," + inner if inner else ""}}}{rest}')
    return "\n".join(out) + "\n"


def cluster_metrics(node) -> str:
    r = node.region.name
    hs = sorted(node.handoff_ms)
    p99 = hs[min(len(hs) - 1, int(len(hs) * 0.99))] / 1000 if hs else 0.0
    rows = [("hamlet_region_handoffs_total", "counter", "Handoffs from this region confirmed by their destination",
             len(node.handoff_ms)),
            ("hamlet_region_handoff_p99_seconds", "gauge", "p99 of recent handoffs from leaving to confirmed", p99),
            ("hamlet_region_in_transit", "gauge", "Entities that left and are not confirmed yet", len(node.in_transit())),
            ("hamlet_region_sessions", "gauge", "Players' sessions held through gateways", len(node.remote)),
            ("hamlet_region_ghosts", "gauge", "Entities seen in neighbours' border cells", len(node.ghosts.ids()))]
    if node.publisher is not None:  # --replicate
        rows += [("hamlet_region_replica_records_total", "counter",
                  "Database records JetStream acknowledged (--replicate)", node.publisher.acked_n),
                 ("hamlet_region_replica_unacked_records", "gauge",
                  "Database records committed and waiting for JetStream", node.publisher.pending())]
    return "".join(f"# HELP {n} {h}\n# TYPE {n} {t}\n{n}{{region=\"{r}\"}} {v}\n" for n, t, h, v in rows)


async def serve_http(node, host: str, port: int) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            path = head[:MAX_REQUEST].split(b" ", 2)[1].decode("ascii", "replace") if head.count(b" ") >= 2 else ""
            if path.startswith("/metrics"):
                body = (with_region(node.game.metrics.render().decode(), node.region.name)
                        + cluster_metrics(node)).encode()
                status, ctype = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
            elif path.startswith("/healthz"):
                body = json.dumps({"status": "ok" if node.running else "stopped", "region": node.region.name,
                                   "tick": node.game.world.tick, "entities": len(node.game.world.entities)}).encode()
                status, ctype = "200 OK", "application/json"
            elif path.startswith("/figures"):
                from server.cluster.region_figures import region_figures

                body, status, ctype = json.dumps(region_figures(node)).encode(), "200 OK", "application/json"
            else:
                body, status, ctype = b"a Hamlet region: /metrics, /healthz, /figures\n", "404 Not Found", "text/plain"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, limit=MAX_REQUEST)
