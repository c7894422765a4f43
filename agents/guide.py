"""An NPC asked to take someone somewhere ("can you take me to the smithy?").

Like a shopkeeper's answer (agents/shop_talk.py), the candidates come from
the world: walk the person there (a real walk: the NPC heads for the place,
tells them to follow, and says so when they arrive) or tell them the way
from the map. The model's `score` picks one; the line is the action's own.
"""
from __future__ import annotations

import re

from agents.facts import place_fact, places_asked
from agents.shop_talk import ShopAction
from server.world.entity import Entity
from server.world.world import World

_TAKE_ME = re.compile(r"\b(take|bring|lead|guide|walk|show|accompany)\s+(me|us)\b", re.I)
# A guided walk that has not arrived within this many ticks (a minute at
# 20 Hz: the village is crossed in under 30 s) is given up.
GUIDE_TICKS = 1200


def guide_actions(world: World, npc: Entity, name: str, text: str) -> list[ShopAction]:
    """The candidates of `npc` asked by `name` to be taken to a place; empty
    when the line asks no such thing."""
    if not _TAKE_ME.search(text):
        return []
    places = places_asked(text, set(world.map.places))
    if not places:
        return []
    place = places[0]
    fact = place_fact(world, npc.x, npc.y, place)
    if fact is None:
        return []
    if fact.steps <= 3:
        return [ShopAction("here", f"say they are at the {place}", f"This is the {place}, {name}: you're here.",
                           place)]
    way = fact.sentence().rstrip(".")
    return [ShopAction("guide", f"walk {name} to the {place}", f"Follow me, {name}, I'll take you to the {place}.",
                       place),
            ShopAction("direct", f"tell {name} the way to the {place}", f"{way}, {name}.", place)]


def arrival_line(name: str, place: str) -> str:
    return f"Here we are, {name}: the {place}."
