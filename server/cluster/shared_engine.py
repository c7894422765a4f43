"""One model for a local cluster's regions. `hamlet cluster` and `hamlet
sim --regions` with a model that runs on this machine (`embedded`, or a
model folder) start `hamlet llm-worker`s on the cluster's own NATS and give
every region `--model nats://HOST:PORT/<world>`, rather than loading the
model in each region process: one engine batches every region's NPC lines
(a batch of many rows costs little more than one row here), the weights sit
in memory once, and the regions' ticks keep the cores first (the workers
run at nice WORKER_NICE, as `hamlet serve`'s model worker does). URLs
(`http(s)://` llm-serve or vLLM, `nats://` workers of your own) and `none`
go to the regions as given.

Owns: telling which models run here (`runs_here`), the regions' model
string, and starting the workers (each waited for until it serves, so no
NPC line of the first minutes falls back for want of an engine).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from server.cluster.parent_death import die_with_parent

# The workers' nice value: below the regions' ticks, which a NPC line may
# wait for but a player's step must not (the same as ServerConfig.llm_nice).
WORKER_NICE = 15
# How long a worker may take to load its model and join NATS: the embedded
# model's first conversion takes ~20 s on a 2-core machine, later loads ~1 s.
READY_S = 180.0
# Workers one command may start: more than the cores of any one machine
# would only compete for them.
MAX_WORKERS = 16


def runs_here(model: str) -> bool:
    """Whether `model` is loaded on this machine (not none, not a URL)."""
    m = model.strip()
    return m.lower() != "none" and "://" not in m


def region_model(model: str, nats_url: str, world: str) -> str:
    """What the regions get for `model`: the shared workers' queue group
    when the model runs here, else `model` unchanged."""
    return f"{nats_url.rstrip('/')}/{world}" if runs_here(model) else model


def _preexec() -> Callable[[], None]:
    """What the worker runs before its exec: made here, in the parent
    (die_with_parent notes who the parent is)."""
    die = die_with_parent()  # a kill -9 of the cluster takes the workers with it

    def in_child() -> None:
        os.nice(WORKER_NICE)
        if die is not None:
            die()
    return in_child


def start_workers(count: int, nats_url: str, world: str, model: str, stderr: IO | None = None,
                  ready_s: float = READY_S, options: Sequence[str] = ()) -> list[subprocess.Popen]:
    """Start `count` workers serving `model` to `world` (`options`: more of
    `hamlet llm-worker`'s, e.g. --runner) and wait until each serves (its
    first line); RuntimeError (the started ones stopped) if one exits or is
    not ready within `ready_s`."""
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"--llm-workers {count}: 1 to {MAX_WORKERS}")
    procs: list[subprocess.Popen] = []
    try:
        for i in range(count):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "server.cli", "llm-worker", "--nats", nats_url, "--world", world,
                 "--model", model, "--name", f"{world}-engine-{i}", *options],
                stdout=subprocess.PIPE, stderr=stderr, text=True, preexec_fn=_preexec()))
        for p in procs:
            _wait_ready(p, ready_s)
    except BaseException:
        stop_workers(procs)
        raise
    return procs


def _wait_ready(p: subprocess.Popen, ready_s: float) -> None:
    lines: list[str] = []
    got = threading.Event()

    def read() -> None:
        for line in p.stdout:  # the ready line, then anything else it prints (drained, never blocking it)
            if not got.is_set():
                lines.append(line)
                got.set()
    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + ready_s
    while not got.wait(0.2):
        if p.poll() is not None or time.monotonic() > deadline:
            why = f"exited with {p.returncode}" if p.poll() is not None else f"not serving after {ready_s:g} s"
            raise RuntimeError(f"the NPCs' llm-worker {why} (its log says why)")
    if "serving" not in lines[0]:
        raise RuntimeError(f"the NPCs' llm-worker did not start: {lines[0].strip()[:200]}")


def stop_workers(procs: list[subprocess.Popen], wait_s: float = 15.0) -> None:
    """SIGTERM (a worker finishes the jobs it holds), then kill what is left."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
