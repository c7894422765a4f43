"""Benchmark of Hamlet's inference engine on the embedded model (CPU or GPU).

Prints a few progress lines, then as its LAST line one JSON object, all
figures from this run:
  vs_seed_pipeline       engine tok/s over a one-prompt-at-a-time
                         pipeline('text-generation') loop (the pipeline is
                         timed on a subset of the prompts: `pipeline_prompts`)
  vs_static_batch        engine over transformers' batched generate on a
                         staggered workload (arrivals over time, 8-64 new tokens)
  high_priority_p95_ms   24-token HUMAN_REPLY requests while 64 low-priority
                         ones run (priority scheduling) and ..._fifo (FIFO)
  tick_lateness_p99_ms   a 20 Hz asyncio loop while the CPU runner (worker
                         process) generates; ..._inline with steps run inline
  ceiling_share          the engine's batched tok/s times the model's FLOPs
                         per token (2 x its matmul parameters, the tied
                         output projection included) over the matmul rate
                         measured in this run (`matmul_gflops`: a square
                         GEMM in the engine's dtype on the same threads)
  compute_share          the same with the prompts' prefill counted too (the
                         tokens past the shared, cached prefix, `prefill_tokens`):
                         the share of the measured matmul rate the whole
                         batched workload used. ceiling_share counts only the
                         generated tokens, so on this workload (as many
                         prefilled tokens as generated) it can reach about
                         half of compute_share at most
  one_row_step_ms        ms a token of one greedy generation served alone
                         (a person's reply: the one-row decode step), the
                         engine as it runs (block forms, fused decode layer);
                         ..._float32 the same engine with block_rows=0
                         (float32 weights in oneDNN's layout, torch ops between
                         them), measured alternately
Usage: .venv/bin/python bench/inference.py [--quick] [--device cuda]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from agents.inference import Priority, client_for, load_llm  # noqa: E402
from agents.inference.blockweights import BLOCK_ROWS  # noqa: E402
from agents.inference.model import load_model  # noqa: E402
from inference_baselines import bench_pipeline, bench_static_staggered, staggered  # noqa: E402

WORLD = ("You are a character in Hamlet, a small village in a green valley. The village has a square with a "
         "well, a tavern called the Crooked Mug run by Old Tom, a smithy, a bakery, a school house, a mill by "
         "the river and a chapel on the hill. It is late spring; the harvest fair is in three days and "
         "everyone is busy preparing. Speak in one or two short sentences, in character. ")
TRADES = ["baker", "smith", "miller", "teacher", "guard", "farmer", "weaver", "fisher", "herbalist", "carpenter",
          "innkeeper", "shepherd", "potter", "priest", "tailor", "storyteller"]
MOODS = ["cheerful", "grumpy", "shy", "curious"]
LINES = ["Good morning! What are you working on today?", "Have you heard any news about the fair?",
         "Where can I find the mill?", "What do you think of Old Tom?"]


def npc_prompts(n: int) -> tuple[str, list[str]]:
    prefix = "<|im_start|>system\n" + WORLD
    prompts = []
    for i in range(n):
        persona = (f"Your name is Villager{i}, the {MOODS[i % 4]} {TRADES[i % 16]} of Hamlet, "
                   f"{20 + i % 50} years old.")
        prompts.append(prefix + persona + "<|im_end|>\n<|im_start|>user\n" + LINES[(i // 16) % 4]
                       + "<|im_end|>\n<|im_start|>assistant\n")
    return prefix, prompts


@torch.inference_mode()
def matmul_gflops(dtype: torch.dtype, device: str, n: int = 1536, repeats: int = 8) -> float:
    """The best rate of an n x n x n GEMM: what the cores compute at best."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def flops_per_token(model) -> int:
    """2 x the parameters a token's forward multiplies by: every Linear's
    weight and the output projection (tied to the embeddings or not); the
    embedding lookup itself is free."""
    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    head = model.get_output_embeddings()
    if head is not None and not isinstance(head, torch.nn.Linear):
        n += head.weight.numel()
    return 2 * n


def run_inline(llm, handles) -> None:
    while not all(h.done() for h in handles):
        llm.step()


