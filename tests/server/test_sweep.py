"""Sweeps (server/sweep.py): seeds parsed, runs fanned out to a process pool
and to a local Ray runtime, one table of mean and 95% interval per measure,
a failed run reported without stopping the others. The runs here are a
stand-in function (no model, no world): what is tested is the fan-out and
the table."""
from __future__ import annotations

import json
import statistics

import pytest

from server.sweep import interval, parse_seeds, run_sweep


def stand_in_run(scenario: str, seed: int, out: str, model: str, tps) -> dict[str, float]:
    if seed == 13:
        raise RuntimeError("unlucky seed")
    return {"knew_share.feast": seed / 10, "density_after": 0.5}


def test_seed_lists_and_ranges_parse_and_bad_ones_are_refused():
    assert parse_seeds("1-3,7,2") == [1, 2, 3, 7]
    for bad in ("x", "5-1", "1-5000"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_the_interval_is_the_t_interval_of_the_mean():
    v = interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182 * statistics.stdev([1, 2, 3, 4]) / 2
    assert v["mean"] == 2.5 and v["lo"] == pytest.approx(2.5 - half) and v["hi"] == pytest.approx(2.5 + half)
    assert interval([0.3]) == {"n": 1, "mean": 0.3, "lo": 0.3, "hi": 0.3}


def test_a_sweep_in_a_process_pool_writes_one_table_and_reports_a_failed_seed(tmp_path):
    rec = run_sweep("s.toml", [1, 2, 3, 13], tmp_path, procs=2, progress=False, run=stand_in_run)
    assert rec["finished"] == [1, 2, 3] and "unlucky seed" in rec["failed"][13]
    assert rec["measures"]["knew_share.feast"]["mean"] == pytest.approx(0.2)
    assert rec["measures"]["density_after"]["lo"] == pytest.approx(0.5)
    assert json.loads((tmp_path / "sweep.json").read_text())["runs"]["2"]["knew_share.feast"] == 0.2
    assert "| knew_share.feast | 3 | 0.2 |" in (tmp_path / "sweep.md").read_text()


def test_a_sweep_on_a_local_ray_runtime(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # small and bounded
    try:
        rec = run_sweep("s.toml", [4, 5], tmp_path, ray_address="local", progress=False, run=stand_in_run)
    finally:
        ray.shutdown()
    assert rec["finished"] == [4, 5] and rec["measures"]["knew_share.feast"]["mean"] == pytest.approx(0.45)
