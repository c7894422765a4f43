"""Hamlet's inference engine: a continuous batcher over a transformers LM.

Import is light (no torch); `load_llm` imports torch when called. See
api.py for the interfaces (`LLM`, `Handle`, `Embedder`, `Priority`,
results), jobs.py for what travels to the engine and back, engine.py for
the batcher (with scheduler.py and batch.py), backend.py / runners.py /
cuda.py for where it runs, remote.py for the OpenAI-compatible HTTP
backend (calls.py: its request bodies; http11.py: its HTTP), pool.py for
several of them, serve.py for `hamlet llm-serve` (on http_server.py), and
nats_llm.py / nats_worker.py / nats_wire.py for engines as a NATS queue
group (`hamlet llm-worker`, `--model nats://HOST:PORT/WORLD`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .api import LLM, Embedder, GenerationResult, Handle, Priority, RunsIn, ScoreResult, Status, Steppable

if TYPE_CHECKING:
    from .backend import Backend
    from .client import EngineClient

__all__ = ["LLM", "Embedder", "GenerationResult", "Handle", "Priority", "RunsIn", "ScoreResult", "Status",
           "Steppable", "client_for", "engine_urls", "load_llm"]

# Defaults of the engine's bounds; see Engine.__init__ for the reasons.
DEFAULT_LIMITS = {"max_batch": 32, "max_queue": 256}
# On a CPU, decode steps of up to 4 rows (a reply to a person, alone) read
# int8 copies of the weights: ~2x faster matmuls where a step is bound by
# memory (Engine, llama.quantize_int8). Pass int8_decode_rows=0 for exact bf16.
CPU_INT8_DECODE_ROWS = 4


def engine_urls(model: str) -> list[str] | None:
    """The engine URLs `model` names (one URL, or several separated by
    commas), or None when it names no URL (a model folder, a hub id).
    ValueError naming the entry when one of a list is not an http:// URL."""
    from urllib.parse import urlsplit

    if not model.strip().startswith(("http://", "https://")):
        return None
    urls = [u.strip() for u in model.split(",")]
    for url in urls:
        try:
            parts = urlsplit(url)
            ok = parts.scheme == "http" and bool(parts.hostname) and parts.port != 0
        except ValueError:    # a port that is not a number
            ok = False
        if not ok:
            raise ValueError(f"engine URL {url!r} in {model!r}: each engine is an http://host:port URL "
                             "(put TLS in front with a proxy)")
    if len(set(urls)) != len(urls):
        raise ValueError(f"{model!r} names an engine twice")
    return urls


def load_llm(model: str | None = None, *, device: str = "auto", dtype: str = "auto", runner: str = "auto",
             registry=None, threads: int | None = None, nice: int = 15, **limits) -> LLM:
    """Load a model and start the engine.

    model: None or "embedded" (SmolLM2-135M-Instruct), a local Hugging Face
      folder, or a hub id (needs network). A URL (http://...) returns a
      `RemoteLLM` for an OpenAI-compatible server instead; several URLs,
      comma-separated, an `EnginePool` that spreads jobs over them.
      `nats://host:port/<world>` returns a `NatsLLM` (nats_llm.py): the jobs
      go to the NATS queue group of `hamlet llm-worker --world <world>`
      processes on that NATS server (port 4222 when left out).
    runner: "auto" (cuda on a GPU, else "process"), "process", "thread",
      "inline" (the caller calls `llm.step()`), or "cuda".
    limits: max_batch, max_queue, max_seq_len, prefill_tokens, prefix_entries,
      policy ("priority" or "fifo"), urgent_reserve, max_hold_s, int8_decode_rows, block_rows.
    nice: the worker process's nice value (runner "process"; see ServerConfig.llm_nice).
    """
    from .metrics import EngineMetrics
    if model and model.strip().startswith("nats://"):
        from .nats_llm import NatsLLM
        return NatsLLM.from_model(model, registry=registry)
    urls = engine_urls(model) if model else None
    if urls and len(urls) > 1:
        from .pool import EnginePool
        return EnginePool(urls, registry=registry)
    if urls:
        from .remote import RemoteLLM
        return RemoteLLM(urls[0], registry=registry)
    from .client import EngineClient
    from .model import ensure_embedded_converted, load_model, pick_device

    limits = {**DEFAULT_LIMITS, **limits}
    outstanding = limits["max_queue"] + limits["max_batch"]
    metrics = EngineMetrics(registry)
    dev = pick_device(device)
    if dev == "cpu":
        from .model import cpu_has_native_bf16
        # int8 weight copies pay where a one-row step is bound by reading bf16
        # weights (avx512 CPUs: 27 against 42 ms a step); on an AVX2-only CPU
        # in float32 the int8 kernel was slower (6.7 against 9.2 tok/s).
        limits.setdefault("int8_decode_rows", CPU_INT8_DECODE_ROWS if cpu_has_native_bf16() else 0)
    if runner == "auto":
        runner = "cuda" if dev.startswith("cuda") else "process"
    if runner == "process":
        from transformers import AutoTokenizer

        from .runners import ProcessBackend
        source = str(ensure_embedded_converted()) if model in (None, "embedded") else model
        backend = ProcessBackend(model, dev, dtype, limits, inbox_size=outstanding + 64, threads=threads, nice=nice)
        tokenizer = AutoTokenizer.from_pretrained(source)
        return EngineClient(backend, tokenizer, backend.info, max_outstanding=outstanding, metrics=metrics)

    if threads:
        import torch
        torch.set_num_threads(threads)
    loaded = load_model(model, device=dev, dtype=dtype)
    return client_for(loaded, runner=runner, metrics=metrics, **limits)


def client_for(loaded, *, runner: str = "thread", metrics=None, registry=None, **limits) -> EngineClient:
    """An `LLM` over an already loaded model (tests and benchmarks share one load)."""
    from .client import EngineClient
    from .engine import Engine
    from .metrics import EngineMetrics

    limits = {**DEFAULT_LIMITS, **limits}
    outstanding = limits["max_queue"] + limits["max_batch"]
    engine = Engine(loaded, **limits)
    backend: Backend
    if runner == "inline":
        from .runners import InlineBackend
        backend = InlineBackend(engine)
    elif runner == "thread":
        from .runners import ThreadBackend
        backend = ThreadBackend(engine, inbox_size=outstanding + 64)
    elif runner == "cuda":
        from .cuda import CudaBackend
        backend = CudaBackend(engine)
    else:
        raise ValueError(f"unknown runner {runner!r}")
    return EngineClient(backend, loaded.tokenizer, loaded.info(), max_outstanding=outstanding,
                        metrics=metrics or EngineMetrics(registry))
