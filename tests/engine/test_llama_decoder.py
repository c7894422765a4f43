"""The engine's own Llama decoder (agents/inference/llama.py) against
transformers' modules on the real embedded model, and the slot cache's
capacity following the longest running sequence."""
from __future__ import annotations

import pytest
import torch

from agents.inference import llama
from agents.inference.forward import Forward
from agents.inference.kv import CAPACITY_STEP, SlotKV

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
    assert kv.capacity == 2 * CAPACITY_STEP
    assert torch.all(kv.k[:, 1, :, :10] == 7.0)          # kept across the resize
    kv.ensure_capacity(5 * CAPACITY_STEP)
    assert kv.capacity == 5 * CAPACITY_STEP
    kv.ensure_capacity(10)                                # no shrink unless asked
    assert kv.capacity == 5 * CAPACITY_STEP
    kv.ensure_capacity(10, shrink=True)
    assert kv.capacity == CAPACITY_STEP
    assert torch.all(kv.k[:, 1, :, :10] == 7.0)
    with pytest.raises(ValueError):
        kv.ensure_capacity(1001)
    assert kv.capacity == CAPACITY_STEP                   # a refused size changes nothing
