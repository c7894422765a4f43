"""The notice board: quests NPCs post from real needs ("bring 3 eggs for 8
coins") and notices people ask an NPC to put up, and the rules of the
inputs that change it (post, withdraw, turn in, pin a notice).

A quest is paid atomically: `TurnIn` checks the taker holds the goods and
the poster the coins, and then moves both in one input, or refuses and
changes nothing. Notices hold people's own words; they reach the board only
through an NPC (agents/board_talk.py), after moderation, so nothing is
pinned unchecked. The board's bounds are protocol facts (protocol/board.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol

from protocol.board import (BOARD_PLACE, BOARD_RANGE, MAX_NOTICE_TEXT, MAX_NOTICES, MAX_NOTICES_PER_AUTHOR,
                            MAX_OPEN_QUESTS, QUEST_TTL_TICKS)
from protocol.errors import ErrorCode as E
from protocol.trade import COINS, MAX_COUNT, MAX_PRICE
from server.world.economy import Economy, Trade, within_reach
from server.world.entity import Entity
from server.world.inputs import PinNotice, PostQuest, Rejection, TurnIn, WithdrawQuest
from server.world.tilemap import TileMap


@dataclass(slots=True)
class Quest:
    id: int
    poster: int
    poster_name: str
    item: str
    n: int
    reward: int
    posted: int   # tick
    expires: int  # tick
    state: str = "open"

    @property
    def text(self) -> str:
        return f"{self.poster_name} needs {self.n} {self.item}: bring them for {self.reward} coins."


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    author: int        # the person whose words these are
    author_name: str
    writer: int        # the NPC who put it up
    writer_name: str
    text: str
    tick: int


class Board:
    def __init__(self) -> None:
        self.quests: dict[int, Quest] = {}   # open ones
        self.notices: list[Notice] = []      # oldest first
        self.next_id = 1                     # quests and notices share ids
        self.posted = 0                      # quests ever posted, done, notices pinned
        self.done = 0
        self.pinned = 0
        self.news: list[Quest] = []          # this tick: quests posted or closed

    def begin_tick(self) -> None:
        self.news = []

    def _id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def open_by(self, poster: int, item: str | None = None) -> list[Quest]:
        return [q for q in self.quests.values() if q.poster == poster and (item is None or q.item == item)]

    def close(self, q: Quest, state: str) -> None:
        q.state = state
        del self.quests[q.id]
        self.news.append(q)

    def expire(self, tick: int) -> None:
        for q in [q for q in self.quests.values() if q.expires <= tick]:
            self.close(q, "expired")

    def snapshot(self) -> dict[str, Any]:
        return {
            "next_id": self.next_id, "counts": [self.posted, self.done, self.pinned],
            "quests": [[q.id, q.poster, q.poster_name, q.item, q.n, q.reward, q.posted, q.expires]
                       for q in sorted(self.quests.values(), key=lambda q: q.id)],
            "notices": [[n.id, n.author, n.author_name, n.writer, n.writer_name, n.text, n.tick] for n in self.notices],
        }

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> Board:
        b = cls()
        b.next_id = snap["next_id"]
        b.posted, b.done, b.pinned = snap["counts"]
        for row in snap["quests"]:
            q = Quest(*row)
            b.quests[q.id] = q
        b.notices = [Notice(*row) for row in snap["notices"]]
        return b


class World(Protocol):
    """What the board's rules use of the world (server/world/world.py)."""
    entities: dict[int, Entity]
    economy: Economy
    events: list[dict[str, Any]]
    tick: int
    board: Board
    map: TileMap


def at_board(world: World, e: Entity) -> bool:
    place = world.map.places.get(BOARD_PLACE)
    return place is not None and max(abs(e.x - place.entry[0]), abs(e.y - place.entry[1])) <= BOARD_RANGE


def _npc(world: World, eid: int) -> Entity | Rejection:
    e = world.entities[eid]
    return e if e.kind == "npc" else Rejection(E.FORBIDDEN, "only the village's NPCs put things on the board")


