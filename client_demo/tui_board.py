"""The terminal client's notice board (protocol/PROTOCOL.md, "Notice board"):
`/board` reads the open quests and the newest notices, `/turnin ID` brings
what a quest asks for and says what it paid. Parsing and the words are plain
functions; BoardActions sends through the session, which says a refusal in
words, and reports through two callbacks, `info` and `error`, like Trader.
Notices are pinned by asking an NPC in speech, so there is no command for it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client_demo.client import HamletClient
from client_demo.tui_session import Session
from protocol.board import BOARD_PLACE
from protocol.entities import ROWS

HEADS = {"board": "board", "quests": "board", "notices": "board",
         "turnin": "turnin", "turn_in": "turnin", "turn-in": "turnin"}
USAGE = {"board": "Usage: /board", "turnin": "Usage: /turnin ID  (the quest's number, from /board)"}
HELP_BOARD = (f"Board: /board the quests and notices on the {BOARD_PLACE} · /turnin ID bring what a quest asks"
              f" for (at the {BOARD_PLACE}, or to whoever asked) · ask an NPC to 'put up a notice: …'")
# Notices shown by /board: the newest few (the board keeps more).
NOTICES_SHOWN = 8
# Quest ids are entity-sized integers (PROTOCOL.md: `quest` int).
MAX_ID = 2 ** 53
BOARD_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class BoardCommand:
    name: str          # board, turnin
    quest: int = 0     # turnin: the quest's id


def parse_board(head: str, rest: str) -> BoardCommand | str:
    """One board command (`head` without the slash, lower case); a string
    is the usage line to show instead."""
    name = HEADS[head]
    if name == "board":
        return BoardCommand("board") if not rest else USAGE["board"]
    tok = rest.strip().lstrip("#")
    if tok.isdigit() and 0 < int(tok) <= MAX_ID:
        return BoardCommand("turnin", quest=int(tok))
    return USAGE["turnin"]


# -- words ----------------------------------------------------------------------
def rows(msg: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A `board` message's quests and notices as dicts, by the declared columns."""
    quests = [dict(zip(ROWS["quest"], r)) for r in msg.get("quests", ())]
    notices = [dict(zip(ROWS["notice"], r)) for r in msg.get("notices", ())]
    return quests, notices


def duration(seconds: float) -> str:
    """'45 s', '12 min', '2 h 24 min'."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    h, m = divmod(s // 60, 60)
    return f"{h} h {m} min" if m else f"{h} h"


def quest_line(q: dict[str, Any], tick: int, rate: float, have: int | None = None) -> str:
    """'#3  Oda asks for 2 wheat · reward 5 coins · 2 h 24 min left · you have 1'."""
    line = f"#{q['id']}  {q['from_name']} asks for {q['n']} {q['item']} · reward {q['reward']} coins"
    if rate > 0:
        line += f" · {duration((q['expires'] - tick) / rate)} left"
    if have is not None:
        line += f" · you have {have}"
    return line


def notice_line(n: dict[str, Any], tick: int, rate: float) -> str:
    """'"Choir practice at six" (ann, pinned by Oda, 3 min ago)'."""
    when = f", {duration((tick - n['tick']) / rate)} ago" if rate > 0 else ""
    return f"\"{n['text']}\"  ({n['author']}, pinned by {n['writer']}{when})"


def board_text(msg: dict[str, Any], rate: float, items: dict[str, int] | None = None) -> str:
    """The whole board for `/board`: open quests, oldest first, then the newest notices."""
    quests, notices = rows(msg)
    tick = msg.get("tick", 0)
    out = ["The notice board.", "Quests (/turnin ID at the board, or next to whoever asked):" if quests
           else "Quests: none open."]
    out += [f"  {quest_line(q, tick, rate, None if items is None else items.get(q['item'], 0))}" for q in quests]
    if notices:
        more = len(notices) - NOTICES_SHOWN
        out.append("Notices, newest first:" if more <= 0 else f"Notices, the newest {NOTICES_SHOWN} of {len(notices)}:")
        out += [f"  {notice_line(n, tick, rate)}" for n in notices[:NOTICES_SHOWN]]
    else:
        out.append("Notices: none. Ask an NPC to 'put up a notice: …'.")
    return "\n".join(out)


def turned_in_text(q: dict[str, Any] | None, quest: int, before: int, after: int) -> str:
    """The line after a turn-in: what went, and the coins' change."""
    what = f"You brought {q['from_name']} {q['n']} {q['item']} (quest #{quest})" if q else f"You turned in quest #{quest}"
    return f"{what}: {after - before:+d} coins, you have {after} now."


# -- doing it -------------------------------------------------------------------
class BoardActions:
    def __init__(self, session: Session, info: Callable[[str], None], error: Callable[[str], None]) -> None:
        self.session = session
        self.info = info
        self.error = error
        # the quests the last /board showed, by id, to name what a turn-in paid for
        self.seen: dict[int, dict[str, Any]] = {}

    async def run(self, cmd: BoardCommand) -> None:
        """Carry out one command; whatever goes wrong becomes a line, never a traceback."""
        client = self.session.client
        if client is None or self.session.status != "connected":
            self.error("Not connected: that was not sent.")
            return
        try:
            if cmd.name == "board":
                await self._board(client)
            else:
                await self._turn_in(client, cmd.quest)
        except (ConnectionError, asyncio.TimeoutError):
            self.error("Not connected: that was not sent.")
        except Exception as exc:  # a bug here must not take the screen down
            self.error(f"/{cmd.name} failed: {exc.__class__.__name__}: {exc}"[:200])

    def _rate(self, client: HamletClient) -> float:
        rate = (client.welcome or {}).get("tick_rate", 0)
        return float(rate) if isinstance(rate, (int, float)) and rate > 0 else 0.0

    async def _board(self, client: HamletClient) -> None:
        msg = await self.session.act("board", client.request("board", timeout=BOARD_TIMEOUT_S))
        if msg is None:
            return
        quests, _ = rows(msg.data)
        self.seen = {q["id"]: q for q in quests}
        self.info(board_text(msg.data, self._rate(client), client.items))

    async def _turn_in(self, client: HamletClient, quest: int) -> None:
        before = client.coins

        async def send() -> bool:
            await client.turn_in(quest)
            return True

        if await self.session.act("turn_in", send()):
            # the `inv` delta came before the ack: client.coins is the new purse
            self.info(turned_in_text(self.seen.pop(quest, None), quest, before, client.coins))
