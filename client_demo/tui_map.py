"""What the terminal client draws and parses, as plain functions: the map
around the avatar as Rich text (two terminal cells per tile, so tiles look
square), the "who is nearby" lines, and the parsing of typed commands."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from client_demo.client import EntityView
from client_demo.tui_board import HEADS as BOARD_HEADS, HELP_BOARD, BoardCommand, parse_board
from client_demo.tui_school import HELP_SCHOOL
from client_demo.tui_trade import HELP_TRADE, TRADE_HEADS, TradeCommand, parse_trade
from protocol.entities import FLAG_AWAY, FLAG_THINKING
from protocol.entities import HEARING_RANGE as HEARING  # tiles; an addressee must be this close

# Terrain codes (PROTOCOL.md, Map): glyph pair and style per code.
TERRAIN = {
    0: ("  ", "on #5f8f3e"),        # grass
    1: ("  ", "on #a08c5c"),        # path
    2: ("~~", "#9fd0ff on #2d6aa0"),  # water
    3: ("██", "#6e5b4b"),           # wall
    4: ("  ", "on #8a6a48"),        # floor
    5: ("♣♣", "#1f4f23 on #5f8f3e"),  # tree
    6: ("▒▒", "#c08040 on #8a6a48"),  # door
    7: ("''", "#8a7a2a on #b8a650"),  # field
}
UNKNOWN = ("  ", "on black")
DIRECTIONS = ("n", "s", "e", "w", "ne", "nw", "se", "sw")
COMPASS = ("E", "SE", "S", "SW", "W", "NW", "N", "NE")


def direction(dx: float, dy: float) -> str:
    if math.hypot(dx, dy) < 0.5:
        return "here"
    return COMPASS[round(math.atan2(dy, dx) / (math.pi / 4)) % 8]


def render_map(game_map: dict[str, Any] | None, entities: dict[int, EntityView], me: int | None,
               cols: int, rows: int) -> Text:
    """The tiles around our avatar that fit in cols x rows cells."""
    text = Text(no_wrap=True, overflow="crop")
    if not game_map or me is None or me not in entities:
        text.append("waiting for the map…")
        return text
    w, h, tiles = game_map["w"], game_map["h"], game_map["tiles"]
    me_e = entities[me]
    tw, th = max(1, cols // 2), max(1, rows)
    x0, y0 = me_e.x - tw // 2, me_e.y - th // 2
    # entity glyphs by tile: our "@", others the first letter of their name
    marks: dict[tuple[int, int], tuple[str, str]] = {}
    for e in entities.values():
        if e.id == me:
            continue
        style = "bold #ffd0c0 on #a03020" if e.kind == "npc" else "bold white on #2f62c9"
        if e.flags & FLAG_AWAY:
            style = "dim white on #555555"
        second = "…" if e.flags & FLAG_THINKING else " "
        marks[(e.x, e.y)] = ((e.name[:1] or "?") + second, style)
    marks[(me_e.x, me_e.y)] = ("@ ", "bold black on #ffd23f")
    # place names written over the map at the top of each place
    labels: dict[tuple[int, int], str] = {}
    for name, _kind, px, py, pw, _ph, *_ in game_map.get("places", []):
        lx = px + max(0, (pw - (len(name) + 1) // 2) // 2)
        for i in range(0, len(name), 2):
            labels[(lx + i // 2, py)] = name[i:i + 2].ljust(2)
    for y in range(y0, y0 + th):
        for x in range(x0, x0 + tw):
            if (x, y) in marks:
                glyph, style = marks[(x, y)]
            elif 0 <= x < w and 0 <= y < h:
                glyph, style = TERRAIN.get(tiles[y * w + x], UNKNOWN)
                if (x, y) in labels:
                    glyph, style = labels[(x, y)], "bold white on #333333"
            else:
                glyph, style = UNKNOWN
            text.append(glyph, style)
        if y < y0 + th - 1:
            text.append("\n")
    return text


def nearby_lines(entities: dict[int, EntityView], me: int | None, limit: int = 30) -> list[str]:
    """'Mira (NPC) 3 tiles NE, thinking', nearest first."""
    if me is None or me not in entities:
        return []
    m = entities[me]
    rows = []
    for e in entities.values():
        if e.id == me:
            continue
        d = math.hypot(e.x - m.x, e.y - m.y)
        notes = [" (NPC)" if e.kind == "npc" else ""]
        line = f"{e.name}{notes[0]}  {round(d)} {'tile' if round(d) == 1 else 'tiles'} {direction(e.x - m.x, e.y - m.y)}"
        if e.flags & FLAG_THINKING:
            line += "  thinking…"
        if e.flags & FLAG_AWAY:
            line += "  away"
        if d > HEARING:
            line += "  (out of earshot)"
        rows.append((d, e.name.casefold(), line))
    rows.sort()
    return [line for _, _, line in rows[:limit]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # say, to, go, stop, who, places, progress, help, quit, error (trades: a TradeCommand)
    text: str = ""
    target: str = ""


HELP = ("Commands: type text to speak · /say TEXT · /to NAME TEXT · /go PLACE | NAME | X Y | n s e w ·"
        " /stop · /who · /places · /progress · /quit.  Tab moves to the map, where the arrow keys walk.\n"
        + HELP_TRADE + "\n" + HELP_SCHOOL + "\n" + HELP_BOARD)


def parse_command(line: str, known_names: list[str]) -> Command | TradeCommand | BoardCommand:
    """Parse one typed line. `known_names` (people in view) let `/to`,
    `/give` and `/offer` take names with spaces: the longest name the text
    starts with wins."""
    line = line.strip()
    if not line:
        return Command("none")
    if not line.startswith("/"):
        return Command("say", text=line)
    head, _, rest = line[1:].partition(" ")
    head, rest = head.lower(), rest.strip()
    if head in ("say", "s"):
        return Command("say", text=rest) if rest else Command("error", text="Usage: /say TEXT")
    if head in ("to", "t", "tell"):
        folded = rest.casefold()
        for name in sorted(known_names, key=len, reverse=True):
            if folded.startswith(name.casefold() + " ") and rest[len(name):].strip():
                return Command("to", target=name, text=rest[len(name):].strip())
        target, _, text = rest.partition(" ")
        if not target or not text.strip():
            return Command("error", text="Usage: /to NAME TEXT")
        return Command("to", target=target, text=text.strip())
    if head in ("go", "walk", "g"):
        return Command("go", target=rest) if rest else Command("error", text="Usage: /go PLACE, /go NAME, /go X Y or /go n|s|e|w")
    if head in TRADE_HEADS:
        cmd = parse_trade(head, rest, known_names)
        return Command("error", text=cmd) if isinstance(cmd, str) else cmd
    if head in BOARD_HEADS:
        cmd = parse_board(head, rest)
        return Command("error", text=cmd) if isinstance(cmd, str) else cmd
    if head == "help":
        return Command("help", text=rest.lower())
    if head in ("progress", "school"):
        return Command("progress") if not rest else Command("error", text=f"Usage: /{head}")
    if head in ("stop", "who", "places", "quit", "exit", "q"):
        return Command({"exit": "quit", "q": "quit"}.get(head, head))
    return Command("error", text=f"Unknown command /{head}. {HELP}")


def resolve_go(target: str, places: list[str], entities: dict[int, EntityView]) -> dict[str, Any] | None:
    """Turn `/go` arguments into move fields: a direction, X Y, a place or a person."""
    t = target.strip()
    if t.lower() in DIRECTIONS:
        return {"dir": t.lower()}
    parts = t.replace(",", " ").split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return {"to": (int(parts[0]), int(parts[1]))}
    for p in places:
        if p.casefold() == t.casefold():
            return {"place": p}
    for e in entities.values():
        if e.name.casefold() == t.casefold():
            return {"to": (e.x, e.y)}
    return None
