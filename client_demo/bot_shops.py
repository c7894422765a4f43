"""What trading load-test bots know about shops, and their way to one
(client_demo/bot_trade.py trades there).

Owns: where the village's shopkeepers work (the goods and persona data
files, else a default), which NPCs keep a shop (learnt by asking `shop`,
shared by the bots of a process), and `ShopWalk`, one bot's walk to the
shopkeeper it heads for: to its tile when it is in view, else to its
workplace.
"""
from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Any

from client_demo.client import ServerError

HANDOVER_RANGE = 3  # protocol.trade.HANDOVER_RANGE: things change hands within 3 tiles

# Where the default village's shopkeepers work, when the data files are not
# there to say (the bots then still find any shop they see by asking it).
DEFAULT_WORKPLACES = {"Sanne": "bakery", "Oda": "fields", "Pell": "market", "Bram": "smithy",
                      "Tomas": "tavern", "Elena": "school"}
_DATA = Path(__file__).resolve().parent.parent / "agents" / "data"
_workplaces: dict[str, str] | None = None

# What bots of this process learnt by asking `shop`: NPC name -> keeps a shop.
# Shared knowledge (a shop stays a shop), so a crowd does not ask each NPC
# hundreds of times.
KNOWN_SHOPS: dict[str, bool] = {}


def shop_workplaces() -> dict[str, str]:
    """Shopkeeper name -> the place it works at: the keepers of the goods
    file's shops and their workplaces in the persona file, as hints for
    where to walk."""
    global _workplaces
    if _workplaces is None:
        try:
            goods = tomllib.loads((_DATA / "goods.toml").read_text(encoding="utf-8"))
            people = tomllib.loads((_DATA / "village.toml").read_text(encoding="utf-8"))
            work = {p["name"]: p.get("workplace") for p in people.get("npc", [])}
            found = {s["keeper"]: work[s["keeper"]] for s in goods.get("shop", []) if work.get(s.get("keeper"))}
            _workplaces = found or dict(DEFAULT_WORKPLACES)
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
            _workplaces = dict(DEFAULT_WORKPLACES)
    return _workplaces


def chebyshev(a: Any, b: Any) -> int:
    return max(abs(a.x - b.x), abs(a.y - b.y))


class ShopWalk:
    """One bot's way to a shop: `go()` chooses a shopkeeper to head for
    (`target`) when it has none, and takes one step of the walk there."""

    def __init__(self, bot: Any) -> None:
        """`bot`: the client_demo.bot.Bot that walks (its client, rng and stats)."""
        self.bot = bot
        self.rng: random.Random = bot.rng
        self.target: str | None = None       # the shopkeeper this bot is heading for
        self.dest: tuple[int, int] | str | None = None
        self.last_pos: tuple[int, int] | None = None

    @property
    def client(self):
        return self.bot.client

    async def go(self, me: Any) -> None:
        c = self.client
        places = shop_workplaces()
        if self.target is None or self.rng.random() < 0.05:
            seen = [e.name for e in c.entities.values() if e.kind == "npc" and KNOWN_SHOPS.get(e.name)]
            choices = seen if seen and self.rng.random() < 0.7 else [k for k in places if KNOWN_SHOPS.get(k, True)]
            if not choices:
                return
            self.target = self.rng.choice(choices)
        keeper = c.find(self.target)
        if keeper is not None and keeper.kind == "npc":
            if chebyshev(keeper, me) <= HANDOVER_RANGE - 1:
                return
            await self._walk(self._tile_near(keeper.x, keeper.y, me))
            return
        place = places.get(self.target)
        row = c.place(place) if place else None
        if row is None or (row["x"] <= me.x < row["x"] + row["w"] and row["y"] <= me.y < row["y"] + row["h"]):
            self.target = None  # not where we looked: choose again
            return
        await self._walk(place)

    def _tile_near(self, x: int, y: int, me: Any) -> tuple[int, int]:
        m = self.client.map
        walkable = set(m["walkable"])
        spots = [(x + dx, y + dy) for dx in (-2, -1, 0, 1, 2) for dy in (-2, -1, 0, 1, 2)
                 if (dx or dy) and 0 <= x + dx < m["w"] and 0 <= y + dy < m["h"]
                 and m["tiles"][(y + dy) * m["w"] + x + dx] in walkable]
        return self.rng.choice(spots) if spots else (x, y)

    async def _walk(self, dest: tuple[int, int] | str) -> None:
        """Head for a tile or a place; not again while already walking there."""
        me = self.client.me
        pos = (me.x, me.y) if me is not None else None
        if dest == self.dest and pos != self.last_pos:
            self.last_pos = pos
            return
        self.dest, self.last_pos = dest, pos
        self.bot.stats.sent += 1
        try:
            if isinstance(dest, str):
                await self.client.move(place=dest)
            else:
                await self.client.move(to=dest)
        except ServerError:
            self.dest = None
