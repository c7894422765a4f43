"""Where a generation stops by sentences (no model needed)."""
from __future__ import annotations

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
