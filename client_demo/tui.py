"""`hamlet client`: the terminal client's command line. Importing this
module is cheap (the command list is built on every `hamlet` call); the
textual app is imported only when the command runs.

    hamlet client --url ws://127.0.0.1:8765 --name ann
"""
from __future__ import annotations

import argparse
import shlex
import sys

DEFAULT_URL = "ws://127.0.0.1:8765"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "client", help="play in the terminal (a full-screen client)",
        description="Join a Hamlet server in a full-screen terminal client: the map around you, "
                    "who is nearby, the chat, and a line for speech and commands (/help lists them).")
    p.add_argument("--url", default=DEFAULT_URL, help=f"server WebSocket URL (default {DEFAULT_URL})")
    p.add_argument("--name", required=True, help="your name in the world (1-24 letters, digits, space, _ - .)")
    p.add_argument("--token", default=None,
                   help="session token from an earlier visit, to resume that avatar (name is then ignored)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the client until /quit; 0 after a normal exit, 1 if the connection was lost."""
    if not sys.stdout.isatty():
        print("hamlet client needs a terminal (stdout is not a TTY)", file=sys.stderr)
        return 2
    try:
        from client_demo.tui_app import HamletApp
    except ModuleNotFoundError as exc:  # textual is an install-time dependency
        print(f"hamlet client needs the '{exc.name}' package: pip install textual", file=sys.stderr)
        return 2
    app = HamletApp(args.url, args.name, args.token)
    result = app.run()
    token = app.session.token
    if token:
        print(f"To come back as {args.name}: hamlet client --url {args.url} --name {shlex.quote(args.name)} --token {token}")
    return int(result or 0) if isinstance(result, int) else app.exit_code
