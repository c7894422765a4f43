"""`hamlet cluster`: nats-server (unless --nats names one), the llm-workers
the regions share (shared_engine.py), one `hamlet region` process per
region (two with --standbys: whichever holds the lease owns the region, the
other waits to take it over) and a gateway on this machine, in one command;
a region, gateway or worker that dies is started again, and Ctrl-C stops
them all. Its arguments are registered in commands.py."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def run_cluster(args: argparse.Namespace) -> int:
    from server.cluster import shared_engine
    from server.cluster.natsd import NatsServer
    from server.cluster.parent_death import die_with_parent
    from server.serve_cmd import where_to_connect

    os.makedirs(args.data, exist_ok=True)
    nats = None
    url = args.nats
    if url is None:
        try:
            nats = NatsServer(os.path.join(args.data, "nats")).start()
        except (FileNotFoundError, RuntimeError) as exc:
            print(f"hamlet cluster: {exc}", file=sys.stderr)
            return 1
        url = nats.url
    print(f"NATS at {url}; {args.regions} regions of world {args.world!r}, data in {args.data} (Ctrl-C to stop)",
          flush=True)
    workers: list[subprocess.Popen] = []
    model = args.model
    if args.npcs and shared_engine.runs_here(args.model):
        try:
            workers = shared_engine.start_workers(args.llm_workers, url, args.world, args.model)
        except (ValueError, RuntimeError) as exc:
            print(f"hamlet cluster: {exc}", file=sys.stderr)
            if nats is not None:
                nats.stop()
            return 1
        model = shared_engine.region_model(args.model, url, args.world)
        print(f"NPCs' model {args.model!r}: {len(workers)} llm-worker(s) shared by the regions ({model})",
              flush=True)

    copies = 2 if args.standbys else 1

    def spawn(k: int) -> subprocess.Popen:
        # process k runs region k // copies; a standby with --replicate keeps a
        # database of its own (followed from JetStream), else both share the
        # region's file (a standby opens it only once it holds the lease)
        i, second = divmod(k, copies)
        db = f"r{i}-b.db" if second and args.replicate else f"r{i}.db"
        return subprocess.Popen([sys.executable, "-m", "server.cli", "region", "--nats", url, "--world", args.world,
                                 "--region", f"r{i}", "--regions", str(args.regions), "--walkers", str(args.walkers),
                                 "--db", os.path.join(args.data, db), "--model", model,
                                 *(["--npcs"] if args.npcs else []), *(["--replicate"] if args.replicate else [])],
                                preexec_fn=die_with_parent())  # a kill -9 of us: SIGTERM to them

    def spawn_gateway() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "server.cli", "gateway", "--nats", url, "--world", args.world,
                                 "--regions", str(args.regions), "--host", args.host, "--port", str(args.port)],
                                stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent())

    procs = [spawn(k) for k in range(args.regions * copies)]
    gateway = spawn_gateway()
    line = gateway.stdout.readline()  # its first line says where it listens
    try:
        print(f"Hamlet is running. {where_to_connect(args.host, json.loads(line)['port'])}", flush=True)
    except (ValueError, KeyError):
        print(f"hamlet cluster: the gateway did not start: {line.strip()}", file=sys.stderr)
    stopping = False

    def on_signal(*_):
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopping:
            time.sleep(0.5)
            for k, p in enumerate(procs):
                if p.poll() is not None and not stopping:
                    print(f"region r{k // copies} exited with {p.returncode} (pid {p.pid}); starting it again",
                          flush=True)
                    procs[k] = spawn(k)
            if gateway.poll() is not None and not stopping:
                print(f"the gateway exited with {gateway.returncode}; starting it again", flush=True)
                gateway = spawn_gateway()
                gateway.stdout.readline()
            for i, w in enumerate(workers):
                if w.poll() is not None and not stopping:
                    print(f"llm-worker {i} exited with {w.returncode}; starting it again", flush=True)
                    try:
                        workers[i] = shared_engine.start_workers(1, url, args.world, args.model)[0]
                    except RuntimeError as exc:  # tried again in half a second; the NPCs fall back meanwhile
                        print(f"hamlet cluster: {exc}", file=sys.stderr)
    finally:
        for p in [*procs, gateway]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*procs, gateway]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shared_engine.stop_workers(workers)
        if nats is not None:
            nats.stop()
    print("cluster stopped", flush=True)
    return 0
