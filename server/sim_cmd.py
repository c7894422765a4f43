"""`hamlet sim` and `hamlet replay`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sim", help="run the village headless and write a transcript, summary and plots",
                              description="Run the world and its NPC minds without the network.")
    p.add_argument("--npcs", type=int, help="how many NPCs from the persona file (default 8)")
    p.add_argument("--minutes", type=float, default=30.0, help="game minutes to simulate (default 30)")
    p.add_argument("--regions", type=int, metavar="N", help="run the village over N region processes (N >= 2) with "
                   "nats-server, in real time (ten game minutes a wall minute), every NPC of the persona file; "
                   "--model none: NPCs follow their routines")
    p.add_argument("--seed", type=int, help="the run's seed (default: the scenario's, else 1)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (must not hold a world.db)")
    p.add_argument("--model", help="embedded (default), a local model folder, http:// URLs (comma-separated) or "
                   "nats://HOST:PORT/WORLD (hamlet llm-worker's queue group); "
                   "with --regions: none (default), embedded (one llm-worker shared by the regions) or URLs")
    p.add_argument("--personas", metavar="FILE", help="persona file (default agents/data/village.toml)")
    p.add_argument("--realtime", action="store_true", help="tick at 20 Hz with the engine in a worker process")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--scenario", metavar="FILE", help="a scenario file (README: Experiments); sets the NPCs and the "
                   "length (--npcs, --minutes, --personas are ignored)")
    p.add_argument("--ticks-per-step", type=int, metavar="N", help="the engine takes one step every N ticks "
                   "(0: it finishes each tick's work first; default: the scenario's, else 0)")
    p.add_argument("--seeds", metavar="LIST", help="a sweep: run the scenario for each seed (1-20, 1,5,9) into "
                   "DIR/seed-N and write one table (sweep.json, sweep.md)")
    p.add_argument("--procs", type=int, metavar="N", help="parallel runs of a sweep (default: one per CPU)")
    p.add_argument("--ray", metavar="ADDRESS", help="run a sweep's seeds as Ray tasks (ADDRESS of a cluster, or "
                   "'local' for a Ray runtime started here; needs the 'sweeps' extra)")
    p.set_defaults(func=run_sim_cmd)

    r = subparsers.add_parser("replay", help="re-run a simulation's event log without the model and check its hash",
                              description="Replay DIR/world.db from tick 0 and compare the final state hash.")
    r.add_argument("dir", metavar="DIR")
    r.set_defaults(func=run_replay_cmd)


def run_sim_cmd(args: argparse.Namespace) -> int:
    from server.sim import SimOptions, run_sim

    if args.regions is not None:
        return _cluster(args)
    args.npcs = 8 if args.npcs is None else args.npcs
    args.model = args.model or "embedded"
    if args.minutes <= 0 or args.npcs < 1:
        print("hamlet sim: --minutes must be positive and --npcs at least 1", file=sys.stderr)
        return 2
    from agents.scenario import MAX_TICKS_PER_STEP
    if args.ticks_per_step is not None and not 0 <= args.ticks_per_step <= MAX_TICKS_PER_STEP:
        print(f"hamlet sim: --ticks-per-step must be 0 to {MAX_TICKS_PER_STEP}", file=sys.stderr)
        return 2
    if (args.seeds or args.ray) and not args.scenario:
        print("hamlet sim: --seeds and --ray sweep a --scenario", file=sys.stderr)
        return 2
    try:
        scenario = _scenario(args.scenario) if args.scenario else None
        tps = args.ticks_per_step if args.ticks_per_step is not None else (scenario.ticks_per_step if scenario else 0)
        refusal = _engine_refusal(args.model, tps, args.realtime)
        if refusal is not None:
            print(f"hamlet sim: {refusal}", file=sys.stderr)
            return 2
        if args.seeds:
            return _sweep(args)
        seed = args.seed if args.seed is not None else (scenario.seed if scenario else 1)
        opts = SimOptions(out=Path(args.out), npcs=args.npcs, minutes=args.minutes, seed=seed,
                          model=args.model, realtime=args.realtime, personas=args.personas,
                          progress=not args.quiet, scenario=scenario, ticks_per_step=tps)
        summary = run_sim(opts)
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"hamlet sim: {exc}", file=sys.stderr)
        return 2
    if "engine_error" in summary:
        print(f"hamlet sim: stopped at tick {summary['ticks']}: {summary['engine_error']} (what the run had is in "
              f"{args.out})", file=sys.stderr)
        return 1
    print(json.dumps({k: summary[k] for k in ("ticks", "conversations", "npc_conversations", "lines_spoken",
                                              "tokens", "wall_s", "stopped_early", "final_state_hash")}))
    if "experiment" in summary:
        from server.experiment import flat_measures
        print(json.dumps(flat_measures(summary["experiment"])))
    print(f"wrote {args.out}/transcript.md, summary.json, world.db, " + ", ".join(summary["plots"]))
    return 0


def _cluster(args: argparse.Namespace) -> int:
    """`hamlet sim --regions N` (server/cluster/sim_cluster.py)."""
    refused = [(args.ticks_per_step is not None, "--ticks-per-step: fast mode and pacing are not available across "
                "processes (each region ticks at 20 Hz on its own clock)"),
               (bool(args.scenario or args.seeds or args.ray), "--scenario, --seeds and --ray run in one process"),
               (args.npcs is not None, "--npcs: every NPC of the persona file runs (choose them with --personas)")]
    why = next((w for bad, w in refused if bad), None)
    if why is None and args.regions < 2:
        why = f"--regions {args.regions}: a cluster has at least 2 regions (one region is the plain `hamlet sim`)"
    if why is None and args.minutes <= 0:
        why = "--minutes must be positive"
    if why is not None:
        print(f"hamlet sim --regions: {why}", file=sys.stderr)
        return 2
    from agents.inference import engine_urls
    from server.cluster.sim_cluster import ClusterSimError, run_cluster_sim

    try:
        engine_urls(args.model or "none")  # a bad URL list is named here, not in every region's log
        summary = run_cluster_sim(Path(args.out), args.regions, args.minutes, model=args.model or "none",
                                  seed=1 if args.seed is None else args.seed, personas=args.personas,
                                  progress=not args.quiet)
    except (FileExistsError, ValueError) as exc:
        print(f"hamlet sim: {exc}", file=sys.stderr)
        return 2
    except (ClusterSimError, FileNotFoundError, RuntimeError, OSError) as exc:
        print(f"hamlet sim: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: summary[k] for k in ("regions_count", "npc_count", "exactly_once", "npc_handoffs",
                                              "conversations", "lines", "tokens", "wall_s", "stopped_early")}))
    for problem in summary["problems"] + ([summary["error"]] if summary["error"] else []):
        print(f"hamlet sim: {problem}", file=sys.stderr)
    print(f"wrote {args.out}/summary.json (region logs: {args.out}/rN.log)")
    return 0 if summary["exactly_once"] and not summary["error"] else 1


def _engine_refusal(model: str, ticks_per_step: int, realtime: bool) -> str | None:
    """Why a run cannot use `model` as asked (ValueError for a bad URL list), or None."""
    from agents.inference import engine_urls
    from server.sim_lockstep import is_remote_model, paced_refusal

    engine_urls(model)  # a bad URL list: ValueError naming it
    return paced_refusal(is_remote_model(model), model, ticks_per_step, realtime)


def _scenario(path: str):
    from agents.scenario import load_scenario
    from server.world.village import village
    return load_scenario(path, set(village().places))


def _sweep(args: argparse.Namespace) -> int:
    from server.sweep import parse_seeds, run_sweep

    _scenario(args.scenario)  # a bad file is reported once, here, not by every run
    record = run_sweep(args.scenario, parse_seeds(args.seeds), Path(args.out), model=args.model,
                       ticks_per_step=args.ticks_per_step, procs=args.procs, ray_address=args.ray,
                       progress=not args.quiet)
    print(json.dumps({k: v["mean"] for k, v in record["measures"].items()}))
    print(f"wrote {args.out}/sweep.json, sweep.md and seed-N/ for {len(record['finished'])} of "
          f"{len(record['seeds'])} seeds" + (" (stopped early)" if record["stopped_early"] else ""))
    return 0 if not record["failed"] else 1


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
