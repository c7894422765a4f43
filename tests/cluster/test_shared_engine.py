"""A local cluster's regions share llm-workers for a model run on this
machine (server/cluster/shared_engine.py): which models run here and what
the regions are given; a started worker (at the workers' nice value) serves
that model string with the real embedded model; a worker that cannot start
is reported. (`hamlet sim --regions 2 --model embedded` over them takes ~50 s
here, too long for the suite: run by hand, see README.)"""
from __future__ import annotations

import time

import pytest

from agents.inference import load_llm
from server.cluster import shared_engine


def test_which_models_run_here_and_what_the_regions_get():
    assert shared_engine.runs_here("embedded") and shared_engine.runs_here("/models/smol")
    for model in ("none", "None", "http://gpu1:8000", "http://a:1,http://b:2", "nats://h:4222/w"):
        assert not shared_engine.runs_here(model)
        assert shared_engine.region_model(model, "nats://127.0.0.1:4222", "sim") == model
    assert shared_engine.region_model("embedded", "nats://127.0.0.1:4222", "sim") == "nats://127.0.0.1:4222/sim"


def test_a_worker_that_cannot_start_is_reported_and_stopped(nats_server):
    with pytest.raises(RuntimeError, match="did not start: hamlet llm-worker: --model 'x://y'"):
        shared_engine.start_workers(1, nats_server.url, "w", "x://y", ready_s=60)   # refused before any model
    with pytest.raises(ValueError):
        shared_engine.start_workers(0, nats_server.url, "w", "embedded")


def nice_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])   # field 19: nice


def test_a_started_worker_serves_what_the_regions_are_given(nats_server):
    workers = shared_engine.start_workers(1, nats_server.url, "w", "embedded",    # returns once it serves
                                          options=("--runner", "thread", "--dtype", "float32", "--threads", "1"))
    llm = None
    try:
        assert nice_of(workers[0].pid) == shared_engine.WORKER_NICE   # the regions' ticks come first
        llm = load_llm(shared_engine.region_model("embedded", nats_server.url, "w"))
        h = llm.score("The sky is", [" blue", " green"])
        deadline = time.monotonic() + 30
        while not h.done():
            assert time.monotonic() < deadline, "the worker did not answer"
            time.sleep(0.01)
        assert h.result().ok and h.result().best() == 0                 # the real model: the sky is blue
    finally:
        if llm is not None:
            llm.close()
        shared_engine.stop_workers(workers)
    assert workers[0].poll() is not None
