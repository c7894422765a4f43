"""`RemoteLLM`: the `LLM` interface over one OpenAI-compatible HTTP server.

Owns: requests to `/v1/completions` (and `/v1/chat/completions` for `chat`)
of vLLM, TGI, Ollama or `hamlet llm-serve`, with a timeout per request,
retries with exponential backoff on connection errors and 429/502/503/504
(only before any text arrived), a concurrency bound, and an outstanding-job
bound past which handles complete at once as "overloaded". Generations
stream over SSE, counted by the server's last `usage` (else by pieces).
Scores use echo mode (`echo`, `max_tokens: 0`, `logprobs: 0`): the
log-probability of each token at or after the end of the prompt, and their
sum. Requests run on a private event loop in a daemon thread, so both a
synchronous tick loop and asyncio code can hold the handles. Bodies are
built in calls.py, one request's tries and its stream run in
remote_exchange.py, answers are read in replies.py, HTTP in http11.py;
`EnginePool` (pool.py) spreads calls over several of these (`request()`).

Priorities: every call carries `priority`, Hamlet's `Priority` as an int:
HUMAN_REPLY 0, CONVERSATION 1, PLANNING 2, REFLECTION 3, lower = more
urgent. vLLM reads the same field the same way (lower is handled earlier,
and under memory pressure it preempts the highest number first) when it
runs with `--scheduling-policy priority`; a request without the field is
0 there, as urgent as a reply to a person. A vLLM without that flag refuses
any priority but 0 with a 400 ("Priority scheduling is not enabled"): this
client then stops sending the field to that server (logged once) and
resends the request, so NPCs keep talking, in arrival order.

Choices: Hamlet scores candidates by echo-mode log-probabilities, one sum
per candidate, which the minds record as "candidates"; vLLM's
`structured_outputs: {"choice": [...]}` answers only which one, chosen
token by token, so this client does not use it (`hamlet llm-serve` answers
it for clients written for vLLM; see serve.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from .api import GenerationResult, RunsIn, ScoreResult, Status
from .calls import Call, chat_call, generate_call, score_call
from .handle import JobHandle
from .http11 import HttpClient
from .jobs import failed, next_job_id
from .remote_exchange import UNREACHABLE, exchange

log = logging.getLogger(__name__)

# finish(handle, result): how a request hands its result back (JobHandle._finish by default).
Finish = Callable[[JobHandle, Any], object]


def is_unreachable(result: Any) -> bool:
    """Whether a failed job's server could not be reached at all."""
    return bool(result.error and result.error.startswith(UNREACHABLE))


