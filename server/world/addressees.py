"""Addressees outside the world: in a region (server/cluster/), someone
standing just across the border, whom the region's world does not hold but
sees (a ghost). `World.foreign` says who they are and where; a `Say` to one
is checked against that tile with the same hearing rule as a local one.

What the world saw of them is written into the logged `Say` (its `to_name`,
`to_x`, `to_y`): the neighbour's picture is no part of the world's state,
so replay, which runs without neighbours, reads it from the log instead and
checks, and says, the same.
"""
from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import replace
from typing import Any, NamedTuple, Protocol

from server.world.inputs import Say


class Seen(Protocol):
    """Someone outside this world as it sees them (a region's ghost row),
    read-only."""
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def x(self) -> int: ...
    @property
    def y(self) -> int: ...


class LoggedAddressee(NamedTuple):
    """An addressee across a border as a logged `Say` recorded them."""
    id: int
    kind: str
    name: str
    x: int
    y: int


def logged_addressee(inp: Say) -> LoggedAddressee | None:
    if inp.to is None or inp.to_name is None or inp.to_x is None or inp.to_y is None:
        return None
    return LoggedAddressee(inp.to, "", inp.to_name, inp.to_x, inp.to_y)


def addressed_across(inp: Any, held: Container[int], foreign: Callable[[int], Seen | None]) -> Any:
    """`inp`, a `Say` to someone `foreign` knows (not `held` by the world)
    with their name and tile written in; any other input unchanged."""
    if type(inp) is not Say or inp.to is None or inp.to in held or inp.to_name is not None:
        return inp
    seen = foreign(inp.to)
    return inp if seen is None else replace(inp, to_name=seen.name, to_x=seen.x, to_y=seen.y)
