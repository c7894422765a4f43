"""The baselines bench/inference.py measures the engine against, in the same
run: transformers' one-prompt-at-a-time text-generation pipeline, and a
static batcher (batched `generate` to the longest request of what has
arrived) on a staggered workload."""
from __future__ import annotations

import random
import time

import torch


def bench_pipeline(loaded, prompts, new_tokens) -> float:
    from transformers import pipeline
    pipe = pipeline("text-generation", model=loaded.model, tokenizer=loaded.tokenizer)
    pipe(prompts[0], max_new_tokens=2, do_sample=False)
    tokens, t0 = 0, time.perf_counter()
    for p in prompts:
        out = pipe(p, max_new_tokens=new_tokens, do_sample=False, return_full_text=False)
        tokens += len(loaded.tokenizer(out[0]["generated_text"], add_special_tokens=False)["input_ids"])
    return tokens / (time.perf_counter() - t0)


def staggered(prompts, seed=1):
    rng = random.Random(seed)
    t, jobs = 0.0, []
    for p in prompts:
        t += rng.expovariate(1 / 0.04)                  # ~25 arrivals per second
        jobs.append((t, p, rng.randint(8, 64)))
    return jobs


@torch.inference_mode()
def bench_static_staggered(loaded, jobs, max_batch) -> float:
    """A static batcher: take everything that has arrived, generate to the longest request, repeat."""
    tok, model = loaded.tokenizer, loaded.model
    tok.padding_side = "left"
    eos = tok.eos_token_id
    done, tokens, start = 0, 0, time.perf_counter()
    while done < len(jobs):
        now = time.perf_counter() - start
        if jobs[done][0] > now:
            time.sleep(jobs[done][0] - now)
            now = jobs[done][0]
        batch = [j for j in jobs[done:done + max_batch] if j[0] <= now]
        enc = tok([p for _, p, _ in batch], return_tensors="pt", padding=True)
        out = model.generate(**enc, max_new_tokens=max(n for _, _, n in batch), do_sample=False,
                             pad_token_id=eos)
        for row, (_, _, n) in zip(out[:, enc["input_ids"].shape[1]:].tolist(), batch):
            row = row[:n]
            tokens += row.index(eos) if eos in row else len(row)
        done += len(batch)
    return tokens / (time.perf_counter() - start)
