"""The full-screen terminal client (textual): the map around you, who is
nearby, a scrolling chat log and an input line for speech and commands.
The connection lives in tui_session.Session; drawing and parsing in tui_map,
trade commands in tui_trade (words) and tui_trade_actions (doing them),
the school's record in tui_school, the notice board in tui_board.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque

from rich.text import Text
from textual.app import App, ComposeResult, ScreenStackError
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Input, RichLog, Static

from client_demo.tui_board import BoardActions, BoardCommand
from client_demo.tui_map import HELP, nearby_lines, parse_command, render_map, resolve_go
from client_demo.tui_school import progress_news, progress_text
from client_demo.tui_session import Session
from client_demo.tui_trade import HELP_TRADE_LONG, TradeCommand, offer_text
from client_demo.tui_trade_actions import Trader
from protocol.codec import Message

# Chat lines kept on screen and in `transcript`: a long evening of talk
# stays scrollable while memory stays bounded.
MAX_CHAT_LINES = 500
# The map and the Nearby list redraw at most this often (seconds).
REDRAW_EVERY_S = 0.1
STATUS_STYLE = {"connected": "bold green", "connecting": "yellow", "reconnecting": "bold yellow",
                "lost": "bold red", "closed": "dim", "idle": "dim"}
KEY_DIRS = {"up": "n", "down": "s", "left": "w", "right": "e"}
SCHOOL_STYLE = "#c9a0ff"
BOARD_STYLE = "#e8c07a"


class MapView(Static, can_focus=True):
    """The map; with the focus, the arrow keys walk and Enter goes back to typing."""

    BINDINGS = [Binding(k, f"step('{d}')", f"walk {d}", show=False) for k, d in KEY_DIRS.items()] + [
        Binding("enter", "app.focus_input", "chat", show=False)]

    def action_step(self, direction: str) -> None:
        self.app.walk(direction)


class HamletApp(App):
    TITLE = "Hamlet"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $boost; padding: 0 1; }
    #body { height: 1fr; }
    #map { width: 1fr; height: 1fr; border: round $primary-darken-2; }
    #map:focus { border: round $accent; }
    #side { width: 48; }
    #nearby { height: 12; border: round $primary-darken-2; padding: 0 1; }
    #chat { height: 1fr; border: round $primary-darken-2; }
    #input { dock: bottom; }
    HamletApp.narrow #body { layout: vertical; }
    HamletApp.narrow #side { width: 1fr; height: 1fr; }
    HamletApp.narrow #nearby { display: none; }
    """
    BINDINGS = [Binding("ctrl+q", "quit_app", "quit"), Binding("escape", "focus_map", "map", show=False)]

    def __init__(self, url: str, name: str, token: str | None = None) -> None:
        super().__init__()
        self.session = Session(url, name, token, on_status=self.on_status,
                               on_message=self.on_message, on_error=self.show_error)
        self.trader = Trader(self.session, info=self.info_line, error=self.show_error)
        self.board = BoardActions(self.session, info=self.board_line, error=self.show_error)
        self.transcript: deque[str] = deque(maxlen=MAX_CHAT_LINES)
        self.exit_code = 0
        self._runner: asyncio.Task | None = None
        self._dirty = True
        self._tasks: set[asyncio.Task] = set()

    # -- layout --------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="body"):
            yield MapView(id="map")
            with Vertical(id="side"):
                yield Static(id="nearby")
                yield RichLog(id="chat", max_lines=MAX_CHAT_LINES, wrap=True, markup=False, min_width=20)
        yield Input(id="input", placeholder="Say something, or /help", max_length=560)

    def on_mount(self) -> None:
        self.query_one("#map").border_title = "map"
        self.query_one("#nearby").border_title = "nearby"
        self.query_one("#chat").border_title = "chat"
        self.query_one("#input", Input).focus()
        self.log_line(Text(HELP, style="dim"), HELP)
        self._runner = asyncio.ensure_future(self.session.run())
        self.set_interval(REDRAW_EVERY_S, self.redraw)
        self.on_status(self.session.status, "")

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 90, "narrow")

    # -- session callbacks ---------------------------------------------------
    def status_line(self) -> Text:
        status, detail, client = self.session.status, self.session.detail, self.session.client
        line = Text.assemble(("Hamlet", "bold"), f"  {self.session.name}  ·  ",
                             (status, STATUS_STYLE.get(status, "")))
        if client is not None and client.welcome is not None:
            line.append("  ·  ")
            line.append(f"{client.coins} coins", "bold #ffd23f")
        if detail and status != "connected":
            line.append(f"  {detail}", "dim")
        if status == "lost":
            line.append("  (/quit, or restart to try again)", "dim")
        return line

    def refresh_status(self) -> bool:
        try:
            self.query_one("#status", Static).update(self.status_line())
        except Exception:
            return False  # not mounted yet, or already gone
        return True

    def on_status(self, status: str, detail: str) -> None:
        if not self.refresh_status():
            return
        if status == "reconnecting" and self.session.history[-2:-1] == ["connected"]:
            self.log_line(Text("Connection dropped; reconnecting…", style="italic yellow"))
        elif status == "lost":
            self.exit_code = 1
            self.log_line(Text(f"Connection lost: {detail}", style="bold red"))
        self._dirty = True

    def on_message(self, msg: Message) -> None:
        d = msg.data
        if msg.type == "welcome":
            word = "Welcome back" if d.get("resumed") else "You arrive in the village as"
            self.log_line(Text(f"{word}{',' if d.get('resumed') else ''} {self.session.name}.", style="italic"))
        elif msg.type == "event":
            if d["kind"] == "say":
                who = self.session.client.entities.get(d["from"]) if self.session.client else None
                style = "bold #e0704f" if who is not None and who.kind == "npc" else "bold #6f9cff"
                head = Text(d["name"], style=style)
                if d.get("to_name"):
                    head.append(f" → {d['to_name']}", style="dim")
                self.log_line(Text.assemble(head, ": ", d["text"]))
            elif d["kind"] == "arrive" and d["from"] != self.session.entity:
                self.log_line(Text(f"{d['name']} arrived.", style="dim italic"))
            elif d["kind"] == "depart":
                self.log_line(Text(f"{d['name']} left.", style="dim italic"))
            elif d["kind"] == "trade":
                self.log_line(Text(d.get("text") or f"{d['name']} traded with {d.get('to_name', '?')}.",
                                   style="#9bd17a"))
        elif msg.type == "inv":
            self.refresh_status()
        elif msg.type == "offer":
            client = self.session.client
            self.log_line(Text(offer_text(d, client.entity if client else None), style="bold #ffd23f"))
        elif msg.type == "progress":
            news = progress_news(d.get("topics"))  # this message's record (the mirror may be newer)
            if news:
                self.log_line(Text(news, style=SCHOOL_STYLE))
        self._dirty = True

    def show_error(self, text: str) -> None:
        self.log_line(Text(text, style="bold red"))
        self.notify(text, severity="error", timeout=6)

    def info_line(self, text: str) -> None:
        self.log_line(Text(text, style="cyan"))

    def board_line(self, text: str) -> None:
        self.log_line(Text(text, style=BOARD_STYLE))

    def log_line(self, text: Text, plain: str | None = None) -> None:
        stamp = time.strftime("%H:%M")
        self.transcript.append(f"{stamp} {plain if plain is not None else text.plain}")
        try:
            self.query_one("#chat", RichLog).write(Text.assemble((stamp + " ", "dim"), text))
        except Exception:
            pass

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        client = self.session.client
        try:
            view = self.query_one("#map", MapView)
        except (NoMatches, ScreenStackError):  # the timer fired while the screen is not (or no longer) mounted
            self._dirty = True
            return
        size = view.content_size
        if client is None:
            view.update("connecting…")
            return
        view.update(render_map(client.map, client.entities, client.entity, size.width, size.height))
        me = client.me
        if me is not None:
            view.border_subtitle = f"{me.x}, {me.y}"
        lines = nearby_lines(client.entities, client.entity)
        self.query_one("#nearby", Static).update("\n".join(lines) if lines else "Nobody in sight.")

    # -- input ---------------------------------------------------------------
    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def walk(self, direction: str) -> None:
        self.spawn(self.session.move(dir=direction))

    def action_focus_input(self) -> None:
        self.query_one("#input", Input).focus()

    def action_focus_map(self) -> None:
        self.query_one("#map", MapView).focus()

    async def action_quit_app(self) -> None:
        await self.session.close()
        self.exit(self.exit_code)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.value = ""
        client = self.session.client
        entities = client.entities if client else {}
        cmd = parse_command(event.value, [e.name for e in entities.values()])
        if isinstance(cmd, TradeCommand):
            self.spawn(self.trader.run(cmd))
        elif isinstance(cmd, BoardCommand):
            self.spawn(self.board.run(cmd))
        elif cmd.name == "say":
            self.spawn(self.session.say(cmd.text))
        elif cmd.name == "to":
            target = next((e for e in entities.values() if e.name.casefold() == cmd.target.casefold()), None)
            if target is None:
                self.show_error(f"Nobody called {cmd.target} is in sight (try /who).")
            else:
                self.spawn(self.session.say(cmd.text, to=target.id))
        elif cmd.name == "go":
            places = [row[0] for row in (client.map or {}).get("places", [])] if client else []
            fields = resolve_go(cmd.target, places, entities) or {"place": cmd.target[:32]}
            self.spawn(self.session.move(**fields))
        elif cmd.name == "stop":
            self.spawn(self.session.move(stop=True))
        elif cmd.name == "who":
            lines = nearby_lines(entities, client.entity if client else None)
            self.log_line(Text("Nearby: " + ("; ".join(lines) if lines else "nobody in sight"), style="cyan"))
        elif cmd.name == "places":
            places = sorted({row[0] for row in ((client.map or {}).get("places", []) if client else [])})
            self.log_line(Text("Places: " + ", ".join(places), style="cyan"))
        elif cmd.name == "progress":
            self.log_line(Text(progress_text(client.progress if client else None), style=SCHOOL_STYLE))
        elif cmd.name == "help":
            self.info_line(HELP_TRADE_LONG if cmd.text in ("trade", "trades", "economy") else HELP)
        elif cmd.name == "quit":
            await self.action_quit_app()
        elif cmd.name == "error":
            self.show_error(cmd.text)

    async def on_unmount(self) -> None:
        if not self.session.stopped:
            await self.session.close()
        if self._runner is not None:
            self._runner.cancel()
