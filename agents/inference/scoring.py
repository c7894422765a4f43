"""Scoring candidate continuations by log-likelihood, in one batched forward.

Owns the token bookkeeping: each candidate is tokenized together with the
prompt (so merges across the boundary match what the model would see), its
continuation is what follows the longest common prefix with the tokenized
prompt, and a shared cached prefix (if any) is reused as past keys/values. The
tokens all candidates share past it are run once and used as the past of
the candidates' tails (a choice among 3-4 actions after a 60-token prompt
was ~300 tokens of forward, now ~80; six small-talk lines after a persona's
cached prompt and ~100 tokens of context ~700, now ~170). The engine calls `score` with
its `Forward`, tokenizer and the request's prefix entry (`Engine.prefix`);
nothing here touches the engine itself.
"""
from __future__ import annotations

import time

import torch

from .api import ScoreResult
from .forward import Forward
from .jobs import ScoreRequest
from .kv import PrefixEntry, common_prefix_len


def split_tokens(tok, prompt: str, candidate: str) -> tuple[list[int], int, list[int]]:
    """-> (ids of prompt+candidate, index of the first continuation token, char offsets)."""
    enc = tok(prompt + candidate, return_offsets_mapping=True)
    ids = enc["input_ids"]
    offsets = [a for a, _ in enc["offset_mapping"]]
    ctx = tok(prompt)["input_ids"] if prompt else []
    return ids, common_prefix_len(ctx, ids), offsets


@torch.inference_mode()
def score(fw: Forward, tok, req: ScoreRequest, entry: PrefixEntry | None, max_len: int) -> ScoreResult:
    """entry: the cached keys/values of `req.prefix`, if any; max_len: the engine's sequence limit."""
    rows = [split_tokens(tok, req.prompt, c) for c in req.candidates]
    if not rows:
        return ScoreResult([], latency_s=time.monotonic() - req.submitted)
    # A token can only be scored from the logits of the token before it.
    firsts = [max(n, 1) for _, n, _ in rows]
    past, skip = None, 0
    shared = rows[0][0]
    common = min(min(common_prefix_len(shared, ids) for ids, _, _ in rows), min(firsts) - 1)  # all rows share
    if entry is not None:
        skip = max(0, min(common_prefix_len(entry.ids, shared), common))
        if skip > 0:
            past = (entry.k[:, :, :skip], entry.v[:, :, :skip])                # [L, H, skip, D] each
    if len(rows) > 1 and common > skip:
        # the shared tokens past the cached prefix, once, not once per candidate
        _, cache = fw.dense([shared[skip:common]], past)
        nk, nv = cache.stacked_new(0)                                           # [L, H, common-skip, D]
        past = (nk, nv) if past is None else (torch.cat([past[0], nk], 2), torch.cat([past[1], nv], 2))
        skip = common
    longest = max(len(ids) for ids, _, _ in rows)
    if longest > max_len:
        raise ValueError(f"prompt + candidate of {longest} tokens exceeds {max_len}")
    hidden, _ = fw.dense([ids[skip:] for ids, _, _ in rows], past)             # [C, q, hidden]
    # Gather the positions that predict continuation tokens: token t from position t-1.
    b_idx, p_idx, targets, owner = [], [], [], []
    for c, ((ids, _, _), first) in enumerate(zip(rows, firsts)):
        for t in range(first, len(ids)):
            b_idx.append(c)
            p_idx.append(t - 1 - skip)
            targets.append(ids[t])
            owner.append(c)
    dev = hidden.device
    if targets:
        logits = fw.logits(hidden[torch.tensor(b_idx, device=dev), torch.tensor(p_idx, device=dev)])  # [N, vocab]
        lp = torch.log_softmax(logits, dim=-1)
        picked = lp[torch.arange(len(targets), device=dev), torch.tensor(targets, device=dev)].tolist()
    else:
        picked = []
    per_tok: list[list[float]] = [[] for _ in rows]
    per_off: list[list[int]] = [[] for _ in rows]
    for c, value, (ids, _, offs), t in zip(owner, picked, [rows[o] for o in owner], _positions(rows, firsts)):
        per_tok[c].append(value)
        per_off[c].append(offs[t])
    return ScoreResult([sum(v) for v in per_tok], latency_s=time.monotonic() - req.submitted,
                       token_logprobs=per_tok, token_offsets=per_off)


def _positions(rows, firsts):
    for (ids, _, _), first in zip(rows, firsts):
        yield from range(first, len(ids))
