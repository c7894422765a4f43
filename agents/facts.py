"""Facts from the world's state, for answers that must not be invented.

A 135M model does not know where the smithy is; the map does, and the
shops know what bread costs. When a person asks an NPC about a place, a
person or a good, the facts found here go into the
reply's prompt (so the model can quote them), into the gate (a direction
that contradicts the map is refused), and into the fallback line (an answer
from the facts alone, when the model's line is refused).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from agents.memory import MemoryStream, keywords
from agents.personas import Persona
from agents.reply_gate import compass, near_directions
from agents.shop_talk import items_named
from server.world.world import World

# Words people use for a place, beyond its own name.
PLACE_ALIASES: dict[str, tuple[str, ...]] = {
    "smithy": ("smithy", "blacksmith", "smith", "forge", "horseshoe", "horseshoes", "nails"),
    "bakery": ("bakery", "baker", "bread", "bake"),
    "tavern": ("tavern", "inn", "pub", "ale", "beer", "drink", "stories"),
    "market": ("market", "shop", "shops", "buy", "stall", "stalls"),
    "school": ("school", "teacher", "lesson", "lessons", "class"),
    "chapel": ("chapel", "church", "pray"),
    "square": ("square", "centre", "center"),
    "pond": ("pond", "lake", "fish", "fishing", "skate"),
    "fields": ("fields", "field", "farm", "wheat", "crops"),
    "grove": ("grove", "woods", "forest", "trees"),
    "well": ("water",),  # "well" alone is mostly the interjection: "the well" is matched below
}


@dataclass(frozen=True)
class PlaceFact:
    place: str
    direction: str          # compass word from the speaker
    steps: int              # tiles, as the crow flies
    from_square: str | None  # compass word from the square's middle (None for the square itself)

    def sentence(self) -> str:
        if self.steps <= 3:
            return f"The {self.place} is right here."
        where = f"to the {self.direction}, about {self.steps} steps from here"
        return f"The {self.place} is {where}."


def places_asked(text: str, known: set[str]) -> list[str]:
    """Places a line asks or talks about, in the order they appear."""
    ws = re.findall(r"[a-z]+", text.lower())
    found: list[tuple[int, str]] = []
    for place, aliases in PLACE_ALIASES.items():
        if place not in known:
            continue
        hits = [i for i, w in enumerate(ws) if w in aliases or (w == place and place != "well")]
        if place == "well":
            hits += [i + 1 for i, w in enumerate(ws[:-1]) if w in ("the", "a") and ws[i + 1] == "well"]
        if hits:
            found.append((min(hits), place))
    for place in known:  # places on a custom map with names of their own
        if place not in PLACE_ALIASES and " " not in place and place in ws:
            found.append((ws.index(place), place))
    return [p for _, p in sorted(found)]


def place_fact(world: World, x: int, y: int, place_name: str) -> PlaceFact | None:
    place = world.map.places.get(place_name)
    if place is None:
        return None
    px, py = place.x + place.w / 2, place.y + place.h / 2
    steps = int(((px - x) ** 2 + (py - y) ** 2) ** 0.5)
    square = world.map.places.get("square")
    from_square = None
    if square is not None and place_name != "square":
        from_square = compass(px - (square.x + square.w / 2), py - (square.y + square.h / 2))
    return PlaceFact(place_name, compass(px - x, py - y), steps, from_square)


def allowed_directions(world: World, x: int, y: int) -> dict[str, frozenset[str]]:
    """For each named place, the compass words a correct line may use for it:
    from the speaker or from the square, each give or take one step."""
    out: dict[str, frozenset[str]] = {}
    for name in PLACE_ALIASES:
        fact = place_fact(world, x, y, name)
        if fact is None or fact.steps <= 3:
            continue
        allowed = near_directions(fact.direction)
        if fact.from_square:
            allowed |= near_directions(fact.from_square)
        out[name] = allowed
    return out


def whereabouts(world: World, name: str) -> str | None:
    """Where a named person is now, in words ("at the smithy"), or None."""
    e = world.find_by_name(name)
    if e is None:
        return None
    for place in world.map.places.values():
        if place.contains(e.x, e.y):
            return f"at the {place.name}" if not place.name.startswith("house") else "at home"
    return "out and about"


def goods_facts(world: World, text: str) -> list[str]:
    """Who sells the goods a line names, for how much now, and where the
    seller is: "Sanne sells bread for 4 coins; Sanne is at the bakery now."."""
    eco = world.economy
    out = []
    for item in items_named(text, tuple(eco.catalog.prices))[:2]:
        for shop in eco.catalog.shops.values():
            keeper = world.find_by_name(shop.keeper)
            quote = eco.quote(keeper, item) if keeper is not None and item in shop.sells else None
            if quote is None or quote[2] == 0:
                continue
            where = whereabouts(world, shop.keeper)
            out.append(f"{shop.keeper} sells {item} for {quote[0]} coins" + (f"; {shop.keeper} is {where} now." if
                                                                            where else "."))
    return out


# A question about the person asking: "what is my dog called?", "where do I come from?"
_ABOUT_ME = re.compile(r"\b(my|i|me|mine)\b", re.I)
_QUESTION = re.compile(r"\?\s*$|^\s*(what|where|who|which|when|how|do|did|can|remember)\b", re.I)


def told_facts(memory: MemoryStream, name: str, text: str) -> list[str]:
    """What `name` told this NPC about themself that the question asks back:
    their own earlier line sharing the most words with it, quoted."""
    if not (_ABOUT_ME.search(text) and _QUESTION.search(text)):
        return []
    want = keywords(text)
    prefix = f"{name} said "
    best, best_n = None, 0
    for m in memory.memories:
        if m.kind != "observation" or not m.text.startswith(prefix):
            continue
        quoted = m.text[len(prefix):].rstrip(".").removesuffix(" to me").strip('"')
        if quoted.rstrip("?!. ") == text.rstrip("?!. ") or quoted.rstrip().endswith("?"):
            continue  # the question itself, or another question: not something they told
        n = len(want & keywords(quoted))
        if n > best_n:
            best, best_n = quoted, n
    return [f'You told me, {name}: "{best}"'] if best else []


_WHEN = re.compile(r"\b(when|what time|hours|open|opens|close|closes)\b", re.I)
_NEWS = re.compile(r"\b(news|what happened|what's new|whats new|anything new|gossip)\b", re.I)


def hours_facts(personas: list[Persona], known: set[str], text: str) -> list[str]:
    """When someone is at the place a "when does ... open?" question names,
    from their routines: "Sanne is at the bakery from 05:00 to 11:00 and
    from 15:00 to 19:00."."""
    if not _WHEN.search(text):
        return []
    out: list[tuple[bool, str]] = []
    for place in places_asked(text, known)[:1]:
        for p in personas:
            entries = sorted(p.routine, key=lambda r: r.hour)
            spans = [(r.hour, entries[(i + 1) % len(entries)].hour) for i, r in enumerate(entries) if r.place == place]
            if spans:
                told = " and ".join(f"from {a:02d}:00 to {b:02d}:00" for a, b in spans)
                out.append((p.workplace == place, f"{p.name} is at the {place} {told}."))
    keepers = [f for keeper, f in out if keeper]  # whose workplace it is first; anyone's if nobody works there
    return (keepers or [f for _, f in out])[:2]


