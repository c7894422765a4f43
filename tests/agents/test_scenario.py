"""Scenario files (agents/scenario.py) and generated villagers
(agents/villagers.py): the shipped examples load, mistakes are reported
with file, key and reason, and 25, 100 and 1,000 NPCs fit the map."""
from __future__ import annotations

import pytest

from agents.scenario import SHIPPED, ScenarioError, load_scenario, parse_time
from agents.villagers import generate_villagers
from server.npcs import NpcSpawner
from server.world.village import village
from server.world.world import World

PLACES = set(village().places)


def test_the_party_scenario_loads_with_25_npcs_and_the_feast_told_to_tomas():
    sc = load_scenario(SHIPPED / "party.toml", PLACES)
    assert len(sc.personas) == 25 and sc.days == 2
    assert sc.ticks_per_step == 200     # the pace bench/experiment measures (README: Experiments)
    assert [p.name for p in sc.personas[:8]] == ["Mira", "Tomas", "Elena", "Bram", "Sanne", "Oda", "Pell", "Ilse"]
    feast = sc.facts[0]
    assert feast.tell == ("Tomas",) and feast.place == "tavern" and feast.minute == 1440 + 18 * 60
    assert feast.at == parse_time("day 0 10:30", "x") and "feast" in feast.text


def test_the_elder_scenario_loads_100_villagers_facts_and_interventions():
    sc = load_scenario(SHIPPED / "elder.toml", PLACES)
    assert len(sc.personas) == 100 and len({p.name for p in sc.personas}) == 100
    assert {f.id for f in sc.facts} == {"candidacy", "fair"}
    assert [i.kind for i in sc.interventions] == ["visitor", "event"]


BASE = 'days = 1\n[population]\nnpcs = 3\n'
FACT = '[[fact]]\nid = "a"\ntext = "A feast at the tavern"\nkeywords = ["feast"]\ntell = ["Mira"]\nat = "day 0 09:00"\n'


@pytest.mark.parametrize("text, where, why", [
    ("days = 0\n[population]\nnpcs = 3\n", "days", "above 0"),
    ("days = 1\n", "population.npcs", "missing"),
    (BASE + "colour = 3\n", "", "unknown key 'colour'"),
    (BASE.replace("npcs = 3", "npcs = 3\npersonas = 'nope.toml'"), "population.personas", "nope.toml"),
    (BASE + FACT.replace('"Mira"', '"Zed"'), "fact[0].tell", "'Zed' is not in the population"),
    (BASE + FACT.replace('["feast"]', '["wolf"]'), "fact[0].keywords", "does not occur"),
    (BASE + FACT.replace("day 0 09:00", "day 3 09:00"), "fact[0].at", "within the run"),
    (BASE + FACT.replace("day 0 09:00", "tuesday"), "fact[0].at", "expected a time"),
    (BASE + FACT + 'place = "moon"\nday = 0\nhour = 18\n', "fact[0].place", "not a place"),
    (BASE + FACT + 'place = "tavern"\n', "fact[0]", "place, day and hour together"),
    (BASE + '[[intervention]]\nkind = "storm"\nat = "day 0 09:00"\nline = "x"\n', "intervention[0].kind", "storm"),
    (BASE + '[[intervention]]\nkind = "visitor"\nat = "day 0 09:00"\nline = "hi"\nname = "Mira"\nplace = "square"\n',
     "intervention[0].name", "is an NPC"),
    ('measures = ["vibes"]\n' + BASE, "measures", "unknown measure 'vibes'"),
    ("ticks_per_step = 1001\n" + BASE, "ticks_per_step", "0 to 1000"),
    ("days = [\n", "", "not valid TOML"),
])
def test_a_bad_scenario_names_its_file_key_and_reason(tmp_path, text, where, why):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, PLACES)
    msg = str(err.value)
    assert msg.startswith(str(path)) and where in msg and why in msg, msg


def test_a_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "none.toml", PLACES)


@pytest.mark.parametrize("n", [25, 100, 1000])
def test_generated_villagers_fit_the_map_and_all_join(n):
    people = generate_villagers(n, seed=3, taken={"Mira"}, places=PLACES)
    assert len({p.name.casefold() for p in people}) == n and "mira" not in {p.name.casefold() for p in people}
    assert all(r.place in PLACES for p in people for r in p.routine)
    assert all(any("sleeping" in r.activity for r in p.routine) for p in people)
    world = World(village(), seed=1)
    world.begin_tick()
    for inp in NpcSpawner(people)(world):
        assert world.apply(inp) is None
    assert sum(1 for e in world.entities.values() if e.kind == "npc") == n
    # the same seed gives the same people; another seed others
    assert generate_villagers(n, seed=3, taken={"Mira"}, places=PLACES) == people
    assert generate_villagers(n, seed=4, taken={"Mira"}, places=PLACES) != people
