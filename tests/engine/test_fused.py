"""The engine's own fused CPU op (agents/inference/fused.py: decode attention
straight from the slot cache) and the oneDNN weight layout (llama.py),
against plain torch computations; and the decoder with them against the
decoder without them on the real embedded model."""
from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from agents.inference import fused, llama
from agents.inference.forward import Forward
from agents.inference.kv import SlotKV


def _need_op():
    if not fused.load():
        if shutil.which("g++") or shutil.which("c++"):
            pytest.fail(f"a C++ compiler is here but the fused op did not build: {fused.why_not()}")
        pytest.skip(f"no C++ compiler: {fused.why_not()}")


def _reference(q, k, v, first, lengths, scale):
    """q [n, H, D], k/v [S, Hk, T, D] -> [n, H, D], by torch ops with a mask."""
    n, H, D = q.shape
    Hk, T = k.shape[1], k.shape[2]
    keys = k[first:first + n].repeat_interleave(H // Hk, dim=1)               # [n, H, T, D]
    values = v[first:first + n].repeat_interleave(H // Hk, dim=1)
    scores = torch.einsum("nhd,nhtd->nht", q, keys) * scale                    # [n, H, T]
    allowed = torch.arange(T)[None, :] < lengths[:, None]                      # [n, T]
    scores = scores.masked_fill(~allowed[:, None, :], float("-inf"))
    return torch.einsum("nht,nhtd->nhd", torch.softmax(scores, -1), values)


@pytest.mark.parametrize("H,Hk", [(9, 3), (4, 4), (8, 1)])
def test_decode_attention_matches_torch_for_rows_of_different_lengths(H, Hk):
    _need_op()
    gen = torch.Generator().manual_seed(H * 10 + Hk)
    S, T, D, n, first = 7, 40, 64, 4, 2
    k = torch.randn(S, Hk, T, D, generator=gen)
    v = torch.randn(S, Hk, T, D, generator=gen)
    q = torch.randn(n, H, D, generator=gen)
    lengths = torch.tensor([1, 17, 40, 9])
    got = fused.decode_attention(q, k, v, first, lengths, D ** -0.5)
    want = _reference(q, k, v, first, lengths, D ** -0.5)
    assert got.shape == (n, H, D)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # positions past a row's length are never read: changing them changes nothing
    k[first:first + n, :, 40 - 1:] = 1e4
    k[first, :, 1:] = float("nan")
    again = fused.decode_attention(q, k, v, first, lengths, D ** -0.5)
    assert torch.equal(again[0], got[0]) and torch.equal(again[3], got[3])


@pytest.mark.parametrize("bad", ["dtype", "zero_length", "too_long", "rows", "not_contiguous"])
def test_decode_attention_refuses_bad_arguments_with_a_clear_error(bad):
    _need_op()
    S, Hk, T, D, n = 4, 2, 8, 16, 2
    q, k, v = torch.randn(n, 4, D), torch.randn(S, Hk, T, D), torch.randn(S, Hk, T, D)
    lengths, first = torch.tensor([3, 8]), 0
    if bad == "dtype":
        q = q.double()
    elif bad == "zero_length":
        lengths = torch.tensor([0, 8])
    elif bad == "too_long":
        lengths = torch.tensor([3, T + 1])
    elif bad == "rows":
        first = S - 1
    else:
        k = torch.randn(S, Hk, D, T).transpose(2, 3)
    with pytest.raises(RuntimeError, match="decode_attention"):
        fused.decode_attention(q, k, v, first, lengths, 0.25)


def test_the_op_can_be_turned_off(monkeypatch):
    saved = dict(fused._state)
    try:
        fused._state.clear()
        monkeypatch.setenv("HAMLET_FUSED", "0")
        assert fused.load() is False
        assert "HAMLET_FUSED=0" in fused.why_not()
    finally:
        fused._state.clear()
        fused._state.update(saved)


@pytest.mark.parametrize("shape", [(1, 576), (5, 576), (64, 576), (3, 7, 576)])
def test_onednn_weights_compute_what_linear_computes(shape):
    if not torch.backends.mkldnn.is_available():
        pytest.skip("torch built without oneDNN")
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(960, 576, generator=gen)
    x = torch.randn(*shape, generator=gen)
    got = llama.linear(x, w, llama.onednn_weight(w, 64))
    assert got.shape == (*shape[:-1], 960)
    assert torch.allclose(got, F.linear(x, w), atol=1e-3, rtol=1e-4)


@pytest.mark.model
def test_decode_steps_with_and_without_the_fused_op_and_packed_weights_agree(loaded):
    _need_op()
    # block_rows=0: these few rows would otherwise read the block forms (test_block_weights.py)
    fast, plain = Forward(loaded.model, "cpu", block_rows=0), Forward(loaded.model, "cpu", block_rows=0)
    assert fast.fused_decode and fast.packed
    plain.fused_decode, plain.head_packed = False, None
    for layer in plain.decoder.layers:
        layer.packed = None
    tok = loaded.tokenizer
    rows = [tok("The mill by the river turns all day")["input_ids"], tok("Hi")["input_ids"],
            tok("Old Tom pours ale at the Crooked Mug while")["input_ids"]]
    outs = []
    for fw in (fast, plain):
        kv = SlotKV(fw.layers, 5, fw.kv_heads, fw.head_dim, 512, fw.dtype, "cpu")
        last = fw.prefill(kv, 1, rows, [0, 0, 0])                # rows 1..3 of the buffer
        lengths, tokens, steps = [len(r) for r in rows], [r[-1] for r in rows], [last]
        for _ in range(4):
            h = fw.decode(kv, tokens, lengths, first=1)
            steps.append(h)
            tokens = fw.logits(h).argmax(-1).tolist()
            lengths = [x + 1 for x in lengths]
        outs.append(torch.stack(steps))
    assert torch.allclose(outs[0], outs[1], atol=2e-3, rtol=1e-3), (outs[0] - outs[1]).abs().max()
    assert torch.equal(fast.logits(outs[0]).argmax(-1), plain.logits(outs[1]).argmax(-1))


def test_loading_the_op_leaves_subnormal_floats_alone():
    # a library linked with -ffast-math would set flush-to-zero for the whole
    # process as it loads: msgpack floats like 5e-324 would then decode as 0
    _need_op()
    tiny = float.fromhex("0x0.0000000000001p-1022")          # 5e-324, the smallest subnormal
    assert tiny / 1.0 != 0.0 and tiny * 2.0 == float.fromhex("0x0.0000000000002p-1022")
    assert torch.tensor([tiny], dtype=torch.float64).mul(1.0).item() != 0.0