def apply_post(world: World, inp: PostQuest) -> Rejection | None:
    board: Board = world.board
    poster = _npc(world, inp.entity)
    if isinstance(poster, Rejection):
        return poster
    if inp.item not in world.economy.catalog.prices:
        return Rejection(E.NO_SUCH_ITEM, f"there is no such thing as {inp.item!r} here")
    if not (0 < inp.n <= MAX_COUNT and 0 < inp.reward <= MAX_PRICE):
        return Rejection(E.OUT_OF_RANGE, f"a quest asks for 1 to {MAX_COUNT} and pays 1 to {MAX_PRICE} coins")
    if board.open_by(poster.id, inp.item):
        return Rejection(E.BAD_VALUE, f"{poster.name} already asks for {inp.item}")
    if len(board.quests) >= MAX_OPEN_QUESTS:
        return Rejection(E.FULL, f"the board holds {MAX_OPEN_QUESTS} quests at most")
    promised = sum(q.reward for q in board.open_by(poster.id))
    if not world.economy.purse(poster.id).has(COINS, promised + inp.reward):
        return Rejection(E.NOT_ENOUGH, f"{poster.name} cannot pay {inp.reward} coins more than it has promised")
    q = Quest(board._id(), poster.id, poster.name, inp.item, inp.n, inp.reward, world.tick,
              world.tick + QUEST_TTL_TICKS)
    board.quests[q.id] = q
    board.posted += 1
    board.news.append(q)
    return None


def apply_withdraw(world: World, inp: WithdrawQuest) -> Rejection | None:
    board: Board = world.board
    q = board.quests.get(inp.quest)
    if q is None or q.poster != inp.entity:
        return Rejection(E.QUEST_CLOSED, f"no open quest {inp.quest} of yours")
    board.close(q, "withdrawn")
    return None


def apply_turn_in(world: World, inp: TurnIn) -> Rejection | None:
    board: Board = world.board
    eco, me = world.economy, world.entities[inp.entity]
    q = board.quests.get(inp.quest)
    if q is None:
        return Rejection(E.QUEST_CLOSED, f"no open quest {inp.quest}: done, withdrawn, expired or never posted")
    if q.poster == me.id:
        return Rejection(E.BAD_VALUE, "you cannot answer your own quest")
    poster = world.entities.get(q.poster)
    if not at_board(world, me) and (poster is None or not within_reach(me, poster)):
        return Rejection(E.OUT_OF_RANGE, f"bring it to the {BOARD_PLACE} or to {q.poster_name}")
    mine, theirs = eco.purse(me.id), eco.purse(q.poster)
    if not mine.has(q.item, q.n):
        return Rejection(E.NOT_ENOUGH, f"you do not have {q.n} {q.item}")
    if not theirs.has(COINS, q.reward):
        return Rejection(E.NOT_ENOUGH, f"{q.poster_name} cannot pay {q.reward} coins now")
    if theirs.room(q.item) < q.n or mine.room(COINS) < q.reward:
        return Rejection(E.FULL, "one of you cannot hold what changes hands")
    eco._move(me.id, q.poster, q.item, q.n)
    eco._move(q.poster, me.id, COINS, q.reward)
    board.close(q, "done")
    board.done += 1
    eco.trades.append(Trade("quest", me.id, q.poster, ((q.item, q.n),), 0, (), q.reward))
    world.events.append({"kind": "trade", "tick": world.tick, "from": me.id, "name": me.name, "to": q.poster,
                         "to_name": q.poster_name, "x": me.x, "y": me.y,
                         "text": f"{me.name} brought {q.poster_name} {q.n} {q.item} for {q.reward} coins "
                                 f"(quest {q.id})"})
    return None


def apply_pin(world: World, inp: PinNotice) -> Rejection | None:
    board: Board = world.board
    writer = _npc(world, inp.entity)
    if isinstance(writer, Rejection):
        return writer
    text = inp.text.strip()
    if not 0 < len(text) <= MAX_NOTICE_TEXT or any(ord(c) < 32 for c in text):
        return Rejection(E.BAD_VALUE, f"a notice is 1 to {MAX_NOTICE_TEXT} characters on one line")
    mine = [n for n in board.notices if n.author == inp.author]
    if len(mine) >= MAX_NOTICES_PER_AUTHOR:
        board.notices.remove(mine[0])  # the author's oldest comes down
    elif len(board.notices) >= MAX_NOTICES:
        board.notices.pop(0)  # the oldest comes down
    board.notices.append(Notice(board._id(), inp.author, inp.author_name, writer.id, writer.name, text, world.tick))
    board.pinned += 1
    return None


HANDLERS: dict[type, Callable[[Any, Any], Rejection | None]] = {PostQuest: apply_post, WithdrawQuest: apply_withdraw, TurnIn: apply_turn_in, PinNotice: apply_pin}
