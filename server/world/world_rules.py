"""The numbers a world runs by (`WorldRules`): walking speed, how far speech
carries, the longest path one move may ask for, the size of a grid cell, and
the game clock. Re-exported from `world.py`, where they are imported from.
"""
from __future__ import annotations

from dataclasses import dataclass

from protocol.entities import HEARING_RANGE


@dataclass(frozen=True, slots=True)
class WorldRules:
    # Walking speed: one tile per 4 ticks is 5 tiles/s at 20 Hz, a brisk walk
    # on a map of 1 m tiles that clients can still interpolate smoothly.
    ticks_per_tile: int = 4
    # Speech carries this many tiles (about a shout across the square); the
    # protocol declares it, since clients check an addressee's distance.
    hearing_radius: int = HEARING_RANGE
    # The longest path a single move may ask for; the default map's diameter
    # is about 220 tiles, so any place is one move away.
    max_path: int = 400
    # Grid cells of 16 x 16 tiles; a client sees its cell and the 8 around
    # it: at least 16 tiles in every direction (a 1280 x 720 browser view at
    # 32 px per tile shows 20 x 11 each side), with few cells to visit.
    grid_cell: int = 16
    # The game clock runs ten times faster than real time at 20 Hz (half a
    # game second per tick): a game day lasts 2.4 real hours, so routines
    # change while people play, and a conversation of a few real seconds
    # takes a game minute or so.
    game_seconds_per_tick: float = 0.5
    start_minute: int = 8 * 60  # a new world starts at 08:00 on day 0
