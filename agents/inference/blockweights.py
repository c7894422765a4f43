"""Weights kept in blocks of small integers, for decode steps of a few rows
on the CPU (our ops in csrc/block_linear.cpp, built and loaded by fused.py).

Owns: finding whether a float32 weight is exactly of a block form, keeping
it in that form (`BlockQ4`, `BlockQ8`), and computing x @ W^T from it.

- q4: each row in blocks of 32 weights w = d * q + m, q in 0..15, d a
  float16 (GGUF's Q4_1): 0.75 bytes a weight with d and m as float32.
- q8: blocks of 32 weights w = d * q, q in -127..127 (GGUF's Q8_0): 1.125
  bytes a weight.

The embedded model's file stores its layers in Q4_1 and its embeddings
(the tied output head) in Q8_0, and transformers turns them into float32
weights that are exactly of these forms: nothing is rounded, the weights
are the same numbers, and the results differ from a float32 GEMM only by
the order of the sums. A weight not exactly of the form (any other model)
is refused (`from_weight` gives None) and keeps its float32 path.

Why: a one-row decode step (a person's reply, served alone) reads every
weight once, so its time is the bytes it reads. Measured on the 2-core AVX2
EPYC, the 30 layers' projections, weights read cold: 1 row 10 ms against
20-32 ms from oneDNN's float32 layout, 2 rows 9-16 against 25-30, 8 rows
18-24 against 38-41, 16 rows about even, 32 rows slower (94-98 against
67-81 ms: there the step is bound by arithmetic); the output head
[49152, 576]: 1 row 1.7-2.4 ms against 5-6 ms. With the fused decode layer
(llama.py: decode_layers) the whole decode step, medians of alternating
runs: 4 rows 17 against 47 ms, 8 rows 41 against 70, 10 rows 45 against
80, 12 rows 47 against 70, 14 rows 69 against 85, 16 rows about even, 24
rows 103 against 92. So steps of up to `BLOCK_ROWS` token rows use them.
"""
from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

import torch

from . import fused

BLOCK = 32
BLOCK_ROWS = 12       # token rows up to which a step reads the block forms (measured above: even at ~16)

T = TypeVar("T")
# Block forms by model: engines made over one loaded model (a pool, a restart,
# the tests' dozens) pack its weights once (~0.7 s for the embedded model).
_by_model: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def once_per_model(model, name: str, build: Callable[[], T]) -> T:
    forms = _by_model.setdefault(model, {})
    if name not in forms:
        forms[name] = build()
    return forms[name]


def available() -> bool:
    """Our ops are loaded and this CPU runs their vector code (AVX2 and FMA;
    elsewhere they compute the same plainly, slower than float32 GEMMs).
    `HAMLET_BLOCKS=0` turns the block forms off (every step float32)."""
    if os.environ.get("HAMLET_BLOCKS", "1") == "0":
        return False
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")()
    return capability in ("AVX2", "AVX512") and fused.load()


def _packable(w: torch.Tensor) -> bool:
    return (w.dim() == 2 and w.dtype == torch.float32 and w.device.type == "cpu" and w.shape[1] % BLOCK == 0
            and bool(torch.isfinite(w).all()))


class BlockQ4:
    """w [N, K] as qw [N, K/2] uint8 (two weights a byte), scale and minv [N, K/32] float32."""
    __slots__ = ("qw", "scale", "minv", "shape")

    def __init__(self, qw: torch.Tensor, scale: torch.Tensor, minv: torch.Tensor, shape: tuple[int, int]):
        self.qw, self.scale, self.minv, self.shape = qw, scale, minv, shape

    @classmethod
    def from_weight(cls, w: torch.Tensor) -> BlockQ4 | None:
        if not _packable(w):
            return None
        qw, scale, minv, inexact = torch.ops.hamlet.q4_pack(w.detach().contiguous())
        return cls(qw, scale, minv, tuple(w.shape)) if inexact == 0 else None

    @property
    def parts(self) -> list[torch.Tensor]:
        """(qw, scale, minv), as the decode_layer op takes them."""
        return [self.qw, self.scale, self.minv]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., K] float32 -> [..., N]"""
        flat = x.reshape(-1, x.shape[-1]).contiguous()                         # [M, K]
        return torch.ops.hamlet.q4_linear(flat, self.qw, self.scale, self.minv).view(*x.shape[:-1], self.shape[0])

    def weight(self) -> torch.Tensor:
        """The float32 weight back, [N, K] (for tests and checks)."""
        N, K = self.shape
        q = self.qw.view(N, K // BLOCK, 2, 8)                                   # [N, blocks, half, byte]
        nib = torch.stack((q & 0x0F, q >> 4), dim=3).reshape(N, K // BLOCK, BLOCK)   # e[0..7], e[8..15], ...
        return torch.addcmul(self.minv[..., None], nib.float(), self.scale[..., None]).reshape(N, K)


class BlockQ8:
    """w [N, K] as qw [N, K] int8 and scale [N, K/32] float32."""
    __slots__ = ("qw", "scale", "shape")

    def __init__(self, qw: torch.Tensor, scale: torch.Tensor, shape: tuple[int, int]):
        self.qw, self.scale, self.shape = qw, scale, shape

    @classmethod
    def from_weight(cls, w: torch.Tensor) -> BlockQ8 | None:
        if not _packable(w):
            return None
        qw, scale, inexact = torch.ops.hamlet.q8_pack(w.detach().contiguous())
        return cls(qw, scale, tuple(w.shape)) if inexact == 0 else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., K] float32 -> [..., N]"""
        flat = x.reshape(-1, x.shape[-1]).contiguous()                         # [M, K]
        return torch.ops.hamlet.q8_linear(flat, self.qw, self.scale).view(*x.shape[:-1], self.shape[0])

    def weight(self) -> torch.Tensor:
        N, K = self.shape
        return (self.qw.view(N, K // BLOCK, BLOCK).float() * self.scale[..., None]).reshape(N, K)
