"""Words a generation may not produce ("bad words"), enforced while sampling.

Owns turning a request's banned phrases into token sequences and masking,
at each step, every token that would complete one of them. The minds ban a
reply's own name and the runs of words of the line it answers, so a small
model cannot address itself or parrot the person back: lines the gate
(agents/reply_gate.py) would refuse after a whole generation are not
generated at all. The same field is vLLM's `bad_words`.

A phrase is banned as written and after a space, and with its first letter
in either case ("How are you", " how are you"); a sequence of k tokens
bans its last token once the generation ends with its first k-1 (so a
phrase that tokenizes differently inside a word can still slip through:
the gate stays the judge).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

# At most this many phrases per request, each at most MAX_BAN_CHARS long and
# MAX_BAN_TOKENS tokens: a reply bans its own name and the 3-word runs of a
# line of at most 280 characters (~60 words); checking costs a few
# microseconds per sequence per step, so 64 phrases x 4 variants stay cheap.
MAX_BANS = 64
MAX_BAN_CHARS = 64
MAX_BAN_TOKENS = 8


def check_bans(phrases: Sequence[str]) -> str | None:
    """Why `phrases` cannot be a request's bans, or None if they can."""
    if len(phrases) > MAX_BANS:
        return f"at most {MAX_BANS} banned phrases"
    for p in phrases:
        if not isinstance(p, str) or not p.strip() or len(p) > MAX_BAN_CHARS:
            return f"a banned phrase is a non-empty string of at most {MAX_BAN_CHARS} characters"
    return None


def ban_sequences(tok, phrases: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    """The token sequences of `phrases` (variants: leading space, first letter's case)."""
    seqs: set[tuple[int, ...]] = set()
    for phrase in phrases[:MAX_BANS]:
        phrase = phrase.strip()[:MAX_BAN_CHARS]
        if not phrase:
            continue
        for first in {phrase[0].lower(), phrase[0].upper()}:
            for lead in ("", " "):
                ids = tuple(tok(lead + first + phrase[1:], add_special_tokens=False)["input_ids"])
                if 0 < len(ids) <= MAX_BAN_TOKENS:
                    seqs.add(ids)
    return tuple(sorted(seqs))


def banned_next(generated: Sequence[int], seqs: Sequence[tuple[int, ...]]) -> list[int]:
    """Tokens that would complete a banned sequence after `generated`."""
    out = []
    for s in seqs:
        k = len(s) - 1
        if k == 0 or (len(generated) >= k and tuple(generated[-k:]) == s[:-1]):
            out.append(s[-1])
    return out


@torch.inference_mode()
def mask_banned(logits: torch.Tensor, banned: Sequence[Sequence[int]]) -> torch.Tensor:
    """logits: [n, vocab]; banned[i]: token ids row i may not take next. In
    place; a row whose every token would be banned is left as it is."""
    for i, ids in enumerate(banned):
        if ids:
            idx = torch.tensor(sorted(set(ids)), device=logits.device)
            if idx.numel() < logits.shape[-1]:
                logits[i].index_fill_(0, idx, float("-inf"))
    return logits
