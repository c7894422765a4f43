"""One `RemoteLLM` request's exchange with its server (remote.py owns the
client, its handles, its bounds and its event loop; this module one job's
HTTP).

Owns: the tries of one request, each within the client's `timeout_s` and
what is left of the job's deadline; retries with exponential backoff on
connection errors and 429/502/503/504, only before any text arrived; a
field the server refuses with a 400 that says so (REFUSABLE) is dropped
and the request sent again. A generation is read from its SSE stream (cut
at the sentences asked for, counted by the server's last `usage`, else by
pieces), a score from echo mode (replies.py reads both). Runs on the
client's event loop.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import h11

from .api import GenerationResult, ScoreResult, Status
from .handle import JobHandle
from .http11 import HttpStatus
from .jobs import failed
from .replies import score_result, stream_error, stream_event
from .sampling import sentence_cut

RETRY_STATUS = {429, 502, 503, 504}
# The error of a job that failed because its server could not be reached
# (refused, reset, connect timed out) starts with this: an EnginePool sends
# such a job to another engine and rests this one.
UNREACHABLE = "unreachable: "
# Optional fields a server may refuse with a 400 whose body says so: the field
# is dropped for that server from then on and the request sent again.
# priority: vLLM without --scheduling-policy priority; stream_options: a
# server that knows no usage reports (its tokens are counted from the pieces).
REFUSABLE = {"priority": b"Priority scheduling is not enabled", "stream_options": b"stream_options"}


async def exchange(c: Any, handle: JobHandle, kind: str, path: str, body: dict, submitted: float,
                   deadline: float | None) -> GenerationResult | ScoreResult:
    """Send `body` to `path` for the client `c` (a RemoteLLM) until an
    answer, a failure not worth retrying, or the last try."""
    attempt = 0
    while True:
        timeout = c.timeout_s if deadline is None else min(c.timeout_s, deadline - time.monotonic())
        if timeout <= 0:
            return failed(kind, Status.DEADLINE, "deadline passed", submitted)
        try:
            async with c._sem:
                if kind == "score":
                    return await asyncio.wait_for(_score(c, body, submitted), timeout)
                return await asyncio.wait_for(_generate(c, handle, path, body, submitted), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            if deadline is not None and time.monotonic() >= deadline - 1e-3:
                return failed(kind, Status.DEADLINE, "deadline passed", submitted)
            error, status = "request timed out", Status.ERROR
        except HttpStatus as exc:
            name = next((f for f, said in REFUSABLE.items() if exc.status == 400 and said in exc.body
                         and f in body), None)
            if name is not None:
                del body[name]
                c.refuses(name)
                continue      # at most once per field and request: the field is gone now
            if exc.status not in RETRY_STATUS:
                return failed(kind, {504: Status.DEADLINE}.get(exc.status, Status.ERROR), str(exc), submitted)
            error, status = str(exc), Status.OVERLOADED if exc.status in (429, 503) else Status.ERROR
        except (ConnectionError, OSError, h11.ProtocolError) as exc:
            error, status = f"{UNREACHABLE}{type(exc).__name__}: {exc}", Status.ERROR
        if handle.text_so_far or attempt >= c.retries:
            return failed(kind, status, error, submitted)
        await asyncio.sleep(c.backoff_s * (2 ** attempt))
        attempt += 1


async def _generate(c: Any, handle: JobHandle, path: str, body: dict, submitted: float) -> GenerationResult:
    text: list[str] = []
    finish, first_at, counted = None, None, None
    sentences = body.get("hamlet_sentences")
    events = c.http.sse(path, body)
    async for event in events:
        piece, ends, usage = stream_event(event, body.get("max_tokens"))   # BadAnswer: the job fails
        if (error := stream_error(event)) is not None:
            return failed("generate", error[0], error[1], submitted, "".join(text))
        counted = counted if usage is None else usage
        cut = None
        if piece and sentences:
            so_far = "".join(text)
            cut = sentence_cut(so_far + piece, sentences)
            if cut is not None:
                piece = (so_far + piece)[len(so_far):cut]
        if piece:
            first_at = first_at or time.monotonic()
            text.append(piece)
            handle._push(piece)
        finish = ends or finish
        if cut is not None:
            finish = "stop"
            await events.aclose()   # closes the connection: the server cancels the rest
            break
    now = time.monotonic()
    return GenerationResult("".join(text), [], Status.OK, finish,
                            None if first_at is None else first_at - submitted, now - submitted,
                            completion_tokens=len(text) if counted is None else counted)


async def _score(c: Any, body: dict, submitted: float) -> ScoreResult:
    send = {k: v for k, v in body.items() if k != "_prompt_len"}
    raw = await c.http.request("POST", "/completions", send)
    return score_result(raw, len(send["prompt"]), body["_prompt_len"], time.monotonic() - submitted)