def bench_throughput(loaded, prompts, prefix, new_tokens) -> tuple[float, float]:
    """Generated tok/s over the whole batch, and the wall time it took."""
    # The batch holds all prompts beside the rows the engine keeps for HUMAN_REPLY.
    llm = client_for(loaded, runner="inline", max_batch=len(prompts) + 4, max_queue=len(prompts))
    warm = [llm.generate(prompts[0], max_new_tokens=2, prefix=prefix)]
    run_inline(llm, warm)
    t0 = time.perf_counter()
    handles = [llm.generate(p, max_new_tokens=new_tokens, prefix=prefix) for p in prompts]
    run_inline(llm, handles)
    wall = time.perf_counter() - t0
    llm.close()
    tokens = sum(len(h.result().token_ids) for h in handles)
    return tokens / wall, wall


def bench_one_row(loaded, prompt: str, prefix: str, block_rows: int, new_tokens: int = 32) -> float:
    """ms a token after the first, one greedy generation alone in the engine."""
    llm = client_for(loaded, runner="inline", max_batch=4, max_queue=4, block_rows=block_rows)
    handle = llm.generate(prompt, max_new_tokens=new_tokens, prefix=prefix, temperature=0)
    run_inline(llm, [handle])
    llm.close()
    r = handle.result()
    return (r.latency_s - r.ttft_s) * 1000 / max(1, len(r.token_ids) - 1)


def prefill_tokens(tokenizer, prefix: str, prompts: list[str]) -> int:
    """Tokens the engine prefills for `prompts` past their shared prefix
    (cached by the warm-up, so not computed in the timed run)."""
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return sum(count(p) for p in prompts) - len(prompts) * count(prefix)


def bench_engine_staggered(loaded, jobs, prefix, max_batch) -> float:
    llm = client_for(loaded, runner="inline", max_batch=max_batch, max_queue=len(jobs))
    handles, i, start = [], 0, time.perf_counter()
    while i < len(jobs) or not all(h.done() for h in handles):
        now = time.perf_counter() - start
        while i < len(jobs) and jobs[i][0] <= now:
            handles.append(llm.generate(jobs[i][1], max_new_tokens=jobs[i][2], prefix=prefix))
            i += 1
        if not llm.step() and i < len(jobs):
            time.sleep(max(0.0, jobs[i][0] - (time.perf_counter() - start)))
    wall = time.perf_counter() - start
    llm.close()
    return sum(len(h.result().token_ids) for h in handles) / wall


def bench_priority(loaded, prompts, prefix, policy, n_high=8) -> float:
    llm = client_for(loaded, runner="inline", max_batch=32, max_queue=len(prompts) + n_high, policy=policy)
    low = [llm.generate(p, max_new_tokens=32, prefix=prefix, priority=Priority.REFLECTION) for p in prompts]
    high, next_at, start = [], 0.5, time.perf_counter()
    while not all(h.done() for h in low + high):
        if len(high) < n_high and time.perf_counter() - start >= next_at:
            p = prompts[len(high)].replace("<|im_start|>user\n", "<|im_start|>user\nA traveller asks: ")
            high.append(llm.generate(p, max_new_tokens=24, prefix=prefix, priority=Priority.HUMAN_REPLY))
            next_at += 0.4
        llm.step()
    llm.close()
    lat = [h.result().latency_s * 1000 for h in high]
    return statistics.quantiles(lat, n=20)[18] if len(lat) > 1 else lat[0]


