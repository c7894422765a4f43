"""Villagers generated from templates, for scenarios that need more people
than the persona file holds (25, 100 or 1,000 NPCs): each gets a name, a
trade from a template (its workplace and working hours on the village
map), a home among the houses, a daily routine, and neighbours and
workmates it knows by name. Seeded: the same seed gives the same people."""
from __future__ import annotations

import random

from agents.personas import Persona, RoutineEntry

FIRST_NAMES = (
    "Aldo Berta Cato Dora Emil Fenna Gus Hilde Ivo Jana Kees Lotte Moritz Nell Otto Pia Quirin Rosa Stef Tilde "
    "Ugo Vera Wim Xenia Yorick Zelda Anton Brigit Conrad Dagny Edda Floris Greta Hanno Inga Joost Karla Lenz "
    "Marit Niels Olga Piet Runa Sven Thea Ulla Viggo Wanda Anouk Bastian Cilla Dirk Elke Frans Gerda Hugo Isolde "
    "Jorn Katrien Lars").split()
SURNAMES = ("Ashdown Barley Cooper Dale Eastwick Fairweather Greenhill Hart Ivywood Kettle Longmeadow Miller Nettle "
            "Oakes Pickering Quill Reed Stone Thatcher Underhill Vane Wheeler Yarrow Brook Fletcher Holt Marsh "
            "Penny Rowan Sparrow Tanner Weaver Abbot Bell Crane Drake Elm Frost Gale Hedge").split()

# (occupation, workplace, work activity, start hour, end hour, traits pool)
TRADES = (
    ("farmhand", "fields", "working in the fields", 6, 17, ("hardy", "quiet", "weather-wise")),
    ("fisher", "pond", "fishing", 6, 15, ("patient", "dreamy", "early riser")),
    ("woodcutter", "grove", "cutting wood", 7, 16, ("strong", "gruff", "cheerful")),
    ("market trader", "market", "selling at a stall", 8, 17, ("shrewd", "talkative", "friendly")),
    ("baker's hand", "bakery", "kneading dough", 5, 13, ("early riser", "cheerful", "careful")),
    ("smith's apprentice", "smithy", "working the bellows", 7, 17, ("eager", "clumsy", "proud")),
    ("chapel warden", "chapel", "sweeping the chapel", 8, 16, ("calm", "devout", "curious")),
    ("pupil", "school", "studying", 8, 15, ("curious", "restless", "bright")),
    ("water carrier", "well", "carrying water", 7, 16, ("tireless", "chatty", "kind")),
    ("tavern hand", "tavern", "serving drinks", 12, 22, ("jolly", "quick", "nosy")),
    ("herbalist", "grove", "gathering herbs", 7, 14, ("wise", "gentle", "shy")),
    ("weaver", "market", "selling cloth", 9, 17, ("precise", "patient", "proud")),
)
HOUSES = tuple(f"house {i}" for i in range(1, 10))  # the village map's houses
LUNCH = ("tavern", "square", "bakery", "well")
EVENING = ("tavern", "square", "pond", "chapel", "home")
# The most villagers one scenario may generate: 1,000 is the largest
# population the experiments use; more would not fit the houses sensibly
# (over a hundred to a house) and the tick would slow past usefulness.
MAX_GENERATED = 1000


def villager_names(n: int, taken: set[str], rng: random.Random) -> list[str]:
    """`n` unique names not in `taken` (casefolded): first names while they
    last, then first names with surnames."""
    pool = [f for f in FIRST_NAMES if f.casefold() not in taken]
    rng.shuffle(pool)
    if n > len(pool):
        combos = [f"{f} {s}" for f in FIRST_NAMES for s in SURNAMES if f"{f} {s}".casefold() not in taken]
        rng.shuffle(combos)
        pool += combos
    if n > len(pool):
        raise ValueError(f"cannot name {n} villagers (at most {len(pool)})")
    return pool[:n]


def generate_villagers(n: int, seed: int, taken: set[str] = frozenset(),
                       places: set[str] | None = None) -> list[Persona]:
    """`n` villagers from the templates; `taken`: names already in use;
    `places`: the map's place names, checked for every routine."""
    if not 0 <= n <= MAX_GENERATED:
        raise ValueError(f"generated villagers must be 0 to {MAX_GENERATED}, not {n}")
    rng = random.Random(f"villagers:{seed}")
    names = villager_names(n, {t.casefold() for t in taken}, rng)
    trades = [TRADES[i % len(TRADES)] for i in range(n)]
    rng.shuffle(trades)
    homes = [HOUSES[i % len(HOUSES)] for i in range(n)]
    out = []
    for i, (name, trade, home) in enumerate(zip(names, trades, homes)):
        occupation, work, doing, start, end, pool = trade
        lunch = rng.choice(LUNCH)
        evening = rng.choice(EVENING)
        evening = home if evening == "home" else evening
        bed = max(rng.randint(20, 23), min(23, end + 1))  # not before work ends
        steps = {start: (work, doing)}
        if start < 12 < end - 1:
            steps[12] = (lunch, "eating lunch")
            steps[13] = (work, doing)
        if end < bed:
            steps[end] = (evening, "resting at home" if evening == home else f"spending the evening at the {evening}")
        steps[bed] = (home, "sleeping")
        routine = tuple(RoutineEntry(h, p, a) for h, (p, a) in sorted(steps.items()))
        if places is not None:
            for r in routine:
                if r.place not in places:
                    raise ValueError(f"villager template uses {r.place!r}, which is not on the map")
        # neighbours (same house) and workmates (same workplace) it knows by name: a few each
        neighbours = [names[j] for j in range(i % len(HOUSES), n, len(HOUSES)) if j != i][:2]
        workmates = [names[j] for j in range(n) if j != i and trades[j][1] == work][:1]
        relationships = {x: "neighbour" for x in neighbours}
        relationships.update({x: "workmate" for x in workmates if x not in relationships})
        traits = tuple(rng.sample(pool, 2))
        out.append(Persona(
            name=name, age=rng.randint(14, 70) if occupation != "pupil" else rng.randint(9, 15),
            occupation=occupation, role="villager", traits=traits, home=home, workplace=work,
            summary=f"{name} is a {occupation} who lives in {home}.", routine=routine,
            relationships=relationships,
            memories=(f"I work at the {work} most days.",)))
    return out
