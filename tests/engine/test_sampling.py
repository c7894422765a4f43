"""Choosing tokens (top-p, seeded) and where a generation stops by sentences (no model needed)."""
from __future__ import annotations

import torch

from agents.inference.sampling import TextState, sentence_cut


def test_sentence_cut_counts_full_sentences_of_three_words_or_more():
    assert sentence_cut("The mill is by the river.", 1) == len("The mill is by the river.")
    assert sentence_cut("The mill is by the river", 1) is None            # not finished yet
    assert sentence_cut("Oh! The mill is by the river. Go", 1) == len("Oh! The mill is by the river.")
    assert sentence_cut("Hi. Yes.", 1) is None                             # too short to count
    text = 'She said "it is late!" Then she left the square at once. And'
    assert sentence_cut(text, 1) == len('She said "it is late!"')
    assert sentence_cut(text, 2) == len('She said "it is late!" Then she left the square at once.')
    assert sentence_cut(text, 3) is None
    assert sentence_cut("It costs 3.5 coins at the market", 1) is None   # a decimal point is no end
    assert sentence_cut("Wait... what did you say there?", 1) == len("Wait... what did you say there?")


class _Tok:
    """Decodes a list of string pieces (stands in for a tokenizer)."""
    def decode(self, ids, skip_special_tokens=True):
        return "".join(ids)


def test_text_state_stops_at_the_sentence_limit_and_streams_only_up_to_it():
    state = TextState(_Tok(), ("\n",), sentences=1)
    pieces, ids = [], []
    for piece in ["Good", " morning", " to", " you.", " I", " bake", " bread."]:
        ids.append(piece)
        pieces.append(state.update(ids))
        if state.stopped:
            break
    pieces.append(state.flush())
    assert state.stopped and state.text == "Good morning to you."
    assert "".join(pieces) == "Good morning to you."
    unlimited = TextState(_Tok(), ("\n",))
    assert unlimited.update(["Good morning to you.", " I bake."]) and not unlimited.stopped


def _top_p_set(logits: torch.Tensor, top_p: float) -> set[int]:
    probs = torch.softmax(logits, -1)
    p, order = probs.sort(descending=True)
    return set(order[(p.cumsum(0) - p) < top_p].tolist())


def test_top_p_samples_only_from_the_nucleus_whether_it_fits_the_first_tokens_or_not():
    from agents.inference.sampling import TOP_P_FIRST, make_generator, sample
    torch.manual_seed(0)
    peaked = torch.randn(1000) * 4                     # a nucleus of a few tokens: the fast path
    flat = torch.randn(1000) * 0.01                    # a nucleus of ~900 tokens: the full sort
    logits = torch.stack([peaked, flat, peaked])       # [3, vocab]
    nuclei = [_top_p_set(peaked, 0.9), _top_p_set(flat, 0.9)]
    assert len(nuclei[0]) < TOP_P_FIRST < len(nuclei[1])
    seen: list[set[int]] = [set(), set()]
    for seed in range(200):
        gens = [make_generator(seed, "cpu"), make_generator(seed + 1, "cpu"), None]
        ids = sample(logits, [1.0, 1.0, 0.0], [0.9, 0.9, 0.9], gens).tolist()
        for row in (0, 1):
            assert ids[row] in nuclei[row]
            seen[row].add(ids[row])
        assert ids[2] == int(peaked.argmax())             # temperature 0: greedy
    assert len(seen[0]) > 1 and len(seen[1]) > TOP_P_FIRST  # both paths really sample
    # the same seed, the same token
    again = sample(logits, [1.0, 1.0, 0.0], [0.9, 0.9, 0.9],
                   [make_generator(7, "cpu"), make_generator(8, "cpu"), None])
    first = sample(logits, [1.0, 1.0, 0.0], [0.9, 0.9, 0.9],
                   [make_generator(7, "cpu"), make_generator(8, "cpu"), None])
    assert again.tolist() == first.tolist()
