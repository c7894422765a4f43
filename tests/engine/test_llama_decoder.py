"""The engine's own Llama decoder (agents/inference/llama.py) against
transformers' modules on the real embedded model, and the slot cache's
capacity following the longest running sequence."""
from __future__ import annotations

import pytest
import torch

from agents.inference import llama
from agents.inference.forward import Forward
from agents.inference.kv import CAPACITY_STEP, SHRINK_AFTER, SlotKV

pytestmark = pytest.mark.model


def test_the_embedded_model_runs_on_the_own_decoder(loaded):
    assert llama.supports(loaded.model)
    assert Forward(loaded.model, "cpu").decoder is not None


def test_own_decoder_matches_transformers_on_prefill_and_decode(loaded):
    ours, theirs = Forward(loaded.model, "cpu"), Forward(loaded.model, "cpu", own_decoder=False)
    assert theirs.decoder is None
    tok = loaded.tokenizer
    rows = [tok("The mill by the river turns all day")["input_ids"],
            tok("Good morning! The baker has fresh bread")["input_ids"],
            tok("Hi")["input_ids"]]
    results = []
    for fw in (ours, theirs):
        kv = SlotKV(fw.layers, 4, fw.kv_heads, fw.head_dim, 512, fw.dtype, "cpu")
        # prefill the three rows (right-padded, different lengths), then three decode steps
        last = fw.prefill(kv, 0, rows, [0, 0, 0])                              # [3, hidden]
        lengths = [len(r) for r in rows]
        steps = [last]
        tokens = [r[-1] for r in rows]
        for _ in range(3):
            h = fw.decode(kv, tokens, lengths)                                   # [3, hidden]
            steps.append(h)
            tokens = fw.logits(h).argmax(-1).tolist()
            lengths = [n + 1 for n in lengths]
        results.append(torch.stack(steps))                                      # [4, 3, hidden]
    ours_h, theirs_h = results
    assert ours_h.shape == theirs_h.shape
    assert torch.allclose(ours_h, theirs_h, atol=2e-3, rtol=1e-3), (ours_h - theirs_h).abs().max()
    # and the next tokens they lead to are the same
    assert torch.equal(ours.logits(ours_h).argmax(-1), theirs.logits(theirs_h).argmax(-1))


def test_dense_forward_over_a_shared_past_matches(loaded):
    ours, theirs = Forward(loaded.model, "cpu"), Forward(loaded.model, "cpu", own_decoder=False)
    tok = loaded.tokenizer
    past_ids = tok("In the village of Hamlet,")["input_ids"]
    rows = [tok(" the smith")["input_ids"], tok(" a shy weaver sings")["input_ids"]]
    outs = []
    for fw in (ours, theirs):
        _, cache = fw.dense([past_ids])
        past = cache.stacked_new(0)                                            # [L, H, Tp, D] each
        hidden, _ = fw.dense(rows, past)
        outs.append(hidden[0, : len(rows[0])])
    assert torch.allclose(outs[0], outs[1], atol=2e-3, rtol=1e-3)


def test_slot_cache_grows_and_shrinks_with_the_longest_row_and_keeps_its_contents():
    kv = SlotKV(2, 3, 1, 4, 1000, torch.float32, "cpu")
    assert kv.capacity == CAPACITY_STEP
    with torch.inference_mode():
        kv.k[:, 1, :, :10] = 7.0
    kv.ensure_capacity(CAPACITY_STEP + 1)
    assert kv.capacity == 3 * CAPACITY_STEP               # rounded up, plus a step of headroom
    assert torch.all(kv.k[:, 1, :, :10] == 7.0)          # kept across the resize
    kv.ensure_capacity(3 * CAPACITY_STEP)                 # fits: no reallocation
    assert kv.capacity == 3 * CAPACITY_STEP and kv.resizes == 1
    kv.ensure_capacity(5 * CAPACITY_STEP)
    assert kv.capacity == 6 * CAPACITY_STEP
    for _ in range(2 * SHRINK_AFTER):
        kv.ensure_capacity(10)                            # no shrink unless asked
    assert kv.capacity == 6 * CAPACITY_STEP
    for _ in range(SHRINK_AFTER - 1):
        kv.ensure_capacity(10, shrink=True)               # not on a moment's dip ...
    kv.ensure_capacity(4 * CAPACITY_STEP, shrink=True)    # (a longer row again: the count restarts)
    for _ in range(SHRINK_AFTER - 1):
        kv.ensure_capacity(10, shrink=True)
    assert kv.capacity == 6 * CAPACITY_STEP and kv.resizes == 2
    kv.ensure_capacity(10, shrink=True)                   # ... but after SHRINK_AFTER in a row
    assert kv.capacity == 2 * CAPACITY_STEP and kv.resizes == 3
    assert torch.all(kv.k[:, 1, :, :10] == 7.0)
    with pytest.raises(ValueError):
        kv.ensure_capacity(1001)
    assert kv.capacity == 2 * CAPACITY_STEP               # a refused size changes nothing


def _teacher_forced_logits(fw, ids: list[int], follow: list[int], rows: int = 1) -> torch.Tensor:
    """Prefill `ids` in `rows` identical rows, then feed `follow` one token a
    step; returns row 0's logits before each fed token. -> [len(follow), vocab]"""
    kv = SlotKV(fw.layers, rows, fw.kv_heads, fw.head_dim, 512, fw.dtype, "cpu")
    h = fw.prefill(kv, 0, [ids] * rows, [0] * rows)
    out = [fw.logits(h)[0]]
    for i, t in enumerate(follow[:-1]):
        h = fw.decode(kv, [t] * rows, [len(ids) + i] * rows)
        out.append(fw.logits(h)[0])
    return torch.stack(out)


def test_int8_decode_steps_stay_close_to_bf16_and_only_for_small_batches(loaded):
    exact, small = Forward(loaded.model, "cpu"), Forward(loaded.model, "cpu", int8_rows=2)
    assert small.int8_rows == 2 and small.decoder.layers[0].q8[0][0].dtype == torch.int8
    tok = loaded.tokenizer
    ids = tok("<|im_start|>user\nHello Ada, how is the bakery today?<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    ref = _teacher_forced_logits(exact, ids, [0] * 1)
    follow = []
    for _ in range(16):                                   # the exact model's greedy continuation
        follow.append(int(ref[-1].argmax()))
        ref = _teacher_forced_logits(exact, ids, follow + [0])
    ref = ref[:-1]                                        # [16, vocab]
    q8 = _teacher_forced_logits(small, ids, follow)
    assert not torch.equal(q8[1:], ref[1:])               # the int8 weights were used ...
    agree = (q8.argmax(-1) == ref.argmax(-1)).float().mean().item()
    top3 = q8.topk(3, dim=-1).indices
    assert agree >= 0.8, agree                            # ... and choose as bf16 does
    assert all(int(ref[i].argmax()) in top3[i].tolist() for i in range(len(follow)))
    lp_ref, lp_q8 = ref.log_softmax(-1), q8.log_softmax(-1)
    chosen = torch.tensor(follow)[:, None]
    assert (lp_ref.gather(1, chosen) - lp_q8.gather(1, chosen)).abs().mean() < 0.3
    # past the row limit the steps are exact bf16
    wide = _teacher_forced_logits(small, ids, follow[:4], rows=3)
    assert torch.equal(wide, _teacher_forced_logits(exact, ids, follow[:4], rows=3))
