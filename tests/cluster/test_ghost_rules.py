"""The border view's rules on their own (no NATS): which source shows an
entity, when a handed-off entity stops being shown by the region it left,
and that pieces keep their identity while their content does not change."""
from __future__ import annotations

from server.cluster.border_view import BorderView
from server.cluster.ghosts import STALE_S, Ghosts, Row
from server.world.inputs import Join
from server.world.world import World
from tests.cluster.helpers import MAP, REGIONS

B = (4, 0)   # r1's cells beside r0's, watched by r0
C = (4, 1)


def view() -> tuple[BorderView, World]:
    return BorderView(Ghosts(REGIONS.watched_cells("r0")), REGIONS.cell), World(MAP, 1)


def row(eid: int, x: int, y: int, flags: int = 0) -> list:
    return [eid, "player", f"p{eid}", x, y, flags]


def test_pictures_are_checked_and_the_latest_wins():
    v, world = view()
    g = v.ghosts
    assert not g.update((9, 9), 1, [row(1, 150, 150)], 0.0)       # not watched
    assert not g.update(B, 5, [["x"]], 0.0)                       # malformed
    assert not g.update(B, 5, [row(1, -1, 3)], 0.0)               # off the map
    assert g.update(B, 5, [row(1, 66, 3)], 0.0)
    assert not g.update(B, 4, [], 0.0)                            # older than what we hold
    assert g.update(C, 6, [row(1, 66, 17)], 0.0)                  # moved on: C's picture is later
    v.refresh(world, 0.0)
    assert v.pieces == {C: {1: (66, 17, 0)}}
    assert v.shown[1].name == "p1"
    assert g.update(C, 8, [], 0.0, transit=[row(2, 63, 17)])      # one on its way to us, at the tile it stepped on
    v.refresh(world, 0.0)
    assert v.pieces == {B: {1: (66, 3, 0)}, (3, 1): {2: (63, 17, 0)}}
    g.expire(STALE_S + 1.0)                                       # the neighbour went quiet
    v.refresh(world, STALE_S + 1.0)
    assert v.pieces == {} and v.shown == {}


def test_our_own_entities_are_never_ghosts():
    v, world = view()
    eid = world.allocate_entity_id()
    assert world.apply(Join(eid, "ann", 60, 3)) is None
    v.ghosts.update(B, 5, [], 0.0, transit=[row(eid, 60, 3)])     # arrived: the picture is behind
    v.refresh(world, 0.0)
    assert v.pieces == {}


def test_a_departed_entity_is_shown_until_its_destination_shows_it():
    v, world = view()
    g = v.ghosts
    g.update(B, 9, [row(7, 66, 3)], 0.0)                          # an old picture: 7 was in r1 then
    v.left(Row(7, "player", "p7", 64, 3, 0), 10, 0.0)             # ours, stepped onto B at tick 10
    v.refresh(world, 0.1)
    assert v.pieces == {B: {7: (64, 3, 0)}}                       # where it stepped, not the old picture
    g.update(B, 10, [], 0.1)                                      # taken before it arrived
    v.refresh(world, 0.2)
    assert v.pieces == {B: {7: (64, 3, 0)}}
    piece = v.pieces[B]
    v.arrived(7, 11)                                              # confirmed: arrived at r1's tick 11
    v.refresh(world, 0.2)
    assert v.pieces[B] is piece                                   # nothing changed: the same object
    g.update(B, 12, [row(7, 65, 3)], 0.3)                         # r1 shows it: it takes over
    v.refresh(world, 0.3)
    assert v.pieces == {B: {7: (65, 3, 0)}} and not v.departed


def test_a_departed_entity_that_walked_on_or_whose_destination_is_quiet_goes():
    v, world = view()
    g = v.ghosts
    g.update(B, 10, [], 0.0)
    v.left(Row(7, "player", "p7", 64, 3, 0), 10, 0.0)
    v.left(Row(8, "player", "p8", 64, 4, 0), 10, 0.0)
    v.arrived(7, 11)
    g.update(B, 12, [], 0.1)                                      # after 7's arrival, without it: it walked on
    v.refresh(world, 0.1)
    assert set(v.shown) == {8}
    v.refresh(world, 0.1 + STALE_S + 0.1)                         # r1 quiet since: 8 goes too
    assert v.shown == {} and not v.departed