async def tick_lateness(llm, prompts, prefix, inline: bool) -> float:
    handles = [llm.generate(p, max_new_tokens=32, prefix=prefix) for p in prompts]
    period, late, k, start = 0.05, [], 0, time.monotonic()
    while not all(h.done() for h in handles):
        k += 1
        target = start + k * period
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        late.append(max(0.0, time.monotonic() - target))
        if inline:
            llm.step()                                  # inference inline in the tick
    return statistics.quantiles(late, n=100)[98] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer prompts (a smoke run)")
    ap.add_argument("--pipeline-prompts", type=int, default=8)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (tick lateness then uses the CUDA runner)")
    args = ap.parse_args()
    n = 16 if args.quick else 64
    loaded = load_model(device=args.device, dtype=args.dtype)
    prefix, prompts = npc_prompts(n)
    info = {"model": loaded.info()["name"], "device": loaded.device, "dtype": loaded.dtype,
            "threads": torch.get_num_threads(), "prompts": n}
    print("loaded", info, flush=True)

    gflops = matmul_gflops(getattr(torch, loaded.dtype) if isinstance(loaded.dtype, str) else loaded.dtype,
                           loaded.device)
    fpt = flops_per_token(loaded.model)
    engine_tps, wall = bench_throughput(loaded, prompts, prefix, 32)
    share = engine_tps * fpt / (gflops * 1e9)
    prefill = prefill_tokens(loaded.tokenizer, prefix, prompts)
    compute_share = (engine_tps * wall + prefill) * fpt / (gflops * 1e9 * wall)
    print(f"engine: {engine_tps:.1f} tok/s; matmul {gflops:.0f} GFLOP/s, {fpt / 1e6:.0f} MFLOP/token: "
          f"{share:.0%} of the ceiling ({gflops * 1e9 / fpt:.0f} tok/s)", flush=True)
    print(f"with the {prefill} prefilled tokens: {compute_share:.0%} of the matmul rate", flush=True)
    pipe_tps = bench_pipeline(loaded, prompts[: args.pipeline_prompts], 32)
    print(f"pipeline (one at a time, {args.pipeline_prompts} prompts): {pipe_tps:.1f} tok/s", flush=True)

    one_row = {0: [], BLOCK_ROWS: []}
    for _ in range(3):
        for rows in one_row:                            # alternately, so both see the same machine
            one_row[rows].append(bench_one_row(loaded, prompts[5], prefix, rows))
    one_row_ms, one_row_f32 = statistics.median(one_row[BLOCK_ROWS]), statistics.median(one_row[0])
    print(f"one-row step: {one_row_ms:.1f} ms a token; {one_row_f32:.1f} ms with float32 weights", flush=True)

    jobs = staggered(prompts)
    eng_st = bench_engine_staggered(loaded, jobs, prefix, 32)
    static_st = bench_static_staggered(loaded, jobs, 32)
    print(f"staggered: engine {eng_st:.1f} tok/s, static batch {static_st:.1f} tok/s", flush=True)

    p95 = bench_priority(loaded, prompts, prefix, "priority")
    p95_fifo = bench_priority(loaded, prompts, prefix, "fifo")
    print(f"high priority p95: {p95:.0f} ms (fifo {p95_fifo:.0f} ms)", flush=True)

    runner = "cuda" if str(loaded.device).startswith("cuda") else "process"
    inline = client_for(loaded, runner="inline", max_batch=32, max_queue=n)
    late_inline = asyncio.run(tick_lateness(inline, prompts, prefix, inline=True))
    inline.close()
    del loaded
    worker = load_llm(runner=runner, device=args.device, dtype=args.dtype, max_batch=32, max_queue=n)
    asyncio.run(tick_lateness(worker, prompts[:2], prefix, inline=False))       # warm the worker
    late_proc = asyncio.run(tick_lateness(worker, prompts, prefix, inline=False))
    worker.close()
    print(f"tick lateness p99: {runner} runner {late_proc:.1f} ms, inline {late_inline:.1f} ms", flush=True)

    print(json.dumps({
        "vs_seed_pipeline": round(engine_tps / pipe_tps, 2),
        "ceiling_share": round(share, 3), "compute_share": round(compute_share, 3), "prefill_tokens": prefill,
        "matmul_gflops": round(gflops, 1),
        "mflop_per_token": round(fpt / 1e6, 1), "ceiling_tok_s": round(gflops * 1e9 / fpt, 1),
        "vs_static_batch": round(eng_st / static_st, 2),
        "one_row_step_ms": round(one_row_ms, 1), "one_row_step_ms_float32": round(one_row_f32, 1),
        "one_row_speedup": round(one_row_f32 / one_row_ms, 2),
        "high_priority_p95_ms": round(p95, 1),
        "high_priority_p95_ms_fifo": round(p95_fifo, 1),
        "tick_lateness_p99_ms": round(late_proc, 2),
        "tick_lateness_p99_ms_inline": round(late_inline, 2),
        "engine_tok_s": round(engine_tps, 1), "pipeline_tok_s": round(pipe_tps, 1),
        "pipeline_prompts": args.pipeline_prompts,
        "staggered_engine_tok_s": round(eng_st, 1), "staggered_static_tok_s": round(static_st, 1),
        "runner": runner, **info,
    }))


if __name__ == "__main__":
    main()
