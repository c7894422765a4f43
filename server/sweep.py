"""Sweeps: one scenario over many seeds (`hamlet sim --scenario FILE --seeds
1-20`), each run in its own folder (DIR/seed-N), in parallel in a process
pool or, with `--ray ADDRESS`, as Ray tasks (the optional `sweeps` extra).
Writes one table across the seeds: the mean and 95% interval of every
measure (sweep.json, sweep.md). A progress line counts finished runs;
Ctrl-C cancels the runs not started and still writes the table of those
that finished."""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A sweep runs at most this many seeds: 1,000 runs of even a short scenario
# is days of CPU; past it a typo ("1-20000") is the likelier cause.
MAX_SEEDS = 1000
# Student's t for a two-sided 95% interval, by degrees of freedom (1..30);
# above 30 the normal 1.96 is within 2%.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


def parse_seeds(text: str) -> list[int]:
    """"1-20", "3,5,8" or "7" (and mixtures: "1-3,9") -> seeds in order, once each."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            rng = range(int(lo), int(hi) + 1) if sep else range(int(lo), int(lo) + 1)
        except ValueError:
            raise ValueError(f"--seeds: {part!r} is not a seed or a range like 1-20") from None
        if not rng:
            raise ValueError(f"--seeds: {part!r} is an empty range")
        seeds += [s for s in rng if s not in seeds]
        if len(seeds) > MAX_SEEDS:
            raise ValueError(f"--seeds: at most {MAX_SEEDS} seeds in one sweep")
    return seeds


def interval(values: list[float]) -> dict[str, float]:
    """Mean and 95% interval (Student's t) of one measure across seeds."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return {"n": n, "mean": mean, "lo": mean, "hi": mean}
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    half = t * statistics.stdev(values) / math.sqrt(n)
    return {"n": n, "mean": mean, "lo": mean - half, "hi": mean + half}


def table(rows: dict[int, dict[str, float]]) -> dict[str, dict[str, float]]:
    names = sorted({k for r in rows.values() for k in r})
    return {k: interval([r[k] for r in rows.values() if k in r]) for k in names}


def run_one(scenario_path: str, seed: int, out: str, model: str, ticks_per_step: int | None) -> dict[str, float]:
    """One seed's run (in a worker process or a Ray task): its flat measures."""
    from agents.scenario import load_scenario
    from server.experiment import flat_measures
    from server.sim import SimOptions, run_sim
    from server.world.village import village

    import torch
    torch.set_num_threads(1)  # the pool's processes share the cores: one thread each
    scenario = load_scenario(scenario_path, set(village().places))
    opts = SimOptions(out=Path(out), seed=seed, model=model, progress=False, scenario=scenario,
                      ticks_per_step=scenario.ticks_per_step if ticks_per_step is None else ticks_per_step)
    summary = run_sim(opts)
    return flat_measures(summary["experiment"])


RunFn = Callable[[str, int, str, str, "int | None"], dict[str, float]]


def run_sweep(scenario_path: str, seeds: list[int], out: Path, *, model: str = "embedded",
              ticks_per_step: int | None = None, procs: int | None = None, ray_address: str | None = None,
              progress: bool = True, run: RunFn = run_one) -> dict[str, Any]:
    """Run every seed, then write sweep.json and sweep.md; returns the sweep's record."""
    out.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        if (out / f"seed-{s}" / "world.db").exists():
            raise FileExistsError(f"{out}/seed-{s} already holds a run: choose an empty --out directory")
    jobs = {s: (scenario_path, s, str(out / f"seed-{s}"), model, ticks_per_step) for s in seeds}
    rows: dict[int, dict[str, float]] = {}
    failed: dict[int, str] = {}
    bar = _Bar(len(seeds)) if progress else None
    started = time.monotonic()
    stopped = False
    try:
        if ray_address:
            _on_ray(ray_address, jobs, run, rows, failed, bar)
        else:
            _in_pool(procs or min(len(seeds), os.cpu_count() or 1), jobs, run, rows, failed, bar)
    except KeyboardInterrupt:
        stopped = True
    record = {"scenario": scenario_path, "seeds": seeds, "finished": sorted(rows), "failed": failed,
              "stopped_early": stopped, "wall_s": round(time.monotonic() - started, 1),
              "measures": table(rows), "runs": {str(s): rows[s] for s in sorted(rows)}}
    (out / "sweep.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (out / "sweep.md").write_text(markdown(record), encoding="utf-8")
    return record


def _in_pool(procs: int, jobs: dict, run: RunFn, rows: dict, failed: dict, bar: _Bar | None) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: torch and the engine's threads do not survive a fork
    pool = ProcessPoolExecutor(max_workers=procs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(run, *args): seed for seed, args in jobs.items()}
        for fut in as_completed(futures):
            _done(futures[fut], fut.result, rows, failed, bar)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _on_ray(address: str, jobs: dict, run: RunFn, rows: dict, failed: dict, bar: _Bar | None) -> None:
    import ray  # the optional `sweeps` extra

    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, ignore_reinit_error=True,
                 include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(run)
    refs = {task.remote(*args): seed for seed, args in jobs.items()}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            _done(refs[ready[0]], lambda: ray.get(ready[0]), rows, failed, bar)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _done(seed: int, result: Callable[[], dict], rows: dict, failed: dict, bar: _Bar | None) -> None:
    try:
        rows[seed] = result()
    except Exception as exc:  # one failed run is reported, the sweep goes on
        failed[seed] = f"{type(exc).__name__}: {exc}"
    if bar is not None:
        bar.show(len(rows) + len(failed), len(failed))


class _Bar:
    def __init__(self, total: int) -> None:
        self.total, self.started = total, time.monotonic()

    def show(self, done: int, failed: int) -> None:
        width = 30
        filled = int(width * done / max(1, self.total))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} runs"
                         f"{f' ({failed} failed)' if failed else ''}  {time.monotonic() - self.started:7.0f} s")
        if done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def markdown(record: dict[str, Any]) -> str:
    lines = [f"# Sweep of {record['scenario']}", "",
             f"{len(record['finished'])} of {len(record['seeds'])} seeds finished"
             + (" (stopped early)" if record["stopped_early"] else "")
             + (f"; failed: {', '.join(map(str, record['failed']))}" if record["failed"] else "") + ".", "",
             "| measure | n | mean | 95% interval |", "|---|---|---|---|"]
    for name, v in record["measures"].items():
        lines.append(f"| {name} | {v['n']} | {v['mean']:.4g} | {v['lo']:.4g} .. {v['hi']:.4g} |")
    return "\n".join(lines) + "\n"
