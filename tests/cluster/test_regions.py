"""The region map: cells to regions, borders and watched cells."""
from __future__ import annotations

import pytest

from server.cluster.regions import Region, RegionMap


def test_columns_split_the_village_and_own_every_tile():
    m = RegionMap.columns(2, 128, 96)
    assert m.names() == ["r0", "r1"]
    assert m.owner_of(63, 50) == "r0" and m.owner_of(64, 50) == "r1"
    assert m.owner_of(0, 0) == "r0" and m.owner_of(127, 95) == "r1"
    assert {m.owner_of(x, y) for x in range(128) for y in range(96)} == {"r0", "r1"}


def test_border_and_watched_cells():
    m = RegionMap.columns(2, 128, 96)
    border = m.border_cells("r0")
    assert set(border) == {(3, y) for y in range(6)}
    assert all(v == {"r1"} for v in border.values())
    assert m.watched_cells("r0") == sorted((4, y) for y in range(6))
    assert m.neighbours("r0") == {"r1"} and m.neighbours("r1") == {"r0"}
    three = RegionMap.columns(3, 128, 96)
    assert three.neighbours("r1") == {"r0", "r2"}


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match="both"):
        RegionMap(16, 2, 1, [Region("a", 0, 0, 0, 2, 1), Region("b", 1, 1, 0, 2, 1)])
    with pytest.raises(ValueError, match="no region"):
        RegionMap(16, 2, 1, [Region("a", 0, 0, 0, 1, 1)])
    with pytest.raises(ValueError, match="name"):
        RegionMap(16, 1, 1, [Region("A b", 0, 0, 0, 1, 1)])
    with pytest.raises(ValueError):
        RegionMap.columns(9, 128, 96)
