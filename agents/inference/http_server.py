"""A small asyncio + h11 HTTP/1.1 server: what `hamlet llm-serve` stands on.

Owns: accepting connections (at most MAX_CONNECTIONS at once), reading one
request at a time with its body (at most MAX_BODY), keep-alive, sending a
JSON answer or an error (`HttpError` -> `{"error": {"message", "type"}}`),
telling when the peer went away, and closing. A subclass answers requests
in `_route`.
"""
from __future__ import annotations

import asyncio
import json

import h11

MAX_BODY = 1 << 20          # 1 MiB: far above any NPC prompt, small enough to refuse floods
MAX_CONNECTIONS = 256       # concurrent connections; the engine's own queue bound sheds load first


class HttpError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class H11Server:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._server: asyncio.base_events.Server | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.host, self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._slots.locked():
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            pass              # server shutting down
        finally:
            self._tasks.discard(task)

    async def _serve_connection(self, reader, writer) -> None:
        async with self._slots:
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
            try:
                while await self._one_exchange(conn, reader, writer):
                    conn.start_next_cycle()
            except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

    async def _next_event(self, conn, reader):
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await reader.read(65536)
            conn.receive_data(data)
            if not data and conn.their_state is not h11.DONE:
                return h11.ConnectionClosed()

    async def _one_exchange(self, conn, reader, writer) -> bool:
        event = await self._next_event(conn, reader)
        if not isinstance(event, h11.Request):
            return False
        body = bytearray()
        while True:
            part = await self._next_event(conn, reader)
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY:
                    await self._send_json(conn, writer, 413, _error("request body too large", "too_large"))
                    return False
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return False
        method, path = event.method.decode(), event.target.decode().split("?")[0]
        try:
            await self._route(conn, writer, reader, method, path, bytes(body))
        except HttpError as exc:
            if conn.our_state is h11.SEND_RESPONSE:
                await self._send_json(conn, writer, exc.status, _error(exc.message, exc.kind))
            else:
                return False
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _route(self, conn, writer, reader, method: str, path: str, body: bytes) -> None:
        """Answer one request (the subclass's); raise HttpError to answer an error."""
        raise HttpError(404, f"no route for {method} {path}", "not_found")

    async def _send_json(self, conn, writer, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        await self._send(conn, writer, h11.Response(status_code=status, headers=headers))
        await self._send(conn, writer, h11.Data(data=body))
        await self._send(conn, writer, h11.EndOfMessage())

    @staticmethod
    async def _send(conn, writer, event) -> None:
        writer.write(conn.send(event))
        await writer.drain()


async def wait_disconnect(reader: asyncio.StreamReader) -> None:
    # The request body is fully read; any further read returning b"" means the peer closed.
    while await reader.read(1024):
        pass


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind}}
