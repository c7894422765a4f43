"""A minimal HTTP/1.1 client over asyncio and h11, for `RemoteLLM`.

Owns: one request per connection (`connection: close`), a JSON body out,
and either the whole response (`request`) or its server-sent events
(`sse`) back, each bounded by MAX_RESPONSE. A connect that fails or takes
longer than its timeout raises `ConnectionError` (the engine is unreachable,
which an `EnginePool` treats differently from a slow answer); a status
other than 200 raises `HttpStatus`; a response past the bound, ValueError.
"""
from __future__ import annotations

import asyncio
import json

import h11

MAX_RESPONSE = 16 << 20      # 16 MiB: no sane completion is larger; protects against a broken server


class HttpStatus(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        self.status = status
        self.body = body[:4096]   # enough to read a server's error message


class HttpClient:
    def __init__(self, host: str, port: int, root: str, connect_timeout_s: float):
        self.host, self.port, self.root = host, port, root
        self.connect_timeout_s = connect_timeout_s

    async def _open(self, method: str, path: str, body: dict | None):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                    self.connect_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            raise ConnectionError(f"connect to {self.host}:{self.port} took over {self.connect_timeout_s:g} s") \
                from None
        conn = h11.Connection(h11.CLIENT)
        data = b"" if body is None else json.dumps(body).encode()
        headers = [("host", f"{self.host}:{self.port}"), ("connection", "close"),
                   ("accept", "application/json, text/event-stream")]
        if body is not None:
            headers += [("content-type", "application/json"), ("content-length", str(len(data)))]
        writer.write(conn.send(h11.Request(method=method, target=self.root + path, headers=headers)))
        if data:
            writer.write(conn.send(h11.Data(data=data)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        return conn, reader, writer

    @staticmethod
    async def _events(conn, reader):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            yield event
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return

    async def request(self, method: str, path: str, body: dict | None) -> bytes:
        conn, reader, writer = await self._open(method, path, body)
        try:
            status, out = 0, bytearray()
            async for event in self._events(conn, reader):
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    out += event.data
                    if len(out) > MAX_RESPONSE:
                        raise ValueError("response too large")
            if status != 200:
                raise HttpStatus(status, bytes(out))
            return bytes(out)
        finally:
            writer.close()

    async def sse(self, path: str, body: dict):
        """Yield the JSON payload of each `data:` event until `[DONE]`."""
        conn, reader, writer = await self._open("POST", path, body)
        try:
            status, buf, raw = 0, b"", bytearray()
            async for event in self._events(conn, reader):
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    if status != 200:
                        raw += event.data[:MAX_RESPONSE - len(raw)]
                        continue
                    buf += event.data
                    while b"\n\n" in buf:
                        block, buf = buf.split(b"\n\n", 1)
                        for line in block.split(b"\n"):
                            if line.startswith(b"data:"):
                                payload = line[5:].strip()
                                if payload == b"[DONE]":
                                    return
                                yield json.loads(payload)
                    if len(buf) > MAX_RESPONSE:
                        raise ValueError("SSE event too large")
            if status != 200:
                raise HttpStatus(status, bytes(raw))
        finally:
            writer.close()
