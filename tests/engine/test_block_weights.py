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


def _reference_layer(x, ln1, wqkv, wo, ln2, wgu, wd, cos, sin, k, v, first, pos, H, Hk, eps, scale):
    """One decoder layer for one new token per row, by plain torch ops (llama.py's math)."""
    n, E = x.shape
    D, half, G = E // H, E // H // 2, H // Hk

    def rms(t, w):
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps))
    qkv = F.linear(rms(x, ln1), wqkv).view(n, H + 2 * Hk, D)
    qk = qkv[:, :H + Hk]
    qk = qk * cos[:, None] + torch.cat((-qk[..., half:], qk[..., :half]), -1) * sin[:, None]
    out = []
    for i in range(n):
        k[first + i, :, pos[i]], v[first + i, :, pos[i]] = qk[i, H:], qkv[i, H + Hk:]
        keys = k[first + i, :, :pos[i] + 1].repeat_interleave(G, 0)            # [H, L, D]
        vals = v[first + i, :, :pos[i] + 1].repeat_interleave(G, 0)
        p = torch.softmax((qk[i, :H, None, :] * keys).sum(-1) * scale, -1)      # [H, L]
        out.append((p[..., None] * vals).sum(1).reshape(E))
    x = x + F.linear(torch.stack(out), wo)
    gate, up = F.linear(rms(x, ln2), wgu).chunk(2, -1)
    return x + F.linear(F.silu(gate) * up, wd)


def test_the_fused_decode_layer_computes_the_layer_and_writes_the_cache():
    _need_ops()
    E, H, Hk, I, S, T, n, first = 64, 4, 2, 96, 5, 16, 3, 1
    D = E // H
    ws = [_q4_weight((H + 2 * Hk) * D, E, 1), _q4_weight(E, H * D, 2), _q4_weight(2 * I, E, 3), _q4_weight(E, I, 4)]
    forms = [blockweights.BlockQ4.from_weight(w) for w in ws]
    gen = torch.Generator().manual_seed(5)
    x, ln1, ln2 = torch.randn(n, E, generator=gen), torch.rand(E, generator=gen) + 0.5, torch.rand(E, generator=gen) + 0.5
    pos = torch.tensor([0, 9, 15])                                             # each row its own position
    angle = pos[:, None].float() * torch.rand(D // 2, generator=gen)[None]
    cos, sin = torch.cat((angle, angle), -1).cos(), torch.cat((angle, angle), -1).sin()   # [n, D]
    k, v = torch.randn(S, Hk, T, D, generator=gen), torch.randn(S, Hk, T, D, generator=gen)
    k_ref, v_ref, k0, v0 = k.clone(), v.clone(), k.clone(), v.clone()
    got = torch.ops.hamlet.decode_layer(x, ln1, *[f.parts for f in forms[:2]], ln2, *[f.parts for f in forms[2:]],
                                        cos, sin, k, v, first, pos, H, Hk, 1e-5, D ** -0.5)
    want = _reference_layer(x, ln1, *ws[:2], ln2, *ws[2:], cos, sin, k_ref, v_ref, first, pos, H, Hk, 1e-5,
                            D ** -0.5)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), (got - want).abs().max()
    assert torch.allclose(k, k_ref, atol=1e-5) and torch.allclose(v, v_ref, atol=1e-5)   # the new keys, values
    rows, written = first + torch.arange(n), torch.zeros(S, T, dtype=torch.bool)
    written[rows, pos] = True
    for cache, old in ((k, k0), (v, v0)):
        assert (cache[rows, :, pos] != old[rows, :, pos]).all()                # [n, Hk, D]: each row's new one
        assert torch.equal(cache.transpose(1, 2)[~written], old.transpose(1, 2)[~written])   # nothing else


@pytest.mark.parametrize("bad", ["heads", "position", "rows", "dtype", "weights"])
def test_the_fused_decode_layer_refuses_bad_arguments_and_leaves_the_cache_alone(bad):
    _need_ops()
    E, H, Hk, I, S, T = 64, 4, 2, 96, 3, 8
    D = E // H
    ws = [_q4_weight((H + 2 * Hk) * D, E), _q4_weight(E, H * D), _q4_weight(2 * I, E), _q4_weight(E, I)]
    parts = [blockweights.BlockQ4.from_weight(w).parts for w in ws]
    x, pos, first, heads = torch.randn(2, E), torch.tensor([1, 2]), 0, H
    k, v = torch.zeros(S, Hk, T, D), torch.zeros(S, Hk, T, D)
    if bad == "heads":
        heads = 3
    elif bad == "position":
        pos = torch.tensor([1, T])
    elif bad == "rows":
        first = S - 1
    elif bad == "dtype":
        x = x.double()
    else:
        parts[1] = parts[0]                                                    # wqkv where wo belongs
    cos = sin = torch.ones(2, D)
    with pytest.raises(RuntimeError, match="decode_layer"):
        torch.ops.hamlet.decode_layer(x, torch.ones(E), parts[0], parts[1], torch.ones(E), parts[2], parts[3],
                                      cos, sin, k, v, first, pos, heads, Hk, 1e-5, 0.25)
    assert not k.any() and not v.any()                                         # nothing written


@pytest.mark.model
def test_few_row_decode_steps_with_the_fused_layer_choose_what_the_torch_ops_choose(loaded):
    _need_ops()
    fw = Forward(loaded.model, "cpu")
    assert fw.decoder.layer_op
    tok = loaded.tokenizer
    rows = [tok("The mill by the river turns all day")["input_ids"], tok("Hi")["input_ids"]]
    runs = []
    for layer_op in (True, False):
        fw.decoder.layer_op = layer_op
        kv = SlotKV(fw.layers, 3, fw.kv_heads, fw.head_dim, 512, fw.dtype, "cpu")
        fw.prefill(kv, 1, rows, [0, 0])
        lengths, tokens, steps = [len(r) for r in rows], [r[-1] for r in rows], []
        for _ in range(6):
            logits = fw.logits(fw.decode(kv, tokens, lengths, first=1))
            steps.append(logits)
            tokens, lengths = logits.argmax(-1).tolist(), [x + 1 for x in lengths]
        runs.append((torch.stack(steps), kv.k.clone(), kv.v.clone()))
    (a, ka, va), (b, kb, vb) = runs
    assert not torch.equal(a, b)                           # the fused layer ran ...
    assert torch.allclose(a, b, atol=1e-3, rtol=1e-4), (a - b).abs().max()
    assert torch.equal(a.argmax(-1), b.argmax(-1))         # ... chose the same tokens
    assert torch.allclose(ka, kb, atol=1e-4) and torch.allclose(va, vb, atol=1e-4)   # and wrote the same cache