def news_facts(events: list, text: str) -> list[str]:
    """The day's latest notable events (agents/stories.DayLog), for "any news?"."""
    if not _NEWS.search(text) or not events:
        return []
    latest = sorted(events, key=lambda e: (-e.weight, -e.minute))[:2]
    return ["Today " + "; and ".join(e.text for e in sorted(latest, key=lambda e: e.minute)) + "."]


def shop_prices(world: World) -> dict[str, frozenset[int]]:
    """item -> what shops ask and pay for one now, and what a quest on the board
    pays for its lot (for the gate's price check)."""
    eco = world.economy
    out: dict[str, set[int]] = {}
    for shop in eco.catalog.shops.values():
        keeper = world.find_by_name(shop.keeper)
        if keeper is None:
            continue
        for item in dict.fromkeys(shop.sells + shop.buys):
            quote = eco.quote(keeper, item)
            if quote is not None:
                out.setdefault(item, set()).update(p for p in quote[:2] if p)
    for q in world.board.quests.values():  # what a quest on the board pays for its lot
        out.setdefault(q.item, set()).add(q.reward)
    return {k: frozenset(v) for k, v in out.items()}


def facts_for(world: World, x: int, y: int, text: str, people: list[str]) -> list[str]:
    """Fact sentences for a question asked at (x, y): the places it names,
    who sells the goods it names, and the known people it names, at most
    four (a small model's context is short)."""
    out = goods_facts(world, text)[:2]
    for place in places_asked(text, set(world.map.places))[:2]:
        fact = place_fact(world, x, y, place)
        if fact is not None:
            out.append(fact.sentence())
    low = text.lower()
    for person in people:
        if re.search(rf"\b{re.escape(person.lower())}\b", low):
            where = whereabouts(world, person)
            if where:
                out.append(f"{person} is {where} now.")
    return out[:4]
