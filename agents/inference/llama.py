"""A Llama-family decoder as a few small functions over the model's own weights.

Owns the forward pass the engine runs for Llama-architecture models (the
embedded SmolLM2 among them): embeddings, RMSNorm, rotary positions,
grouped-query attention and the SwiGLU MLP, written out directly so that a
decode step is a short list of tensor ops. Measured on the 2-core CPU at a
batch of 64 rows, a decode step takes ~112 ms here against ~142 ms through
transformers' modules (whose attention repeats the keys and values for
every query head and whose CPU attention kernel is slow for one query).

The q/k/v and gate/up projections are fused into one matrix each; the
model's own `nn.Linear` weights are re-pointed at slices of the fused ones,
so nothing is stored twice and the transformers model still works (the
benchmark's baselines and the scoring reference use it).

It computes what transformers' `LlamaModel` computes (the same dtypes at the
same points: norms and rotary tables in float32, softmax in float32); the
engine tests compare greedy output token for token.

Shapes: n rows, q new tokens, kv keys, E hidden, H query heads, Hk kv heads,
G = H / Hk, D head dim, I MLP width.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from . import blockweights, fused


class PrefillInterrupted(Exception):
    """A forward was stopped between layers because its caller asked to."""


def supports(model) -> bool:
    """Plain Llama: no biases, SiLU, default rotary, tied or untied head."""
    cfg = model.config
    # transformers 5 names the rotary settings rope_parameters (rope_scaling is an alias)
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else None
    return (cfg.model_type == "llama" and not getattr(cfg, "attention_bias", False)
            and not getattr(cfg, "mlp_bias", False) and cfg.hidden_act == "silu"
            and rope_type == "default" and hasattr(model, "model") and hasattr(model.model, "layers"))


class _Layer:
    __slots__ = ("ln1", "wqkv", "wo", "ln2", "wgu", "wd", "q8", "packed", "blocks")

    def __init__(self, layer):
        attn, mlp = layer.self_attn, layer.mlp
        self.ln1 = layer.input_layernorm.weight                              # [E]
        self.ln2 = layer.post_attention_layernorm.weight                     # [E]
        self.wqkv = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])          # [(H+2Hk)*D, E]
        self.wo = attn.o_proj.weight                                         # [E, H*D]
        self.wgu = _fuse([mlp.gate_proj, mlp.up_proj])                       # [2I, E]
        self.wd = mlp.down_proj.weight                                       # [E, I]
        self.q8 = None                 # int8 copies of (wqkv, wo, wgu, wd), see quantize_int8
        self.packed = None             # oneDNN copies of (wqkv, wo, wgu, wd), see pack_onednn
        self.blocks = None             # exact 4-bit block forms of (wqkv, wo, wgu, wd), see pack_blocks


def int8_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight-only int8, one scale per output row: w [N, K] -> (int8 [N, K], scales [N])."""
    scales = w.float().abs().amax(dim=1).clamp(min=1e-12) / 127.0                # [N]
    q = torch.round(w.float() / scales[:, None]).clamp(-127, 127).to(torch.int8)  # [N, K]
    return q.contiguous(), scales.to(w.dtype)


def onednn_weight(w: torch.Tensor, rows: int) -> torch.Tensor:
    """w [N, K] float32 reordered into oneDNN's blocked layout for x of ~`rows` rows
    (an opaque tensor; any row count works)."""
    return torch.ops.mkldnn._reorder_linear_weight(w.detach(), rows)


def linear(x: torch.Tensor, w: torch.Tensor,
           alt: tuple[torch.Tensor, torch.Tensor] | torch.Tensor | blockweights.BlockQ4 | None) -> torch.Tensor:
    """x [..., K] @ w[N, K]^T, from the int8 copy (a (weights, scales) pair), the
    oneDNN copy (a tensor) or the block form (blockweights.py) when one is given. -> [..., N]"""
    if alt is None:
        return F.linear(x, w)
    if isinstance(alt, torch.Tensor):
        return torch.ops.mkldnn._linear_pointwise(x, alt, None, "none", [], "")
    if isinstance(alt, (blockweights.BlockQ4, blockweights.BlockQ8)):
        return alt(x)
    q, scales = alt
    out = torch._weight_int8pack_mm(x.reshape(-1, x.shape[-1]), q, scales)     # [M, N]
    return out.view(*x.shape[:-1], q.shape[0])


def _fuse(linears) -> torch.Tensor:
    """One weight for several projections; each Linear's weight becomes a view of it."""
    with torch.no_grad():
        fused = torch.cat([lin.weight.detach() for lin in linears], dim=0)
        at = 0
        for lin in linears:
            rows = lin.weight.shape[0]
            lin.weight = torch.nn.Parameter(fused[at:at + rows], requires_grad=False)
            at += rows
    return fused


