"""The model calls: a few small functions over a transformers causal LM.

Owns: building masks and positions, and running the decoder for
  - `decode`:  one new token for each of n running rows of a `SlotKV`;
  - `prefill`: the prompt tails of n newly admitted rows (right-padded);
  - `dense`:   a one-off batch over an optional shared past (prefix, score).
Every function returns final hidden states; `logits()` applies the head
only where it is needed (the last real token), never over the whole padded
batch ([n, q, vocab] floats would dominate memory).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import blockweights, fused, llama
from .kv import DenseKV, SlotKV


HEAD_BLOCK = 1024   # vocabulary rows per block of the head's matmul on the CPU (see Forward)


class Forward:
    def __init__(self, model, device: str, own_decoder: bool = True, int8_rows: int = 0,
                 block_rows: int = blockweights.BLOCK_ROWS):
        self.model = model
        # Llama-family models run on our own decoder (llama.py: a few small
        # functions, no framework overhead per step); others on transformers'.
        self.decoder = llama.LlamaDecoder(model) if own_decoder and llama.supports(model) else None
        self.base = model.base_model                 # the decoder stack
        self.head = model.get_output_embeddings()    # hidden -> vocab
        self.device = device
        self.bool_mask = model.config._attn_implementation in ("sdpa", "flash_attention_2")
        cfg = model.config
        self.layers = cfg.num_hidden_layers
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.dtype = next(model.parameters()).dtype
        # int8_rows: decode steps of at most this many rows read int8 copies of
        # the weights (llama.py: quantize_int8); 0 keeps every step exact.
        self.head8 = None
        if int8_rows > 0 and self.decoder is not None and device == "cpu":
            self.decoder.quantize_int8(int8_rows)
            self.head8 = llama.int8_weight(self.head.weight.detach())
        self.int8_rows = int8_rows if self.head8 is not None else 0
        # On the CPU the head of a several-row step runs in blocks of vocabulary
        # rows (views, no copy): measured on the 2-core AVX2 CPU, float32, a
        # 30-row head took ~58 ms in one matmul and ~30 ms in blocks of 1,024
        # (4 rows: 35 against 26 ms; one row: the same).
        self.head_blocks = self.head.weight.detach().split(HEAD_BLOCK) if device == "cpu" else None
        # Decode steps' attention by our fused op (fused.py) where it applies:
        # our decoder, float32 on the CPU, and the op built and loaded.
        self.fused_decode = (self.decoder is not None and device == "cpu" and self.dtype == torch.float32
                             and fused.load())
        # Projections from oneDNN's layout (llama.py: pack_onednn).
        self.packed = (self.decoder is not None and device == "cpu" and self.dtype == torch.float32
                              and self.decoder.pack_onednn())
        # The head too, for every row count: [49152, 576] float32, measured as
        # above, 1 row 8.5 against 15 ms (blocks), 64 rows 35 against 63 ms.
        self.head_packed = llama.onednn_weight(self.head.weight, 64) if self.packed else None
        # Steps of at most block_rows token rows read the weights' exact block
        # forms where the model's weights are of that form (blockweights.py:
        # the embedded model's layers and head): ~3x fewer ms a one-row step.
        self.block_rows = block_rows if (self.decoder is not None and device == "cpu"
                                         and self.decoder.pack_blocks(block_rows, model)) else 0
        self.head_q8 = blockweights.once_per_model(
            model, "head", lambda: blockweights.BlockQ8.from_weight(self.head.weight)) if self.block_rows else None

    def _mask(self, allowed: torch.Tensor) -> torch.Tensor:
        # allowed: [n, 1, q, kv] bool, True = may attend.
        if self.bool_mask:
            return allowed
        m = torch.zeros(allowed.shape, dtype=self.dtype, device=allowed.device)
        return m.masked_fill_(~allowed, torch.finfo(self.dtype).min)

    def _run(self, ids: torch.Tensor, pos: torch.Tensor, allowed: torch.Tensor, cache,
             interrupted=None) -> torch.Tensor:
        if self.decoder is not None:
            return self.decoder(ids, pos, allowed, cache, interrupted)       # [n, q, hidden]
        out = self.base(input_ids=ids, position_ids=pos, attention_mask=self._mask(allowed),
                        cache=cache, use_cache=True)
        return out.last_hidden_state                 # [n, q, hidden]

    @torch.inference_mode()
    def decode(self, kv: SlotKV, tokens: list[int], lengths: list[int], first: int = 0,
               longest: int = 0) -> torch.Tensor:
        """Rows first..first+n-1 each feed one token at position lengths[i];
        `longest` is the longest live row's length, decoded here or not (the
        buffer may shrink to it). -> [n, hidden]"""
        n, dev = len(tokens), self.device
        ids = torch.tensor(tokens, device=dev)[:, None]                      # [n, 1]
        pos = torch.tensor(lengths, device=dev)[:, None]                     # [n, 1]
        kv.ensure_capacity(max(max(lengths), longest) + 1, shrink=True)
        if self.fused_decode:
            kv.prepare(first, n, pos, kv.capacity)
            own = (pos[:, 0] + 1).contiguous()                               # [n] positions each row reads
            return self.decoder(ids, pos, None, kv, lengths=own)[:, -1]     # [n, hidden]
        kv_len = kv.capacity                                                 # the whole buffer (kv.py)
        keys = torch.arange(kv_len, device=dev)                              # [kv]
        allowed = (keys[None, :] <= pos)[:, None, None, :]                   # [n, 1, 1, kv]
        kv.prepare(first, n, pos, kv_len)
        return self._run(ids, pos, allowed, kv)[:, -1]                       # [n, hidden]

    @torch.inference_mode()
    def prefill(self, kv: SlotKV, first_row: int, tails: list[list[int]], starts: list[int],
                interrupted=None) -> torch.Tensor:
        """Row first_row+i gets tokens tails[i] at positions starts[i]... -> last hidden [n, hidden]
        interrupted(): see LlamaDecoder (our own decoder only)."""
        n, dev = len(tails), self.device
        q = max(len(t) for t in tails)
        ids = torch.zeros(n, q, dtype=torch.long, device=dev)                # [n, q], right-padded
        for i, t in enumerate(tails):
            ids[i, : len(t)] = torch.tensor(t, device=dev)
        start = torch.tensor(starts, device=dev)[:, None]                    # [n, 1]
        pos = start + torch.arange(q, device=dev)[None, :]                   # [n, q]
        kv.ensure_capacity(max(starts) + q)
        # Keys up to the longest row's end (rounded up to 16), not the whole
        # buffer: the scores, mask and softmax of a prefill scale with it.
        kv_len = min(kv.capacity, -(-(max(starts) + q) // 16) * 16)
        keys = torch.arange(kv_len, device=dev)
        allowed = (keys[None, None, :] <= pos[:, :, None])[:, None]          # [n, 1, q, kv]
        kv.prepare(first_row, n, pos, kv_len)
        hidden = self._run(ids, pos, allowed, kv, interrupted)               # [n, q, hidden]
        last = torch.tensor([len(t) - 1 for t in tails], device=dev)
        return hidden[torch.arange(n, device=dev), last]                     # [n, hidden]

    @torch.inference_mode()
    def dense(self, rows: list[list[int]], past: tuple[torch.Tensor, torch.Tensor] | None = None
              ) -> tuple[torch.Tensor, DenseKV]:
        """Rows of tokens (right-padded) after an optional shared past [L, H, Tp, D]. -> [n, q, hidden]"""
        n, dev = len(rows), self.device
        q = max(len(r) for r in rows)
        tp = 0 if past is None else past[0].shape[2]
        ids = torch.zeros(n, q, dtype=torch.long, device=dev)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, device=dev)
        pos = (tp + torch.arange(q, device=dev))[None, :].expand(n, q)       # [n, q]
        keys = torch.arange(tp + q, device=dev)
        allowed = (keys[None, None, :] <= pos[:, :, None])[:, None]          # [n, 1, q, tp+q]
        cache = DenseKV(None, None, batch=n) if past is None else DenseKV(past[0], past[1], batch=n)
        return self._run(ids, pos, allowed, cache), cache

    @torch.inference_mode()
    def dense_rows(self, rows: list[list[int]], pasts: list[tuple[torch.Tensor, torch.Tensor] | None]
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each row's tokens after its own past ([L, H, Tp_i, D], or None), in one
        forward: -> each row's new keys/values [L, H, q_i, D]. Several NPCs'
        crowd prefixes, each extending its persona's, are computed together."""
        n, dev = len(rows), self.device
        q = max(len(r) for r in rows)
        lens = [0 if p is None else p[0].shape[2] for p in pasts]
        tp = max(lens)
        ids = torch.zeros(n, q, dtype=torch.long, device=dev)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, device=dev)
        pos = torch.tensor(lens, device=dev)[:, None] + torch.arange(q, device=dev)[None, :]   # [n, q]
        keys = torch.arange(tp + q, device=dev)                                                # [tp+q]
        own_past = keys[None, None, :] < torch.tensor(lens, device=dev)[:, None, None]         # [n, 1, tp+q]
        causal = (keys[None, :] >= tp) & (keys[None, :] - tp <= torch.arange(q, device=dev)[:, None])  # [q, tp+q]
        allowed = (own_past | causal[None])[:, None]                                           # [n, 1, q, tp+q]
        cache = DenseKV(None, None, batch=n)
        if tp:
            shape = (self.layers, n, self.kv_heads, tp, self.head_dim)
            pk = torch.zeros(shape, dtype=self.dtype, device=dev)                              # [L, n, H, tp, D]
            pv = torch.zeros(shape, dtype=self.dtype, device=dev)
            for i, p in enumerate(pasts):
                if p is not None:
                    pk[:, i, :, : lens[i]], pv[:, i, :, : lens[i]] = p
            cache = DenseKV(pk, pv, batch=n)
        self._run(ids, pos, allowed, cache)
        out = []
        for i, r in enumerate(rows):
            k, v = cache.stacked_new(i)                                                        # [L, H, q, D]
            out.append((k[:, :, : len(r)], v[:, :, : len(r)]))
        return out

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.head_q8 is not None and hidden.dim() == 2 and hidden.shape[0] <= self.block_rows:
            return self.head_q8(hidden)                                        # [n, vocab] float32
        if hidden.dim() == 2 and hidden.shape[0] <= self.int8_rows:
            return llama.linear(hidden, self.head.weight, self.head8).float()  # [n, vocab]
        if self.head_packed is not None and hidden.dim() == 2:
            return llama.linear(hidden, self.head.weight, self.head_packed).float()  # [n, vocab]
        if self.head_blocks is not None and hidden.dim() == 2 and hidden.shape[0] > 1:
            return torch.cat([F.linear(hidden, w) for w in self.head_blocks], dim=-1).float()  # [n, vocab]
        return self.head(hidden).float()                                     # [..., vocab]
