"""`RemoteLLM`: the `LLM` interface over an OpenAI-compatible HTTP server.

Owns: requests to `/v1/completions` (and `/v1/chat/completions` for `chat`)
of vLLM, TGI, Ollama or `hamlet llm-serve`, with a timeout per request,
retries with exponential backoff on connection errors and 429/502/503/504
(only before any text arrived), a concurrency bound, and an outstanding-job
bound past which handles complete at once as "overloaded". Generations
stream over SSE. Scores use echo mode (`echo`, `max_tokens: 0`,
`logprobs: 0`) and sum the log-probabilities of tokens at or after the end
of the prompt. Requests run on a private event loop in a daemon thread, so
both a synchronous tick loop and asyncio code can hold the handles.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import h11

from .api import GenerationResult, Priority, RunsIn, ScoreResult, Status
from .bans import check_bans
from .handle import JobHandle
from .jobs import failed, next_job_id
from .sampling import sentence_cut

RETRY_STATUS = {429, 502, 503, 504}
MAX_RESPONSE = 16 << 20      # 16 MiB: no sane completion is larger; protects against a broken server


class _HttpStatus(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        self.status = status


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
            raise ValueError("RemoteLLM speaks plain http:// (put TLS in front with a proxy)")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.root = parts.path.rstrip("/")
        if not self.root.endswith("/v1"):
            self.root += "/v1"
        self.base_url, self.model = base_url, model
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self.max_outstanding = max_outstanding
        self.tokenizer = tokenizer
        self._outstanding = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._sem = asyncio.Semaphore(max_concurrency)
        self._thread = threading.Thread(target=self._loop.run_forever, name="hamlet-remote-llm", daemon=True)
        self._thread.start()
        from .metrics import EngineMetrics
        self.metrics = EngineMetrics(registry)
        self._info: dict | None = None
        self._live: dict[int, JobHandle] = {}    # submitted, not finished (bounded by max_outstanding)
        self.closed = False

    # -- the LLM interface ---------------------------------------------------
    def generate(self, prompt: str, *, max_new_tokens: int = 32, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stop: Sequence[str] = (),
                 priority: int = Priority.CONVERSATION, deadline_s: float | None = None,
                 prefix: str | None = None, sentences: int | None = None,
                 ban: Sequence[str] = ()) -> JobHandle[GenerationResult]:
        body = {"prompt": prompt, "max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                "stream": True, "priority": int(priority)}
        if ban:
            body["bad_words"] = list(ban)   # vLLM's name; `hamlet llm-serve` reads it too
        why = check_bans(ban)
        if why is not None:
            handle: JobHandle[GenerationResult] = JobHandle(next_job_id(), "generate", lambda _id: None)
            handle._finish(failed("generate", Status.ERROR, why, time.monotonic()))
            return handle
        if sentences:
            # `hamlet llm-serve` stops there itself; other servers are cut off here
            body["hamlet_sentences"] = int(sentences)
        if seed is not None:
            body["seed"] = seed
        if stop:
            body["stop"] = list(stop)
        if prefix:
            body["hamlet_prefix"] = prefix
        return self._start("generate", "/completions", body, priority, deadline_s)

    def chat(self, system: str, turns: list[tuple[str, str]], **kw) -> JobHandle[GenerationResult]:
        """Generate through `/v1/chat/completions` (the server applies its chat template)."""
        msgs = ([{"role": "system", "content": system}] if system else [])
        msgs += [{"role": r, "content": c} for r, c in turns]
        body = {"messages": msgs, "max_tokens": kw.get("max_new_tokens", 32),
                "temperature": kw.get("temperature", 0.0), "top_p": kw.get("top_p", 1.0), "stream": True,
                "priority": int(kw.get("priority", Priority.CONVERSATION))}
        if kw.get("stop"):
            body["stop"] = list(kw["stop"])
        return self._start("generate", "/chat/completions", body, kw.get("priority", 1), kw.get("deadline_s"))

    def score(self, prompt: str, candidates: Sequence[str], *, priority: int = Priority.PLANNING,
              deadline_s: float | None = None, prefix: str | None = None) -> JobHandle[ScoreResult]:
        body = {"prompt": [prompt + c for c in candidates], "max_tokens": 0, "echo": True, "logprobs": 0,
                "temperature": 0.0, "priority": int(priority), "_prompt_len": len(prompt)}
        return self._start("score", "/completions", body, priority, deadline_s)

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
        if self._info is None:
            try:
                fut = asyncio.run_coroutine_threadsafe(self._request("GET", "/models", None, 5.0), self._loop)
                models = json.loads(fut.result(timeout=6.0))["data"]
                self._info = {"name": models[0]["id"] if models else None,
                              "server": models[0].get("info") if models else None}
            except Exception as exc:  # info is advisory; never fail a caller over it
                return {"runner": "remote", "base_url": self.base_url, "error": str(exc)}
        return {**self._info, "runner": "remote", "base_url": self.base_url}

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
        for handle in live.values():   # jobs whose task never started
            handle._finish(failed(handle.kind, Status.CANCELLED, "the model was closed"))

    # -- plumbing --------------------------------------------------------------
    def _start(self, kind: str, path: str, body: dict, priority, deadline_s: float | None) -> JobHandle:
        job_id, submitted = next_job_id(), time.monotonic()
        task_box: list = []
        handle: JobHandle = JobHandle(job_id, kind, lambda _id: self._loop.call_soon_threadsafe(
            lambda: task_box and task_box[0].cancel()))
        with self._lock:
            full = self.closed or self._outstanding >= self.max_outstanding
            self._outstanding += not full
            if not full:
                self._live[job_id] = handle
        if full:
            handle._finish(failed(kind, Status.ERROR, "closed", submitted) if self.closed else
                           failed(kind, Status.OVERLOADED, "too many outstanding remote requests", submitted))
            return handle
        if self.model:
            body["model"] = self.model

        def launch():
            task_box.append(self._loop.create_task(self._run(handle, kind, path, body, priority,
                                                             submitted, deadline_s)))
        self._loop.call_soon_threadsafe(launch)
        return handle

    async def _run(self, handle, kind, path, body, priority, submitted, deadline_s) -> None:
        deadline = None if deadline_s is None else submitted + deadline_s
        if deadline is not None:
            body["hamlet_deadline_s"] = max(0.0, deadline_s)
        try:
            result = await self._with_retries(handle, kind, path, body, submitted, deadline)
        except asyncio.CancelledError:
            result = failed(kind, Status.CANCELLED, None, submitted)
        except Exception as exc:
            result = failed(kind, Status.ERROR, f"{type(exc).__name__}: {exc}", submitted)
        with self._lock:
            self._outstanding -= 1
            self._live.pop(handle.job_id, None)
        self.metrics.observe_result(int(priority), result)
        handle._finish(result)

    async def _with_retries(self, handle, kind, path, body, submitted, deadline):
        attempt = 0
        while True:
            timeout = self.timeout_s if deadline is None else min(self.timeout_s, deadline - time.monotonic())
            if timeout <= 0:
                return failed(kind, Status.DEADLINE, "deadline passed", submitted)
            try:
                async with self._sem:
                    if kind == "score":
                        return await asyncio.wait_for(self._score(body, submitted), timeout)
                    return await asyncio.wait_for(self._generate(handle, path, body, submitted), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                if deadline is not None and time.monotonic() >= deadline - 1e-3:
                    return failed(kind, Status.DEADLINE, "deadline passed", submitted)
                error, status = "request timed out", Status.ERROR
            except _HttpStatus as exc:
                if exc.status not in RETRY_STATUS:
                    return failed(kind, {504: Status.DEADLINE}.get(exc.status, Status.ERROR), str(exc), submitted)
                error, status = str(exc), Status.OVERLOADED if exc.status in (429, 503) else Status.ERROR
            except (ConnectionError, OSError, h11.ProtocolError) as exc:
                error, status = f"{type(exc).__name__}: {exc}", Status.ERROR
            if handle.text_so_far or attempt >= self.retries:
                return failed(kind, status, error, submitted)
            await asyncio.sleep(self.backoff_s * (2 ** attempt))
            attempt += 1

    async def _generate(self, handle, path, body, submitted) -> GenerationResult:
        text: list[str] = []
        finish, first_at = None, None
        sentences = body.get("hamlet_sentences")
        events = self._sse(path, body)
        async for event in events:
            if "error" in event:
                err = event["error"]
                kind = err.get("type") if isinstance(err, dict) else None
                status = kind if kind in (Status.DEADLINE, Status.OVERLOADED, Status.CANCELLED) else Status.ERROR
                return failed("generate", status, str(err), submitted, "".join(text))
            choice = (event.get("choices") or [{}])[0]
            piece = choice.get("text")
            if piece is None:
                piece = (choice.get("delta") or {}).get("content")
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
            finish = choice.get("finish_reason") or finish
            if cut is not None:
                finish = "stop"
                await events.aclose()   # closes the connection: the server cancels the rest
                break
        now = time.monotonic()
        return GenerationResult("".join(text), [], Status.OK, finish,
                                None if first_at is None else first_at - submitted, now - submitted)

    async def _score(self, body, submitted) -> ScoreResult:
        prompt_len = body["_prompt_len"]
        send = {k: v for k, v in body.items() if k != "_prompt_len"}
        reply = json.loads(await self._request("POST", "/completions", send, None))
        totals = []
        for choice in sorted(reply["choices"], key=lambda c: c["index"]):
            lp = choice["logprobs"]
            totals.append(sum(v for v, off in zip(lp["token_logprobs"], lp["text_offset"])
                              if v is not None and off >= prompt_len))
        return ScoreResult(totals, Status.OK, time.monotonic() - submitted)

    # -- minimal HTTP/1.1 over asyncio + h11 ---------------------------------
    async def _open(self, method: str, path: str, body: dict | None):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                self.connect_timeout_s)
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

    async def _events(self, conn, reader):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            yield event
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return

    async def _request(self, method: str, path: str, body: dict | None, timeout: float | None) -> bytes:
        conn, reader, writer = await self._open(method, path, body)
        try:
            status, out = 0, bytearray()
            async for event in self._events(conn, reader):
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    out += event.data
                    if len(out) > MAX_RESPONSE:
                        raise ConnectionError("response too large")
            if status != 200:
                raise _HttpStatus(status, bytes(out))
            return bytes(out)
        finally:
            writer.close()

    async def _sse(self, path: str, body: dict):
        conn, reader, writer = await self._open("POST", path, body)
        try:
            status, buf, raw = 0, b"", bytearray()
            async for event in self._events(conn, reader):
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    if status != 200:
                        raw += event.data
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
                        raise ConnectionError("SSE event too large")
            if status != 200:
                raise _HttpStatus(status, bytes(raw))
        finally:
            writer.close()

