"""`hamlet sim` and `hamlet replay`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sim", help="run the village headless and write a transcript, summary and plots",
                              description="Run the world and its NPC minds without the network.")
    p.add_argument("--npcs", type=int, default=8, help="how many NPCs from the persona file (default 8)")
    p.add_argument("--minutes", type=float, default=30.0, help="game minutes to simulate (default 30)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (must not hold a world.db)")
    p.add_argument("--model", default="embedded", help="embedded, a local model folder, or an http(s):// URL")
    p.add_argument("--personas", metavar="FILE", help="persona file (default agents/data/village.toml)")
    p.add_argument("--realtime", action="store_true", help="tick at 20 Hz with the engine in a worker process")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_sim_cmd)

    r = subparsers.add_parser("replay", help="re-run a simulation's event log without the model and check its hash",
                              description="Replay DIR/world.db from tick 0 and compare the final state hash.")
    r.add_argument("dir", metavar="DIR")
    r.set_defaults(func=run_replay_cmd)


def run_sim_cmd(args: argparse.Namespace) -> int:
    from server.sim import SimOptions, run_sim

    if args.minutes <= 0 or args.npcs < 1:
        print("hamlet sim: --minutes must be positive and --npcs at least 1", file=sys.stderr)
        return 2
    opts = SimOptions(out=Path(args.out), npcs=args.npcs, minutes=args.minutes, seed=args.seed, model=args.model,
                      realtime=args.realtime, personas=args.personas, progress=not args.quiet)
    try:
        summary = run_sim(opts)
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"hamlet sim: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("ticks", "conversations", "npc_conversations", "lines_spoken",
                                              "tokens", "wall_s", "final_state_hash")}))
    print(f"wrote {args.out}/transcript.md, summary.json, world.db, " + ", ".join(summary["plots"]))
    return 0


def run_replay_cmd(args: argparse.Namespace) -> int:
    from server.sim import replay

    try:
        ok, recorded, got = replay(Path(args.dir))
    except (FileNotFoundError, ValueError) as exc:
        print(f"hamlet replay: {exc}", file=sys.stderr)
        return 2
    if ok:
        print(f"replay OK: final state hash {got}")
        return 0
    print(f"replay MISMATCH: recorded {recorded}, replayed {got}", file=sys.stderr)
    return 1
