"""The notice board at the game's edges: the `board` answer (open quests and
notices), the `turn_in` message as a world input, and the quest system: on
the game clock, each workplace that lacks what its next run uses posts a
quest for it, and withdraws it once the need is gone.

The board's state and rules are the world's (`server/world/board.py`).
"""
from __future__ import annotations

from protocol.board import MAX_OPEN_QUESTS
from protocol.codec import encode
from server.trade import crossed_hour
from server.world.catalog import Recipe
from server.world.inputs import Input, PostQuest, TurnIn, WithdrawQuest
from server.world.world import World

# A quest asks for enough for this many runs of the recipe that lacks it:
# one run's worth would be asked again the next day; three is a real errand
# ("bring 3 eggs") that keeps the workplace going for a while.
QUEST_RUNS = 3
# The reward is this share over the goods' base price (in quarters): 5/4
# beats what any shop pays for them (at most 1.2x base), so answering a
# quest is worth a walk.
REWARD_QUARTERS = 5


def board_frame(world: World, seq: int | None) -> bytes:
    b = world.board
    quests = [[q.id, q.poster, q.poster_name, q.item, q.n, q.reward, q.expires, q.text]
              for q in sorted(b.quests.values(), key=lambda q: q.id)]
    notices = [[n.id, n.author_name, n.writer_name, n.text, n.tick] for n in reversed(b.notices)]
    return encode("board", tick=world.tick, quests=quests, notices=notices, seq=seq)


def turn_in_input(eid: int, quest: int) -> Input:
    return TurnIn(eid, quest)


def reward_for(world: World, item: str, n: int) -> int:
    base = world.economy.catalog.prices[item]
    return -(-n * base * REWARD_QUARTERS // 4)  # rounded up


def needs(world: World, recipe: Recipe, holder: int) -> list[tuple[str, int]]:
    """What `holder` lacks for one run of `recipe`: (item, how many to ask for)."""
    goods = world.economy.purse(holder).goods
    return [(item, QUEST_RUNS * k - goods.get(item, 0)) for item, k in recipe.uses if goods.get(item, 0) < k]


def quest_system(world: World) -> list[Input]:
    """Once a game hour: post a quest for each need not yet on the board,
    withdraw those whose need is gone. Each is a logged input (replayed
    without this system's help)."""
    if not crossed_hour(world):
        return []
    eco, board = world.economy, world.board
    out: list[Input] = []
    lacking: set[tuple[int, str]] = set()
    slots = MAX_OPEN_QUESTS - len(board.quests)
    for r in eco.catalog.recipes:
        e = world.find_by_name(r.npc)
        if e is None or e.kind != "npc":
            continue
        for item, n in needs(world, r, e.id):
            lacking.add((e.id, item))
            if not board.open_by(e.id, item) and slots > 0 and (e.id, item) not in {(p.entity, p.item) for p in out
                                                                                    if isinstance(p, PostQuest)}:
                out.append(PostQuest(e.id, item, n, reward_for(world, item, n)))
                slots -= 1
    for q in sorted(board.quests.values(), key=lambda q: q.id):
        if (q.poster, q.item) not in lacking:
            out.append(WithdrawQuest(q.poster, q.id))
    return out
