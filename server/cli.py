"""The `hamlet` command line: one entry point, one sub-command per module.

Each sub-command lives beside the code it drives and exposes
`register(subparsers)`; this module only assembles them, so adding a command
never means editing a central table of options.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that contribute sub-commands, in the order `--help` lists them.
# A module that is not part of this checkout (an optional extra) is skipped.
COMMAND_MODULES = (
    "server.serve_cmd",
    "agents.inference.cli",
    "agents.inference.nats_worker",
    "server.sim_cmd",
    "server.interview_cmd",
    "client_demo.tui",
    "client_demo.bots",
    "server.cluster.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hamlet",
        description="Hamlet: a persistent shared world whose NPCs are driven by a language model.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # that part is not installed
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
