"""`hamlet llm-serve`: Hamlet's engine behind an OpenAI-compatible HTTP API.

Owns: the routes, over http_server.py: `/v1/completions`,
`/v1/chat/completions` (both with SSE streaming), `/v1/models` and
`/health`. Scoring uses the completions echo mode (`echo: true,
max_tokens: 0, logprobs: 0`), as vLLM does. vLLM's fields: `priority`
(int, lower is more urgent), `bad_words`, and `structured_outputs:
{"choice": [...]}` (or the older `guided_choice`), answered with the choice
the model's score prefers as the text, so clients written for vLLM work
here (vLLM picks token by token; scoring whole choices is what Hamlet's
minds do through echo mode, which also gives each choice's score).
A stream asked `stream_options: {"include_usage": true}` ends, as OpenAI's
and vLLM's do, with an event of no choices and the `usage` (token counts);
an answer that does not stream always has it. Extensions:
`hamlet_deadline_s`, `hamlet_prefix`, `hamlet_sentences` (calls.py reads
them all). A client that disconnects cancels its job.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import h11

from .api import Status
from .calls import choices_of, generation_kwargs, wants_usage
from .http_server import H11Server, HttpError, wait_disconnect

MAX_PROMPTS = 64            # prompts per request: one batch worth
_STATUS_HTTP = {Status.OVERLOADED: 503, Status.DEADLINE: 504, Status.CANCELLED: 499, Status.ERROR: 400}


class LLMServer(H11Server):
    def __init__(self, llm, *, host: str = "127.0.0.1", port: int = 8008, model_name: str | None = None):
        super().__init__(host, port)
        self.llm = llm
        self.model_name = model_name or str(llm.info().get("name", "hamlet"))

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
        try:
            return generation_kwargs(req)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None

    def _choices(self, req: dict) -> list[str] | None:
        try:
            return choices_of(req)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None

    def _usage_asked(self, req: dict) -> bool:
        try:
            return wants_usage(req)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None

    async def _completions(self, conn, writer, reader, req: dict) -> None:
        prompts = req.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not prompts or len(prompts) > MAX_PROMPTS \
                or not all(isinstance(p, str) for p in prompts):
            raise HttpError(400, f"prompt must be a string or a list of 1..{MAX_PROMPTS} strings")
        kw, choices, usage = self._gen_kwargs(req), self._choices(req), self._usage_asked(req)
        if req.get("echo") and kw["max_new_tokens"] == 0:
            return await self._echo_logprobs(conn, writer, prompts, kw)
        stream = bool(req.get("stream"))
        if stream and len(prompts) != 1:
            raise HttpError(400, "stream needs a single prompt")
        if choices is not None:
            if len(prompts) * len(choices) > MAX_PROMPTS:
                raise HttpError(400, f"at most {MAX_PROMPTS} prompt-choice pairs per request")
            return await self._choose(conn, writer, reader, prompts, choices, kw, chat=False, stream=stream)
        if stream:
            return await self._stream(conn, writer, reader, self.llm.generate(prompts[0], **kw), chat=False,
                                      usage=usage)
        handles = [self.llm.generate(p, **kw) for p in prompts]
        results = await self._await_all(handles, reader)
        out = [{"index": i, "text": r.text, "finish_reason": r.finish_reason, "logprobs": None}
               for i, r in enumerate(results)]
        await self._send_json(conn, writer, 200, self._envelope("text_completion", out, results))

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
        kw, choices, usage = self._gen_kwargs(req), self._choices(req), self._usage_asked(req)
        if choices is not None:
            return await self._choose(conn, writer, reader, [prompt], choices, kw, chat=True,
                                      stream=bool(req.get("stream")))
        handle = self.llm.generate(prompt, **kw)
        if req.get("stream"):
            return await self._stream(conn, writer, reader, handle, chat=True, usage=usage)
        (result,) = await self._await_all([handle], reader)
        out = [{"index": 0, "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason}]
        await self._send_json(conn, writer, 200, self._envelope("chat.completion", out, [result]))

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

    async def _stream(self, conn, writer, reader, handle, *, chat: bool, usage: bool) -> None:
        chunk = self._chunker(chat)

        watcher = asyncio.ensure_future(wait_disconnect(reader))
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
                if usage:
                    await self._send(conn, writer, h11.Data(data=chunk(None, None, _usage([result]))))
            await self._send(conn, writer, h11.Data(data=b"data: [DONE]\n\n"))
            await self._send(conn, writer, h11.EndOfMessage())
        finally:
            watcher.cancel()
            handle.cancel()

    async def _choose(self, conn, writer, reader, prompts: list[str], choices: list[str], kw: dict, *,
                      chat: bool, stream: bool) -> None:
        """structured_outputs.choice: each prompt's answer is the choice its score prefers."""
        handles = [self.llm.score(p, choices, priority=kw["priority"], deadline_s=kw["deadline_s"],
                                  prefix=kw["prefix"]) for p in prompts]
        texts = [choices[r.best()] for r in await self._await_all(handles, reader)]
        if stream:           # one piece, then the end, as a vLLM stream of a short choice looks
            chunk = self._chunker(chat)
            headers = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
            await self._send(conn, writer, h11.Response(status_code=200, headers=headers))
            for data in (chunk(texts[0], None), chunk(None, "stop"), b"data: [DONE]\n\n"):
                await self._send(conn, writer, h11.Data(data=data))
            return await self._send(conn, writer, h11.EndOfMessage())
        if chat:
            out = [{"index": 0, "message": {"role": "assistant", "content": texts[0]}, "finish_reason": "stop"}]
        else:
            out = [{"index": i, "text": t, "finish_reason": "stop", "logprobs": None} for i, t in enumerate(texts)]
        await self._send_json(conn, writer, 200, self._envelope("chat.completion" if chat else "text_completion",
                                                                out, []))

    # -- helpers ---------------------------------------------------------------
    def _chunker(self, chat: bool):
        """chunk(text, finish, usage): one SSE event of a completions or chat
        stream; with `usage`, the last one (no choices)."""
        ident, created = f"cmpl-{uuid.uuid4().hex[:16]}", int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish: str | None, usage: dict | None = None) -> bytes:
            if usage is not None:
                tail: dict = {"choices": [], "usage": usage}
            elif chat:
                tail = {"choices": [{"index": 0, "delta": {} if text is None else {"content": text},
                                     "finish_reason": finish}]}
            else:
                tail = {"choices": [{"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}]}
            payload = {"id": ident, "object": obj, "created": created, "model": self.model_name, **tail}
            return b"data: " + json.dumps(payload).encode() + b"\n\n"
        return chunk

    async def _await_all(self, handles, reader) -> list:
        watcher = asyncio.ensure_future(wait_disconnect(reader))
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
        return {"id": f"cmpl-{uuid.uuid4().hex[:16]}", "object": obj, "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": _usage(results)}


def _usage(results: list) -> dict:
    """OpenAI's `usage` of generations (zero for scores, which generate nothing)."""
    completion = sum(getattr(r, "tokens", 0) for r in results)
    prompt = sum(getattr(r, "prompt_tokens", 0) for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _as_coro(handle):
    return await handle


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
