"""Choosing the next token, and turning tokens into text with stop strings.

Owns: greedy / temperature + top-p sampling with a per-request seeded
generator, and the incremental detokenizer that finds stop strings and
holds back text that might still become one, so streams never show it.
"""
from __future__ import annotations

import torch


def make_generator(seed: int | None, device: str) -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


@torch.inference_mode()
def sample(logits: torch.Tensor, temps: list[float], top_ps: list[float],
           generators: list[torch.Generator | None]) -> torch.Tensor:
    """logits: [n, vocab] float32 -> next ids [n] (greedy where temperature is 0)."""
    out = logits.argmax(dim=-1)                                       # [n]
    for i, t in enumerate(temps):
        if t <= 0:
            continue
        probs = torch.softmax(logits[i] / t, dim=-1)                  # [vocab]
        if top_ps[i] < 1.0:
            sorted_p, order = probs.sort(descending=True)
            keep = sorted_p.cumsum(0) - sorted_p < top_ps[i]         # always keeps the top token
            probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_p[keep])
        out[i] = torch.multinomial(probs, 1, generator=generators[i])[0]
    return out


class TextState:
    """Decoded text of one generation; reports new stream pieces and stops."""

    def __init__(self, tokenizer, stop: tuple[str, ...]):
        self.tok = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.text = ""
        self.emitted = 0        # characters already streamed
        self.stopped = False

    def update(self, ids: list[int]) -> str:
        """Re-decode the generated ids; return the newly safe piece of text."""
        text = self.tok.decode(ids, skip_special_tokens=True)
        for s in self.stop:
            at = text.find(s, max(0, self.emitted - len(s)))
            if at >= 0:
                text, self.stopped = text[:at], True
        self.text = text
        safe = len(text) if self.stopped else len(text) - self.hold
        if not self.stopped and text.endswith("\ufffd"):
            safe = min(safe, len(text) - 1)     # half of a multi-byte character
        if safe <= self.emitted:
            return ""
        piece, self.emitted = text[self.emitted:safe], safe
        return piece

    def flush(self) -> str:
        piece = self.text[self.emitted:]
        self.emitted = len(self.text)
        return piece
