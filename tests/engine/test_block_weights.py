"""Weights kept in exact blocks of small integers (agents/inference/blockweights.py,
csrc/block_linear.cpp): the forms give the float32 weights back bit for bit,
the ops compute what F.linear computes, weights not of the form are refused,
bad arguments are refused with the op's name, and on the real embedded model
the decoder's few-row steps read them and choose what the float32 path does."""
from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from agents.inference import blockweights, fused
from agents.inference.forward import Forward
from agents.inference.kv import SlotKV


def _need_ops():
    if not fused.load():
        if shutil.which("g++") or shutil.which("c++"):
            pytest.fail(f"a C++ compiler is here but our ops did not build: {fused.why_not()}")
        pytest.skip(f"no C++ compiler: {fused.why_not()}")


def _q4_weight(n: int, k: int, seed: int = 0) -> torch.Tensor:
    """[n, k] float32 weights of the q4 form as GGUF's Q4_1 makes them: every
    block of 32 holds its minimum (q = 0) and its maximum (q = 15)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (n, k // 32, 32), generator=gen).float()
    q[..., 3], q[..., 17] = 0, 15
    d = (torch.rand(n, k // 32, 1, generator=gen) * 0.02).half().float()
    m = (-torch.rand(n, k // 32, 1, generator=gen) * 0.1).half().float()
    return (q * d + m).reshape(n, k)


def _q8_weight(n: int, k: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(-127, 128, (n, k // 32, 32), generator=gen).float()
    q[..., 5] = -127
    d = (torch.rand(n, k // 32, 1, generator=gen) * 0.01).half().float()
    return (q * d).reshape(n, k)


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 8, 9, 13])
def test_block_forms_give_the_weights_back_exactly_and_compute_what_linear_computes(rows):
    _need_ops()
    w4, w8 = _q4_weight(200, 576), _q8_weight(300, 576, seed=1)
    f4, f8 = blockweights.BlockQ4.from_weight(w4), blockweights.BlockQ8.from_weight(w8)
    assert f4 is not None and f8 is not None
    assert torch.equal(f4.weight(), w4) and torch.equal(f8.weight(), w8)     # nothing rounded
    assert f4.qw.numel() == w4.numel() // 2 and f8.qw.dtype == torch.int8
    x = torch.randn(rows, 576, generator=torch.Generator().manual_seed(rows))
    for form, w in ((f4, w4), (f8, w8)):
        got = form(x)
        assert got.shape == (rows, w.shape[0])
        assert torch.allclose(got, F.linear(x, w), atol=1e-5, rtol=1e-5), (got - F.linear(x, w)).abs().max()
    x3 = x.view(1, rows, 576)                                                  # [n, q, K] as the decoder passes it
    assert torch.allclose(f4(x3), F.linear(x3, w4), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", ["random", "nan", "k_not_32", "float64", "one_block_off"])
def test_weights_not_exactly_of_the_form_are_refused(case):
    _need_ops()
    w = _q4_weight(64, 128)
    if case == "random":
        w = torch.randn(64, 128)
    elif case == "nan":
        w[3, 7] = float("nan")
    elif case == "k_not_32":
        w = w[:, :100].contiguous()
    elif case == "float64":
        w = w.double()
    else:
        w[10, 40] = torch.nextafter(w[10, 40], torch.tensor(1.0))             # one weight one ulp away
    assert blockweights.BlockQ4.from_weight(w) is None
    assert blockweights.BlockQ8.from_weight(torch.randn(64, 128)) is None


@pytest.mark.parametrize("bad", ["x_dtype", "k_mismatch", "scale_shape", "minv_dtype", "not_contiguous"])
def test_the_ops_refuse_bad_arguments_with_a_clear_error(bad):
    _need_ops()
    f = blockweights.BlockQ4.from_weight(_q4_weight(64, 128))
    x, qw, scale, minv = torch.randn(2, 128), f.qw, f.scale, f.minv
    if bad == "x_dtype":
        x = x.double()
    elif bad == "k_mismatch":
        x = torch.randn(2, 96)
    elif bad == "scale_shape":
        scale = scale[:, :2].contiguous()
    elif bad == "minv_dtype":
        minv = minv.half()
    else:
        x = torch.randn(128, 2).t()
    with pytest.raises(RuntimeError, match="q4_linear"):
        torch.ops.hamlet.q4_linear(x, qw, scale, minv)
    with pytest.raises(RuntimeError, match="q8_linear"):
        torch.ops.hamlet.q8_linear(torch.randn(2, 128), qw, scale)              # uint8 nibbles are not q8


@pytest.mark.model
def test_few_row_steps_of_the_embedded_model_read_its_exact_block_forms(loaded):
    _need_ops()
    blocks, plain = Forward(loaded.model, "cpu"), Forward(loaded.model, "cpu", block_rows=0)
    # every layer weight and the head are exactly of the form (the GGUF file's Q4_1 and Q8_0)
    assert blocks.block_rows == blockweights.BLOCK_ROWS and blocks.head_q8 is not None
    layer = blocks.decoder.layers[0]
    assert torch.equal(layer.blocks[0].weight(), layer.wqkv) and torch.equal(blocks.head_q8.weight(),
                                                                            loaded.model.get_output_embeddings().weight)
    assert plain.block_rows == 0 and plain.decoder.layers[0].blocks is None
    tok = loaded.tokenizer
    rows = [tok("The mill by the river turns all day")["input_ids"], tok("Hi")["input_ids"],
            tok("Old Tom pours ale at the Crooked Mug while")["input_ids"]]
    outs, chosen = [], []
    for fw in (blocks, plain):
        kv = SlotKV(fw.layers, 4, fw.kv_heads, fw.head_dim, 512, fw.dtype, "cpu")
        fw.prefill(kv, 1, rows, [0, 0, 0])
        lengths, tokens, steps, picks = [len(r) for r in rows], [r[-1] for r in rows], [], []
        for _ in range(6):
            h = fw.decode(kv, tokens, lengths, first=1)                        # 3 rows: blocks, if any
            logits = fw.logits(h)
            steps.append(logits)
            tokens = logits.argmax(-1).tolist()
            picks.append(tokens)
            lengths = [x + 1 for x in lengths]
        outs.append(torch.stack(steps))
        chosen.append(picks)
    assert not torch.equal(outs[0], outs[1])               # the block path ran (sums in another order) ...
    assert torch.allclose(outs[0], outs[1], atol=2e-3, rtol=1e-3), (outs[0] - outs[1]).abs().max()
    assert chosen[0] == chosen[1]                          # ... and chose the same tokens
