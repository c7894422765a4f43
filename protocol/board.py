"""What the wire says about the notice board: where it stands, how long a
notice may be, how many it holds, and how long a quest stays posted.

The world (`server/world/board.py`) enforces the same values and clients
read them from `/protocol.json` (`board`), so they are declared here once.
"""
from __future__ import annotations

# The map's place that holds the board (on the square).
BOARD_PLACE = "notice board"

# A quest is turned in within this many tiles of the board (Chebyshev
# distance), or within the handover range of whoever posted it.
BOARD_RANGE = 3

# A notice is a sentence or two, like a card pinned to a board: long enough
# for "Lost: a grey cat near the pond, answers to Moss. Ask Ana at house 3.",
# short enough that a board of them fits one frame.
MAX_NOTICE_TEXT = 140

# Notices the board holds; the oldest comes down when a new one goes up: a
# village board, which keeps a `board` message under ~6 KB.
MAX_NOTICES = 24

# Notices one person may have on the board at once, so one person cannot
# fill it.
MAX_NOTICES_PER_AUTHOR = 3

# Open quests on the board at once: every workplace's needs with room to
# spare (the village has 6 shops and 10 recipes).
MAX_OPEN_QUESTS = 16

# A quest comes down unanswered after a game day (172,800 ticks at half a
# game second per tick); a need that remains is posted again.
QUEST_TTL_TICKS = 172_800

# The states of a quest, in `board` rows of closed quests and in events.
QUEST_STATES = ("open", "done", "withdrawn", "expired")
