"""Key/value caches the engine hands to the transformers model.

Owns three layouts, all duck-typed to the one method the attention layers
call (`update(k, v, layer_idx, **kw) -> (keys, values)`):

- `SlotKV`: one buffer for the running batch. Row i belongs to one
  sequence; each row has its own length, so a finished sequence frees its
  row at once and a new one takes it without touching the others. The
  buffer's length follows the longest running sequence in steps of
  `CAPACITY_STEP` (grown and shrunk), and attention reads rows over the whole
  buffer: a prefix of rows over all positions is one contiguous block,
  which the CPU's batched matmul reads in place, where a slice of positions
  would be copied first (measured: ~20 ms a step at 64 rows).
- `DenseKV`: past + new, concatenated; for one-off forwards (prefixes, scores).
- `PrefixCache`: a bounded LRU of computed prompt prefixes (world text,
  persona) whose keys/values are copied into a slot instead of recomputed.

Shapes: L layers, S slots, H kv heads, T positions, D head dim.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from collections.abc import Callable

import torch

# The buffer's length is a multiple of 64 positions. A reallocation is
# costly (measured: 0.2-0.8 s for 32 slots of 30 layers at 256-512
# positions, most of it the fresh memory's page faults), so the buffer grows
# with one step of headroom and shrinks only after SHRINK_AFTER consecutive
# requests found it over twice as long as needed (plus a step), while
# attention reads a few steps past the longest row at most.
CAPACITY_STEP = 64
SHRINK_AFTER = 256
MIN_PREFIX_TOKENS = 8   # shorter shared prefixes are cheaper to recompute than to copy


class SlotKV:
    def __init__(self, layers: int, slots: int, heads: int, head_dim: int, max_len: int,
                 dtype: torch.dtype, device: str, initial_len: int = CAPACITY_STEP):
        self.shape = (layers, slots, heads, head_dim)
        self.max_len = max_len
        self.dtype, self.device = dtype, device
        cap = min(initial_len, max_len)
        # k, v: [L, S, H, T_cap, D]
        self.k = torch.zeros(layers, slots, heads, cap, head_dim, dtype=dtype, device=device)
        self.v = torch.zeros_like(self.k)
        # Set by the engine before each forward:
        self.rows = slice(0, 0)      # contiguous rows taking part
        self.write_rows: torch.Tensor | None = None   # [n, 1] absolute row index
        self.write_pos: torch.Tensor | None = None    # [n, q] position of each new token
        self.kv_len = 0              # keys returned: [:, :, :kv_len]
        self.resizes = 0
        self._oversized = 0          # consecutive shrinkable requests

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    @torch.inference_mode()  # the buffers may be inference tensors: touch them only in that mode
    def ensure_capacity(self, length: int, shrink: bool = False) -> None:
        """Room for `length` positions. With shrink (only when every live row's
        length is below `length`), a buffer far longer than that for a while
        is cut back."""
        if length > self.max_len:
            raise ValueError(f"sequence of {length} tokens exceeds the limit of {self.max_len}")
        want = min(self.max_len, -(-length // CAPACITY_STEP) * CAPACITY_STEP)
        if want > self.capacity:
            self._oversized = 0
            self._resize(min(self.max_len, want + CAPACITY_STEP))
        elif shrink and self.capacity > 2 * want + CAPACITY_STEP:
            self._oversized += 1
            if self._oversized >= SHRINK_AFTER:
                self._oversized = 0
                self._resize(want + CAPACITY_STEP)
        elif shrink:
            self._oversized = 0

    def _resize(self, new: int) -> None:
        self.resizes += 1
        keep = min(new, self.capacity)
        for name in ("k", "v"):
            old = getattr(self, name)
            resized = old.new_zeros(*old.shape[:3], new, old.shape[4])
            resized[:, :, :, :keep] = old[:, :, :, :keep]
            setattr(self, name, resized)

    def prepare(self, first_row: int, n: int, positions: torch.Tensor, kv_len: int) -> None:
        """Next forward touches rows [first_row, first_row+n); writes at positions [n, q]."""
        self.rows = slice(first_row, first_row + n)
        self.write_rows = torch.arange(first_row, first_row + n, device=self.device)[:, None]
        self.write_pos = positions
        self.kv_len = kv_len

    def write(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        # key, value: [n, H, q, D] -> stored at [row, :, pos, :]; -> the layer's buffers [S, H, T, D]
        kl, vl = self.k[layer_idx], self.v[layer_idx]           # [S, H, T, D]
        kl[self.write_rows, :, self.write_pos] = key.transpose(1, 2).to(kl.dtype)
        vl[self.write_rows, :, self.write_pos] = value.transpose(1, 2).to(vl.dtype)
        return kl, vl

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        kl, vl = self.write(key, value, layer_idx)
        return kl[self.rows, :, : self.kv_len], vl[self.rows, :, : self.kv_len]   # [n, H, kv_len, D]

    @torch.inference_mode()
    def load_prefix(self, row: int, k: torch.Tensor, v: torch.Tensor, n: int) -> None:
        # k, v: [L, H, Tp, D]; copy the first n positions into the row.
        self.k[:, row, :, :n] = k[:, :, :n]
        self.v[:, row, :, :n] = v[:, :, :n]

    @torch.inference_mode()
    def move_row(self, src: int, dst: int, length: int) -> None:
        self.k[:, dst, :, :length] = self.k[:, src, :, :length]
        self.v[:, dst, :, :length] = self.v[:, src, :, :length]

    @torch.inference_mode()
    def swap_rows(self, a: int, b: int, length: int) -> None:
        """Exchange rows a and b (the first `length` positions: the longer row's length)."""
        for t in (self.k, self.v):
            held = t[:, a, :, :length].clone()
            t[:, a, :, :length] = t[:, b, :, :length]
            t[:, b, :, :length] = held


class DenseKV:
    """Past keys/values (possibly an expanded shared prefix) plus new ones."""

    def __init__(self, past_k: torch.Tensor | None = None, past_v: torch.Tensor | None = None,
                 batch: int = 1):
        # past_k, past_v: [L, H, Tp, D], shared by all `batch` rows; or
        # [L, n, H, Tp, D], one past per row (right-padded; the mask hides the padding).
        self.past_k, self.past_v, self.batch = past_k, past_v, batch
        self.new_k: dict[int, torch.Tensor] = {}
        self.new_v: dict[int, torch.Tensor] = {}

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        # key, value: [B, H, q, D]
        self.new_k[layer_idx], self.new_v[layer_idx] = key, value
        if self.past_k is None or self.past_v is None:
            return key, value
        pk, pv = self.past_k[layer_idx].to(key.dtype), self.past_v[layer_idx].to(value.dtype)
        if pk.dim() == 3:                                 # shared: [H, Tp, D] -> [B, H, Tp, D]
            pk = pk.unsqueeze(0).expand(self.batch, -1, -1, -1)
            pv = pv.unsqueeze(0).expand(self.batch, -1, -1, -1)
        return torch.cat([pk, key], dim=2), torch.cat([pv, value], dim=2)

    def stacked_new(self, row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """New keys/values of one row, stacked over layers: [L, H, q, D]."""
        layers = sorted(self.new_k)
        return (torch.stack([self.new_k[i][row] for i in layers]),
                torch.stack([self.new_v[i][row] for i in layers]))


@dataclass
class PrefixEntry:
    ids: list[int]
    k: torch.Tensor   # [L, H, Tp, D]
    v: torch.Tensor


class PrefixCache:
    # 64 entries covers a village (world text x a few dozen personas) while
    # bounding memory: 64 x 512 tokens x 23 KB/token (bf16, 135M) ~ 750 MB worst case.
    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self.entries: OrderedDict[str, PrefixEntry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> PrefixEntry | None:
        entry = self.entries.get(text)
        if entry is not None:
            self.entries.move_to_end(text)
        return entry

    def lookup(self, text: str, encode: Callable[[str], list[int]],
               compute: Callable[[list[int], PrefixEntry | None, int], tuple[torch.Tensor, torch.Tensor]],
               max_len: int) -> PrefixEntry | None:
        """The entry of `text`; on a miss its keys/values come from
        compute(ids, base, n) -> ([L, H, Tp, D], same), where `base` is the
        cached entry whose first n tokens `text` starts with (the longest; None,
        0 if none): a persona's prompt extended by a crowd's shared context
        prefills only the extension. None if `text` is too short to be worth
        it or reaches `max_len` tokens."""
        entry = self.get(text)
        if entry is not None:
            self.hits += 1
            return entry
        self.misses += 1
        ids = encode(text)
        if len(ids) < MIN_PREFIX_TOKENS or len(ids) >= max_len:
            return None
        key, base, n = self.base_for(text, ids)
        entry = PrefixEntry(ids, *compute(ids, base, n))
        if key is not None:
            self.get(key)                                  # keep the base warm
        self.put(text, entry)
        return entry

    def fill(self, texts: list[str], encode: Callable[[str], list[int]],
             compute: Callable[[list[tuple[list[int], PrefixEntry | None, int]]],
                               list[tuple[torch.Tensor, torch.Tensor]]],
             max_len: int) -> None:
        """Compute the missing entries among `texts` together: compute([(ids,
        base, n), ...]) -> their keys/values (as in `lookup`), in one forward."""
        todo: list[tuple[str, list[int], str | None, PrefixEntry | None, int]] = []
        for text in dict.fromkeys(texts):
            if text in self.entries:
                continue
            ids = encode(text)
            if MIN_PREFIX_TOKENS <= len(ids) < max_len:
                todo.append((text, ids, *self.base_for(text, ids)))
        if not todo:
            return
        self.misses += len(todo)
        kvs = compute([(ids, base, n) for _, ids, _, base, n in todo])
        for (text, ids, key, _, _), kv in zip(todo, kvs):
            if key is not None and key in self.entries:
                self.get(key)                                  # keep the base warm
            self.put(text, PrefixEntry(ids, *kv))

    def base_for(self, text: str, ids: list[int]) -> tuple[str | None, PrefixEntry | None, int]:
        """The cached entry (key, entry, n) whose first n tokens `text` (tokens
        `ids`) starts with, the longest; (None, None, 0) if none is worth it."""
        best: tuple[str | None, PrefixEntry | None, int] = (None, None, 0)
        for key, cand in self.entries.items():
            if len(key) < len(text) and text.startswith(key):
                m = min(common_prefix_len(cand.ids, ids), len(ids) - 1)
                if m > best[2]:
                    best = (key, cand, m)
        return best if best[2] >= MIN_PREFIX_TOKENS else (None, None, 0)

    def put(self, text: str, entry: PrefixEntry) -> None:
        self.entries[text] = entry
        self.entries.move_to_end(text)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
