"""`hamlet llm-serve`: Hamlet's engine behind an OpenAI-compatible HTTP API.

Owns: an asyncio + h11 HTTP/1.1 server with `/v1/completions`,
`/v1/chat/completions` (both with SSE streaming), `/v1/models` and
`/health`. Scoring uses the completions echo mode (`echo: true,
max_tokens: 0, logprobs: 0`), as vLLM does. Extensions: `priority` (int,
lower is more urgent, as in vLLM), `hamlet_deadline_s`, `hamlet_prefix`.
A client that disconnects cancels its job.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import h11

from .api import Priority, Status
from .bans import check_bans

MAX_BODY = 1 << 20          # 1 MiB: far above any NPC prompt, small enough to refuse floods
MAX_PROMPTS = 64            # prompts per request: one batch worth
MAX_TOKENS_CAP = 2048       # per request; the engine's sequence limit applies too
MAX_CONNECTIONS = 256       # concurrent connections; the engine's own queue bound sheds load first
_STATUS_HTTP = {Status.OVERLOADED: 503, Status.DEADLINE: 504, Status.CANCELLED: 499, Status.ERROR: 400}


class HttpError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class LLMServer:
    def __init__(self, llm, *, host: str = "127.0.0.1", port: int = 8008, model_name: str | None = None):
        self.llm, self.host, self.port = llm, host, port
        self.model_name = model_name or str(llm.info().get("name", "hamlet"))
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
        if method == "GET" and path == "/health":
            return await self._send_json(conn, writer, 200, {"status": "ok"})
        if method == "GET" and path == "/v1/models":
            data = [{"id": self.model_name, "object": "model", "owned_by": "hamlet", "info": self.llm.info()}]
            return await self._send_json(conn, writer, 200, {"object": "list", "data": data})
        if method != "POST" or path not in ("/v1/completions", "/v1/chat/completions"):
            raise HttpError(404, f"no route for {method} {path}", "not_found")
        try:
            req = json.loads(body)
            assert isinstance(req, dict)
        except (ValueError, AssertionError):
            raise HttpError(400, "body must be a JSON object") from None
        if path == "/v1/chat/completions":
            return await self._chat(conn, writer, reader, req)
        return await self._completions(conn, writer, reader, req)

    # -- endpoints -------------------------------------------------------------
    def _gen_kwargs(self, req: dict) -> dict:
        stop = req.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        try:
            max_tokens = int(req.get("max_tokens", req.get("max_completion_tokens", 16)))
            kw: dict[str, Any] = {"max_new_tokens": max(0, min(max_tokens, MAX_TOKENS_CAP)),
                  "temperature": float(req.get("temperature", 1.0)), "top_p": float(req.get("top_p", 1.0)),
                  "seed": None if req.get("seed") is None else int(req["seed"]), "stop": stop[:8],
                  "priority": int(req.get("priority", Priority.CONVERSATION)),
                  "deadline_s": None if req.get("hamlet_deadline_s") is None else float(req["hamlet_deadline_s"]),
                  "prefix": req.get("hamlet_prefix"),
                  "sentences": None if req.get("hamlet_sentences") is None else int(req["hamlet_sentences"])}
        except (TypeError, ValueError) as exc:
            raise HttpError(400, f"bad parameter: {exc}") from None
        if not all(isinstance(s, str) for s in kw["stop"]):
            raise HttpError(400, "stop must be a string or a list of strings")
        ban = req.get("bad_words") or []     # vLLM's field: phrases the text may not contain
        why = check_bans(ban) if isinstance(ban, list) else "bad_words must be a list of strings"
        if why is not None:
            raise HttpError(400, f"bad parameter: {why}")
        if ban:
            kw["ban"] = tuple(ban)
        return kw

    async def _completions(self, conn, writer, reader, req: dict) -> None:
        prompts = req.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not prompts or len(prompts) > MAX_PROMPTS \
                or not all(isinstance(p, str) for p in prompts):
            raise HttpError(400, f"prompt must be a string or a list of 1..{MAX_PROMPTS} strings")
        kw = self._gen_kwargs(req)
        if req.get("echo") and kw["max_new_tokens"] == 0:
            return await self._echo_logprobs(conn, writer, prompts, kw)
        if req.get("stream"):
            if len(prompts) != 1:
                raise HttpError(400, "stream needs a single prompt")
            return await self._stream(conn, writer, reader, self.llm.generate(prompts[0], **kw), chat=False)
        handles = [self.llm.generate(p, **kw) for p in prompts]
        results = await self._await_all(handles, reader)
        choices = [{"index": i, "text": r.text, "finish_reason": r.finish_reason, "logprobs": None}
                   for i, r in enumerate(results)]
        await self._send_json(conn, writer, 200, self._envelope("text_completion", choices, results))

    async def _chat(self, conn, writer, reader, req: dict) -> None:
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HttpError(400, "messages must be a non-empty list")
        system, turns = "", []  # type: str, list[tuple[str, str]]
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise HttpError(400, "each message needs a role and a string content")
            if m.get("role") == "system" and not turns:
                system = m["content"]
            else:
                turns.append((str(m.get("role", "user")), m["content"]))
        prompt = self.llm.chat_prompt(system, turns, add_generation_prompt=True)
        handle = self.llm.generate(prompt, **self._gen_kwargs(req))
        if req.get("stream"):
            return await self._stream(conn, writer, reader, handle, chat=True)
        (result,) = await self._await_all([handle], reader)
        choices = [{"index": 0, "message": {"role": "assistant", "content": result.text},
                    "finish_reason": result.finish_reason}]
        await self._send_json(conn, writer, 200, self._envelope("chat.completion", choices, [result]))

    async def _echo_logprobs(self, conn, writer, prompts: list[str], kw: dict) -> None:
        handle = self.llm.score("", prompts, priority=kw["priority"], deadline_s=kw["deadline_s"])
        result = await handle
        self._raise_for(result)
        choices = []
        for i, text in enumerate(prompts):
            offsets = result.token_offsets[i]
            # The first token has no context to be scored from, as in OpenAI's echo.
            first = [0] if not offsets or offsets[0] != 0 else []
            tokens = [text[a:b] for a, b in zip(first + offsets, offsets + [len(text)])]
            lps = ([None] if first else []) + result.token_logprobs[i]
            choices.append({"index": i, "text": text, "finish_reason": "length",
                            "logprobs": {"tokens": tokens, "token_logprobs": lps,
                                         "text_offset": first + offsets, "top_logprobs": None}})
        await self._send_json(conn, writer, 200, self._envelope("text_completion", choices, []))

    async def _stream(self, conn, writer, reader, handle, *, chat: bool) -> None:
        ident, created = f"cmpl-{uuid.uuid4().hex[:16]}", int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish: str | None) -> bytes:
            if chat:
                choice = {"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
            payload = {"id": ident, "object": obj, "created": created, "model": self.model_name, "choices": [choice]}
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        watcher = asyncio.ensure_future(_wait_disconnect(reader))
        try:
            pieces = handle.stream().__aiter__()
            first = asyncio.ensure_future(pieces.__anext__())
            await asyncio.wait([first, watcher], return_when=asyncio.FIRST_COMPLETED)
            if watcher.done():
                first.cancel()
                handle.cancel()
                return
            headers = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
            await self._send(conn, writer, h11.Response(status_code=200, headers=headers))
            piece = await _first_or_end(first)
            while piece is not None:
                await self._send(conn, writer, h11.Data(data=chunk(piece, None)))
                piece = await _next_or_end(pieces, watcher, handle)
            result = await handle
            if result.status != Status.OK:
                err = {"error": {"message": result.error or result.status, "type": result.status}}
                await self._send(conn, writer, h11.Data(data=b"data: " + json.dumps(err).encode() + b"\n\n"))
            else:
                await self._send(conn, writer, h11.Data(data=chunk(None, result.finish_reason)))
            await self._send(conn, writer, h11.Data(data=b"data: [DONE]\n\n"))
            await self._send(conn, writer, h11.EndOfMessage())
        finally:
            watcher.cancel()
            handle.cancel()

    # -- helpers ---------------------------------------------------------------
    async def _await_all(self, handles, reader) -> list:
        watcher = asyncio.ensure_future(_wait_disconnect(reader))
        gathered = asyncio.ensure_future(asyncio.gather(*(_as_coro(h) for h in handles)))
        try:
            await asyncio.wait([gathered, watcher], return_when=asyncio.FIRST_COMPLETED)
            if not gathered.done():
                for h in handles:
                    h.cancel()
                raise ConnectionError("client went away")
            results = gathered.result()
        finally:
            watcher.cancel()
        for r in results:
            self._raise_for(r)
        return results

    @staticmethod
    def _raise_for(result) -> None:
        if result.status != Status.OK:
            raise HttpError(_STATUS_HTTP.get(result.status, 500), result.error or result.status, result.status)

    def _envelope(self, obj: str, choices: list, results: list) -> dict:
        completion = sum(len(r.token_ids) for r in results)
        prompt = sum(getattr(r, "prompt_tokens", 0) for r in results)
        return {"id": f"cmpl-{uuid.uuid4().hex[:16]}", "object": obj, "created": int(time.time()),
                "model": self.model_name, "choices": choices,
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}}

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


async def _as_coro(handle):
    return await handle


async def _wait_disconnect(reader: asyncio.StreamReader) -> None:
    # The request body is fully read; any further read returning b"" means the peer closed.
    while await reader.read(1024):
        pass


async def _first_or_end(fut):
    try:
        return await fut
    except StopAsyncIteration:
        return None


async def _next_or_end(pieces, watcher, handle):
    nxt = asyncio.ensure_future(pieces.__anext__())
    await asyncio.wait([nxt, watcher], return_when=asyncio.FIRST_COMPLETED)
    if not nxt.done():
        nxt.cancel()
        handle.cancel()
        raise ConnectionError("client went away")
    return await _first_or_end(nxt)


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind}}
