"""Choosing the next token, and turning tokens into text with stop strings.

Owns: greedy / temperature + top-p sampling with a per-request seeded
generator, and the incremental detokenizer that finds stop strings and
holds back text that might still become one, so streams never show it.
"""
from __future__ import annotations

import re

import torch

# A sentence ends at . ! ? or an ellipsis, then any closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*")
# A sentence this short ("Oh." "Hi!") does not count towards a sentence limit:
# it opens a reply rather than making one.
MIN_SENTENCE_WORDS = 3


def sentence_cut(text: str, sentences: int) -> int | None:
    """Where `text` is complete after `sentences` sentences (of at least
    MIN_SENTENCE_WORDS words), or None while it is not."""
    count, start = 0, 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() < len(text) and not text[m.end()].isspace():
            continue                     # "3.5", "e.g": not an end
        if len(text[start:m.end()].split()) >= MIN_SENTENCE_WORDS:
            count += 1
            if count >= sentences:
                return m.end()
        start = m.end()
    return None


def make_generator(seed: int | None, device: str) -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


# Top-p looks among this many most likely tokens first: sorting the whole
# vocabulary (49,152 for the embedded model) took ~4 ms a row on the 2-core
# CPU, a fifth of a 23-row decode step. Exact: a row whose top-p set is not
# inside the first TOP_P_FIRST tokens falls back to the full sort.
TOP_P_FIRST = 64


@torch.inference_mode()
def sample(logits: torch.Tensor, temps: list[float], top_ps: list[float],
           generators: list[torch.Generator | None]) -> torch.Tensor:
    """logits: [n, vocab] float32 -> next ids [n] (greedy where temperature is 0)."""
    out = logits.argmax(dim=-1)                                       # [n]
    hot = [i for i, t in enumerate(temps) if t > 0]
    if not hot:
        return out
    temp = torch.tensor([temps[i] for i in hot], device=logits.device)[:, None]
    scaled = logits[hot] / temp                                       # [m, vocab]
    lse = torch.logsumexp(scaled, dim=-1, keepdim=True)               # [m, 1]
    k = min(TOP_P_FIRST, scaled.shape[-1])
    top_v, top_i = scaled.topk(k, dim=-1)                             # [m, k], descending
    top_p_ = (top_v - lse).exp()                                      # [m, k] probabilities
    before = top_p_.cumsum(-1) - top_p_                               # mass above each token
    for j, i in enumerate(hot):
        p = top_ps[i]
        if p >= 1.0:
            probs = (scaled[j] - lse[j]).exp()                        # [vocab]
            out[i] = torch.multinomial(probs, 1, generator=generators[i])[0]
            continue
        keep = before[j] < p                                          # always keeps the top token
        if bool(keep[-1]) and k < scaled.shape[-1]:                   # the set may reach past k
            sorted_p, order = (scaled[j] - lse[j]).exp().sort(descending=True)
            keep_all = sorted_p.cumsum(0) - sorted_p < p
            out[i] = order[keep_all][torch.multinomial(sorted_p[keep_all], 1, generator=generators[i])[0]]
            continue
        out[i] = top_i[j][keep][torch.multinomial(top_p_[j][keep], 1, generator=generators[i])[0]]
    return out


class TextState:
    """Decoded text of one generation; reports new stream pieces and stops."""

    def __init__(self, tokenizer, stop: tuple[str, ...], sentences: int | None = None):
        self.tok = tokenizer
        self.sentences = sentences if sentences and sentences > 0 else None
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
        if self.sentences and not self.stopped:
            cut = sentence_cut(text, self.sentences)
            if cut is not None:
                text, self.stopped = text[:cut], True
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
