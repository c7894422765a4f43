"""The world object: movement at bounded speed along paths, authority of
inputs, speech range, snapshots and deterministic replay."""
from __future__ import annotations

import pytest

from server.persistence import Database
from server.restore import open_world, replay_into
from server.world.inputs import Join, Leave, MoveTo, Say, SetFlags, Step, Stop, from_record, to_record
from server.world.village import village
from server.world.world import Rejection, World, WorldRules

MAP = village()


def world_with(*joins: Join, rules: WorldRules = WorldRules()) -> World:
    w = World(MAP, seed=7, rules=rules)
    w.begin_tick()
    for j in joins:
        assert w.apply(j) is None
    return w


def run(w: World, ticks: int) -> None:
    for _ in range(ticks):
        w.begin_tick()
        w.simulate()


def test_village_has_the_named_places_and_they_are_reachable():
    for name in ("square", "market", "tavern", "school", "smithy", "bakery", "house 1", "pond", "fields"):
        place = MAP.places[name]
        assert MAP.walkable(*place.entry), name
        assert MAP.find_path(MAP.places["square"].entry, place.entry) is not None, name


def test_movement_follows_a_path_at_bounded_speed():
    rules = WorldRules(ticks_per_tile=4)
    w = world_with(Join(1, "ann", 64, 48), rules=rules)
    assert w.apply(MoveTo(1, 64, 58)) is None
    w.simulate()
    positions = [(w.entities[1].x, w.entities[1].y)]
    for _ in range(60):
        run(w, 1)
        positions.append((w.entities[1].x, w.entities[1].y))
    # never more than one tile per tick, never faster than one tile per 4 ticks
    for a, b in zip(positions, positions[1:]):
        assert abs(a[0] - b[0]) + abs(a[1] - b[1]) <= 1
    assert positions[-1] == (64, 58)
    first_arrival = positions.index((64, 58))
    assert first_arrival >= 10 * 4 - 4


def test_blocked_or_off_map_targets_are_rejected_and_change_nothing():
    w = world_with(Join(1, "ann", 64, 48))
    before = w.state_hash()
    tavern = MAP.places["tavern"]
    for target in ((tavern.x, tavern.y), (-1, 5), (500, 5), (15, 72)):  # wall, off map, off map, water
        result = w.apply(MoveTo(1, *target))
        assert isinstance(result, Rejection) and result.code == "bad_move", target
        assert w.state_hash() == before


def test_inputs_for_absent_entities_are_rejected():
    w = world_with(Join(1, "ann", 64, 48))
    before = w.state_hash()
    for inp in (MoveTo(99, 64, 50), Say(99, "hi"), Step(99, "n"), Leave(99), Stop(99), SetFlags(99, 1)):
        assert isinstance(w.apply(inp), Rejection)
    assert w.state_hash() == before


def test_names_are_unique_case_insensitively():
    w = world_with(Join(1, "Ann", 64, 48))
    result = w.apply(Join(2, "aNN", 64, 49))
    assert isinstance(result, Rejection) and result.code == "name_taken"


def test_speech_is_heard_within_the_radius_only():
    w = world_with(Join(1, "ann", 64, 48), Join(2, "bob", 70, 48), Join(3, "cy", 90, 48))
    w.begin_tick()
    chat = w.apply(Say(1, "hello"))
    assert isinstance(chat, int)
    (event,) = [e for e in w.events if e["kind"] == "say"]
    hearers = {e.name for e in w.hearers(event["x"], event["y"])}
    assert hearers == {"ann", "bob"}


def test_addressing_someone_out_of_range_is_rejected():
    w = world_with(Join(1, "ann", 64, 48), Join(3, "cy", 90, 48))
    result = w.apply(Say(1, "psst", to=3))
    assert isinstance(result, Rejection)
    assert not [e for e in w.events if e["kind"] == "say"]


def test_snapshot_restore_gives_the_same_state():
    w = world_with(Join(1, "ann", 64, 48), Join(2, "bob", 70, 48))
    w.apply(MoveTo(1, 90, 43))
    run(w, 7)
    copy = World.restore(MAP, w.snapshot(), w.rules)
    assert copy.state_hash() == w.state_hash()
    run(w, 30)
    run(copy, 30)
    assert copy.state_hash() == w.state_hash()


def test_records_round_trip():
    for inp in (Join(1, "ann", 3, 4, npc=True), Leave(1), MoveTo(1, 2, 3), Step(1, "n"), Stop(1),
                Say(1, "hi", 2), SetFlags(1, 3)):
        assert from_record(*to_record(inp)) == inp


def test_replay_from_the_log_reproduces_the_state(tmp_path):
    db = Database(str(tmp_path / "w.db"))
    live = open_world(db, MAP, seed=3)
    script = {1: [Join(1, "ann", 64, 48)], 2: [MoveTo(1, 90, 43)], 5: [Join(2, "bob", 60, 45), Say(1, "hi")],
              9: [Step(2, "n")], 30: [Leave(2)]}
    for _ in range(60):
        live.begin_tick()
        applied = []
        for inp in script.get(live.tick, []):
            assert not isinstance(live.apply(inp), Rejection)
            applied.append(to_record(inp))
        live.simulate()
        db.commit_tick(live.tick, applied, [e for e in live.events if e["kind"] == "say"], [])
    fresh = World(MAP, seed=3)
    replay_into(fresh, db, db.last_tick())
    assert fresh.state_hash() == live.state_hash()
    # and from a snapshot in the middle
    db2 = Database(str(tmp_path / "w.db"))
    again = open_world(db2, MAP, seed=999)  # the stored seed wins
    assert again.state_hash() == live.state_hash()
    assert [c["text"] for c in db.chat_history()] == ["hi"]


@pytest.mark.parametrize("direction, delta", [("n", (0, -1)), ("e", (1, 0)), ("sw", (-1, 1))])
def test_step_moves_one_tile(direction, delta):
    w = world_with(Join(1, "ann", 64, 48))
    assert w.apply(Step(1, direction)) is None
    run(w, 1)
    assert (w.entities[1].x, w.entities[1].y) == (64 + delta[0], 48 + delta[1])
