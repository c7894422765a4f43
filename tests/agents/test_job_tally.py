"""The minds' job statistics (agents/job_tally.py): totals of every job,
the latencies of the latest ones only."""
from __future__ import annotations

from agents.inference.api import GenerationResult, ScoreResult
from agents.job_tally import JobTally


def test_totals_count_every_job_and_latencies_keep_the_latest():
    tally = JobTally(max_latencies=3)
    for i in range(10):
        tally.add(1, "line", GenerationResult(f"line {i}", [1, 2], latency_s=i / 1000))
    tally.add(1, "line", GenerationResult("", [], status="timeout", latency_s=5.0))   # no latency: it failed
    tally.add(2, "choose", ScoreResult([-1.0, -2.0], latency_s=0.5))
    tally.add(1, "reply", GenerationResult("remote", [], completion_tokens=4))        # a remote engine's count
    assert tally.jobs == 13
    assert tally.by_status == {"line:ok": 10, "line:timeout": 1, "choose:ok": 1, "reply:ok": 1}
    assert tally.tokens == 24 and tally.token_ids == 20
    assert list(tally.latency_ms[1]) == [7.0, 8.0, 9.0]                              # the latest 3 only
    assert list(tally.latency_ms[2]) == [500.0]