class LlamaDecoder:
    def __init__(self, model):
        cfg = model.config
        self.E = cfg.hidden_size
        self.H = cfg.num_attention_heads
        self.Hk = getattr(cfg, "num_key_value_heads", None) or self.H
        self.D = getattr(cfg, "head_dim", None) or self.E // self.H
        self.G = self.H // self.Hk
        self.eps = cfg.rms_norm_eps
        self.scale = self.D ** -0.5
        base = model.model
        self.embed = base.embed_tokens.weight                                # [V, E]
        self.norm = base.norm.weight                                         # [E]
        self.layers = [_Layer(layer) for layer in base.layers]
        self.dtype = self.embed.dtype
        rope = getattr(cfg, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
        dev = self.embed.device
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.D, 2, dtype=torch.float, device=dev) / self.D))
        self.cos = self.sin = torch.empty(0, self.D, dtype=self.dtype, device=dev)  # [T, D], grown on demand
        self.int8_rows = 0             # one-token steps of at most this many rows use the int8 copies
        self.block_rows = 0            # steps of at most this many token rows use the block forms
        self.layer_op = False          # ... and their decode steps run one fused op a layer (decode_layers)

    def quantize_int8(self, max_rows: int) -> None:
        """Keep int8 copies of the layer weights (weight-only, per output row)
        for decode steps of at most `max_rows` rows.
        Those steps are bound by reading the weights: on the 2-core CPU the
        projections of a one-row step take ~12 ms in int8 against ~24 ms in
        bf16, while from ~16 rows up the int8 kernel is the slower one.
        Costs ~100 MB more memory; results differ from bf16 by the rounding."""
        if self.layers[0].q8 is None:
            for w in self.layers:
                w.q8 = tuple(int8_weight(t) for t in (w.wqkv, w.wo, w.wgu, w.wd))
        self.int8_rows = max_rows

    def pack_onednn(self, rows: int = 64) -> bool:
        """Keep oneDNN copies of the layer weights (blocked for ~`rows` rows; any
        row count works), used by every step. Float32 on the CPU, 30 layers'
        projections, weights read cold as in a real step, measured on the
        2-core AVX2 EPYC against F.linear (MKL): 1 row 37-43 against 45-57 ms,
        16 rows 64-71 against 106-114 ms, 64 rows 143-161 against 190-256 ms,
        256 rows (a prefill) 400-414 against 573-587 ms. Costs a second copy of
        the layer weights (~425 MB for the embedded model). False where the op
        is missing."""
        if not hasattr(torch.ops.mkldnn, "_linear_pointwise") or not torch.backends.mkldnn.is_available():
            return False
        try:
            for w in self.layers:
                w.packed = tuple(onednn_weight(t, rows) for t in (w.wqkv, w.wo, w.wgu, w.wd))
        except RuntimeError:
            for w in self.layers:
                w.packed = None
            return False
        return True

    def pack_blocks(self, max_rows: int, model=None) -> bool:
        """Keep the layer weights' exact 4-bit block forms (blockweights.py) for
        steps of at most `max_rows` token rows (n x q), where a step is bound by
        reading the weights: ~80 MB more, shared by the decoders of one `model`.
        False (nothing kept) unless every weight is exactly of that form and our
        ops run here."""
        if max_rows <= 0 or self.dtype != torch.float32 or not blockweights.available():
            return False
        def build():
            return [tuple(blockweights.BlockQ4.from_weight(t) for t in (w.wqkv, w.wo, w.wgu, w.wd))
                    for w in self.layers]
        forms = build() if model is None else blockweights.once_per_model(model, "layers", build)
        if any(f is None for layer in forms for f in layer):
            return False
        for w, f in zip(self.layers, forms):
            w.blocks = f
        self.block_rows = max_rows
        self.layer_op = self.D * self.H == self.E and os.environ.get("HAMLET_LAYER_OP", "1") != "0"
        return True

    def _rope_tables(self, length: int) -> None:
        if length <= self.cos.shape[0]:
            return
        length = max(length, 2 * self.cos.shape[0], 256)
        t = torch.arange(length, dtype=torch.float, device=self.inv_freq.device)
        freqs = t[:, None] * self.inv_freq[None, :]                          # [T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)                              # [T, D]
        self.cos, self.sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    def _rms(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return w * h.to(x.dtype)

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """Grouped-query attention over the cache in place: q [n, H, q, D], keys/values
        [n, Hk, kv, D], mask [n, 1, 1, q, kv] (True = may attend) -> [n, H, q, D].
        Measured on the CPU against scaled_dot_product_attention(enable_gqa=True):
        one query per row (decode, 64 rows) ~1 ms a layer against 5-8 ms; a prefill
        of 12 rows x 42 tokens ~5% faster for the whole forward."""
        n, _, qn, D = q.shape
        Hk, G = self.Hk, self.G
        qg = q.reshape(n, Hk, G * qn, D)                                     # [n, Hk, G*q, D]
        if G * qn < D:
            # keys @ q^T, not q @ keys^T: bmm would first copy the transposed
            # keys (the whole cache, every layer); the transposed q is smaller.
            scores = torch.matmul(keys, qg.transpose(2, 3)).transpose(2, 3)  # [n, Hk, G*q, kv]
        else:
            scores = torch.matmul(qg, keys.transpose(2, 3))                  # [n, Hk, G*q, kv]
        scores = scores.to(torch.float, memory_format=torch.contiguous_format).mul_(self.scale)
        scores = scores.view(n, Hk, G, qn, -1).masked_fill_(~mask, float("-inf"))
        p = torch.softmax(scores, dim=-1).to(q.dtype).view(n, Hk, G * qn, -1)
        return torch.matmul(p, values).view(n, Hk * G, qn, D)                # [n, H, q, D]

    def decode_layers(self, x: torch.Tensor, pos: torch.Tensor, cache) -> torch.Tensor:
        """A decode step of a few rows over the block forms, one fused op a layer
        (csrc/decode_layer.cpp: the same computation as below without ~25 small
        ops a layer). x [n, 1, E], pos [n] (int64), cache a SlotKV prepared for
        the rows -> final hidden states [n, 1, E]"""
        n = x.shape[0]
        cos, sin = self.cos[pos].contiguous(), self.sin[pos].contiguous()      # [n, D]
        h, first = x.view(n, self.E), cache.rows.start                         # [n, E]
        for i, w in enumerate(self.layers):
            qkv, o, gu, d = (b.parts for b in w.blocks)
            h = torch.ops.hamlet.decode_layer(h, w.ln1, qkv, o, w.ln2, gu, d, cos, sin, cache.k[i], cache.v[i],
                                              first, pos, self.H, self.Hk, self.eps, self.scale)
        return self._rms(h.view(n, 1, self.E), self.norm)

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor, pos: torch.Tensor, allowed: torch.Tensor | None, cache,
                 interrupted=None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """ids, pos: [n, q]; allowed: [n, 1, q, kv] bool; cache.update(k, v, layer) -> keys, values
        [n, Hk, kv, D]. interrupted(): asked before each layer after the first; True raises
        PrefillInterrupted. lengths [n] (int64; a one-token step over a SlotKV, float32 on
        the CPU, fused.load() true): attention by the fused op over each row's first
        lengths[i] positions (`allowed` is then unused). -> final hidden states [n, q, E]"""
        n, q = ids.shape
        self._rope_tables(int(pos.max()) + 1)
        cos = self.cos[pos][:, None]                                         # [n, 1, q, D]
        sin = self.sin[pos][:, None]
        mask = allowed[:, :, None] if allowed is not None else None         # [n, 1, 1, q, kv]
        x = F.embedding(ids, self.embed)                                     # [n, q, E]
        H, Hk, D = self.H, self.Hk, self.D
        small = q == 1 and n <= self.int8_rows
        few = n * q <= self.block_rows
        if few and not small and lengths is not None and self.layer_op:
            return self.decode_layers(x, pos[:, 0].contiguous(), cache)
        for i, w in enumerate(self.layers):
            if interrupted is not None and i and interrupted():
                raise PrefillInterrupted
            wqkv, wo, wgu, wd = w.q8 if small else w.blocks if few else w.packed or (None,) * 4
            h = self._rms(x, w.ln1)
            qkv = linear(h, w.wqkv, wqkv).view(n, q, H + 2 * Hk, D).transpose(1, 2)  # [n, H+2Hk, q, D]
            qk = qkv[:, : H + Hk]
            half = D // 2
            rot = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
            qk = qk * cos + rot * sin                                        # [n, H+Hk, q, D]
            if lengths is not None:
                kl, vl = cache.write(qk[:, H:], qkv[:, H + Hk:], i)          # [S, Hk, T, D]
                out = fused.decode_attention(qk[:, :H, 0].contiguous(), kl, vl, cache.rows.start,
                                             lengths, self.scale).view(n, 1, H * D)   # [n, 1, H*D]
            else:
                keys, values = cache.update(qk[:, H:], qkv[:, H + Hk:], i)   # [n, Hk, kv, D]
                out = self._attend(qk[:, :H], keys, values, mask)            # [n, H, q, D]
                out = out.transpose(1, 2).reshape(n, q, H * D)               # [n, q, H*D]
            x = x + linear(out, w.wo, wo)
            h = self._rms(x, w.ln2)
            gate, up = linear(h, w.wgu, wgu).chunk(2, dim=-1)                # [n, q, I] each
            x = x + linear(F.silu(gate) * up, w.wd, wd)
        return self._rms(x, self.norm)
