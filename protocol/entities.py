"""What the wire says about the world: the layout of the rows in `state`
messages and in the map's place list, the entity kinds, the flag bits, the
hearing range and the area of interest.

These are protocol facts: clients draw and address entities with them, so
they are declared here once. The world (`server/world`) takes the flag bits
and the hearing range from this module; the view is checked equal to the
replicator's by a test. Clients read all of it from `/protocol.json`.
"""
from __future__ import annotations

# Entity kinds, the second column of an `enter` row.
KINDS = ("player", "npc")

# Flag bits of an entity (the `flags` column): bit value -> name, meaning.
FLAG_THINKING = 1
FLAG_AWAY = 2
FLAGS: dict[str, tuple[int, str]] = {
    "thinking": (FLAG_THINKING, "an NPC is preparing a reply"),
    "away": (FLAG_AWAY, "a player's connection dropped; the avatar is waiting for its owner"),
}

# Column names of each kind of row, in wire order. A row is a MessagePack
# array (positional, so that a state update for hundreds of entities stays
# small); clients index it by these names.
ROWS: dict[str, tuple[str, ...]] = {
    "enter": ("id", "kind", "name", "x", "y", "flags"),   # state.enter: an entity now in view
    "move": ("id", "x", "y"),                            # state.move: a known entity's new tile
    "upd": ("id", "flags"),                              # state.upd: a known entity's new flags
    "place": ("name", "kind", "x", "y", "w", "h", "entry_x", "entry_y"),  # welcome.map.places
    # shop.goods: price is what buying one costs now, offer what selling one
    # pays now (0: it does not buy this), stock how many it has; base and
    # target price a lot of n (PROTOCOL.md, Economy)
    "shop": ("item", "price", "offer", "stock", "base", "target"),
    # board.quests: an NPC asks for n of item for reward coins until tick
    # `expires`; text says it in words
    "quest": ("id", "from", "from_name", "item", "n", "reward", "expires", "text"),
    # board.notices: a person's words (author: the person's name), put up by an
    # NPC (writer: its name) at tick `tick`
    "notice": ("id", "author", "writer", "text", "tick"),
}

# Speech carries this many tiles (Euclidean distance, inclusive): about a
# shout across the village square. An addressee of `say {to}` must be this
# close; events are delivered to connections whose avatar is this close.
HEARING_RANGE = 10

# Area of interest: the world is cut into square cells of VIEW_CELL_TILES
# tiles; a client sees the entities in its avatar's cell and the cells up to
# VIEW_RADIUS_CELLS away (a 3 x 3 square of 16-tile cells: at least 16
# tiles in every direction, which covers a 1280 x 720 browser view at
# 32 px per tile).
VIEW_CELL_TILES = 16
VIEW_RADIUS_CELLS = 1
VIEW_SIDE_TILES = VIEW_CELL_TILES * (2 * VIEW_RADIUS_CELLS + 1)