class RemoteLLM:
    runs_in: RunsIn = "remote"

    def __init__(self, base_url: str, *, model: str | None = None, timeout_s: float = 60.0,
                 connect_timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.25,
                 max_concurrency: int = 16, max_outstanding: int = 256, registry=None,
                 chat_template: str = "chatml", tokenizer=None):
        # max_concurrency 16: enough to keep a remote batcher busy without opening
        #   a connection per NPC; max_outstanding 256 mirrors the engine's queue.
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme != "http":
            raise ValueError(f"{base_url!r}: RemoteLLM speaks plain http:// (put TLS in front with a proxy)")
        root = parts.path.rstrip("/")
        if not root.endswith("/v1"):
            root += "/v1"
        self.http = HttpClient(parts.hostname or "127.0.0.1", parts.port or 80, root, connect_timeout_s)
        self.base_url, self.model = base_url, model
        self.timeout_s = timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self.max_outstanding = max_outstanding
        self.tokenizer = tokenizer
        self.refused: set[str] = set()       # fields of REFUSABLE (remote_exchange.py) this server refused
        self._outstanding = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._sem = asyncio.Semaphore(max_concurrency)
        self._thread = threading.Thread(target=self._loop.run_forever, name="hamlet-remote-llm", daemon=True)
        self._thread.start()
        from .metrics import EngineMetrics
        self.metrics = EngineMetrics(registry)
        self._info: dict | None = None
        # submitted, not finished (bounded by max_outstanding)
        self._live: dict[int, tuple[JobHandle, Finish]] = {}
        self.closed = False

    # -- the LLM interface ---------------------------------------------------
    def generate(self, prompt: str, **kw: Any) -> JobHandle[GenerationResult]:
        """The arguments of `LLM.generate` (calls.generate_call)."""
        return self.submit(generate_call(prompt, **kw))

    def chat(self, system: str, turns: list[tuple[str, str]], **kw: Any) -> JobHandle[GenerationResult]:
        """Generate through `/v1/chat/completions` (the server applies its chat template)."""
        return self.submit(chat_call(system, turns, **kw))

    def score(self, prompt: str, candidates: Sequence[str], **kw: Any) -> JobHandle[ScoreResult]:
        """The arguments of `LLM.score` (calls.score_call)."""
        return self.submit(score_call(prompt, candidates, **kw))

    def chat_prompt(self, system: str, turns: list[tuple[str, str]], add_generation_prompt: bool = True) -> str:
        if self.tokenizer is not None:
            msgs = ([{"role": "system", "content": system}] if system else [])
            msgs += [{"role": r, "content": c} for r, c in turns]
            return self.tokenizer.apply_chat_template(msgs, tokenize=False,
                                                      add_generation_prompt=add_generation_prompt)
        # ChatML, the template of SmolLM2 and Qwen; pass `tokenizer=` for others.
        parts = [f"<|im_start|>system\n{system}<|im_end|>\n"] if system else []
        parts += [f"<|im_start|>{r}\n{c}<|im_end|>\n" for r, c in turns]
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        return "".join(parts)

    def info(self) -> dict:
        """What the server says it serves (asked once, blocking up to 6 s), and where."""
        mine = {"runner": "remote", "base_url": self.base_url, "outstanding": self._outstanding,
                "sends_priority": "priority" not in self.refused}
        if self._info is None:
            try:
                fut = asyncio.run_coroutine_threadsafe(self.http.request("GET", "/models", None), self._loop)
                models = json.loads(fut.result(timeout=6.0))["data"]
                self._info = {"name": models[0]["id"] if models else None,
                              "server": models[0].get("info") if models else None}
            except Exception as exc:  # info is advisory; never fail a caller over it
                return {**mine, "error": str(exc) or type(exc).__name__}
        return {**self._info, **mine}

    def close(self) -> None:
        """Cancel what is in flight (its handles complete as "cancelled") and stop."""
        if self.closed:
            return
        self.closed = True
        if self._loop.is_running():
            async def cancel_all() -> None:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            try:
                asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(timeout=5)
            except Exception:
                pass          # a stuck request: its handle is finished below
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        with self._lock:
            live, self._live = self._live, {}
        for handle, finish in live.values():   # jobs whose task never started
            finish(handle, failed(handle.kind, Status.CANCELLED, "the model was closed"))

    # -- requests --------------------------------------------------------------
    def submit(self, call: Call) -> JobHandle:
        """Start `call`; the returned handle completes with its result."""
        box: list[Callable[[], object]] = []
        handle: JobHandle = JobHandle(next_job_id(), call.kind, lambda _id: box and box[0]())
        box.append(self.request(call, handle, JobHandle._finish))
        return handle

    def request(self, call: Call, handle: JobHandle, finish: Finish,
                submitted: float | None = None) -> Callable[[], object]:
        """Send `call`, its text pieces to `handle` and its result to
        `finish(handle, result)` (from this client's thread, or before this
        returns when it is refused). `submitted` (monotonic) is when the job
        began, for its deadline and latency. Returns what cancels it."""
        submitted = submitted or time.monotonic()
        if call.refused is not None:
            finish(handle, failed(call.kind, Status.ERROR, call.refused, submitted))
            return _nothing
        with self._lock:
            full = self.closed or self._outstanding >= self.max_outstanding
            if not full:
                self._outstanding += 1
                self._live[handle.job_id] = (handle, finish)
        if full:
            finish(handle, failed(call.kind, Status.ERROR, "closed", submitted) if self.closed else
                   failed(call.kind, Status.OVERLOADED, "too many outstanding remote requests", submitted))
            return _nothing
        body = dict(call.body)
        if self.model:
            body["model"] = self.model
        for name in self.refused:
            body.pop(name, None)
        return launch_on(self._loop, lambda: self._loop.create_task(self._run(handle, finish, call, body, submitted)),
                         lambda t: t.cancelled() and self._settle(
                             handle, finish, call, failed(call.kind, Status.CANCELLED, None, submitted)))

    async def _run(self, handle: JobHandle, finish: Finish, call: Call, body: dict, submitted: float) -> None:
        deadline = None if call.deadline_s is None else submitted + call.deadline_s
        if deadline is not None:
            body["hamlet_deadline_s"] = max(0.0, deadline - time.monotonic())
        try:
            result = await exchange(self, handle, call.kind, call.path, body, submitted, deadline)
        except asyncio.CancelledError:
            result = failed(call.kind, Status.CANCELLED, None, submitted)
        except Exception as exc:
            result = failed(call.kind, Status.ERROR, f"{type(exc).__name__}: {exc}", submitted)
        self._settle(handle, finish, call, result)

    def _settle(self, handle: JobHandle, finish: Finish, call: Call, result) -> None:
        with self._lock:
            live = self._live.pop(handle.job_id, None)
            self._outstanding -= live is not None
        self.metrics.observe_result(call.priority, result)
        if live is not None:      # else close() finished it
            finish(handle, result)

    def refuses(self, name: str) -> None:
        """This server refused the optional field `name` (REFUSABLE): it is
        not sent to it again (logged once)."""
        if name not in self.refused:
            self.refused.add(name)
            log.warning("%s refuses %s (for priorities start vLLM with --scheduling-policy "
                        "priority); sending requests without it", self.base_url, name)


def launch_on(loop: asyncio.AbstractEventLoop, start: Callable[[], asyncio.Task],
              ended: Callable[[asyncio.Task], object]) -> Callable[[], object]:
    """Start a job's task on `loop` (from any thread: `start()` runs there)
    and return what cancels it. `ended(task)` runs once the task is done,
    also when it was cancelled before its first step, when the coroutine's
    own handlers never ran (a cancel right after submit)."""
    task_box: list[asyncio.Task] = []

    def launch() -> None:
        task = start()
        task.add_done_callback(ended)
        task_box.append(task)

    def cancel() -> None:   # runs after launch: the loop keeps call_soon order
        try:
            loop.call_soon_threadsafe(lambda: task_box and task_box[0].cancel())
        except RuntimeError:
            pass            # the loop is closed; close() finished the handle
    loop.call_soon_threadsafe(launch)
    return cancel


def _nothing() -> None:
    """The cancel of a request that never started."""

