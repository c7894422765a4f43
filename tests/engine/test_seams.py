"""The typed seams: every concrete model satisfies its Protocol (at run time
here; the typed assignments below are also what mypy checks), events are
small picklable dataclasses, and the shared step loop honours a device that
is not ready yet (the CUDA runner's hook), without a GPU."""
from __future__ import annotations

import pickle

from agents.embeddings import ProcessEmbedder, QueryTicket
from agents.inference.api import (LLM, Embedder, EmbeddingTicket, GenerationResult, Handle, ScoreResult,
                                  Steppable)
from agents.inference.backend import Backend, Device, DirectBackend, Stepper
from agents.inference.client import EngineClient
from agents.inference.handle import JobHandle
from agents.inference.jobs import Done, GenerateRequest, Piece, failed
from agents.inference.remote import RemoteLLM
from agents.inference.runners import ProcessBackend, ThreadBackend


# -- what mypy checks: each concrete type assigned to its Protocol -------------------
def _engine_client(c: EngineClient) -> Steppable:
    return c


def _remote(r: RemoteLLM) -> LLM:
    return r


def _handle(h: JobHandle[GenerationResult]) -> Handle[GenerationResult]:
    return h


def _embedder(e: ProcessEmbedder) -> Embedder:
    return e


def _ticket(t: QueryTicket) -> EmbeddingTicket:
    return t


def _backends(a: DirectBackend, b: ThreadBackend, c: ProcessBackend) -> list[Backend]:
    return [a, b, c]


# -- the same at run time ------------------------------------------------------------
def test_the_remote_backend_is_an_llm_that_runs_remotely():
    remote = RemoteLLM("http://127.0.0.1:9")          # nothing listens; nothing is sent
    try:
        assert isinstance(remote, LLM) and remote.runs_in == "remote"
        handle = remote.score("a", ["b"])
        assert isinstance(handle, Handle) and isinstance(handle.job_id, int)
    finally:
        remote.close()
    assert handle.done() and handle.result().status == "cancelled"     # close() finishes what is in flight
    assert remote.generate("a").result().status == "error"           # and refuses what comes after


def test_handles_tickets_and_the_embedder_satisfy_their_protocols():
    h: JobHandle[ScoreResult] = JobHandle(1, "score")
    assert isinstance(h, Handle) and not h.done()
    h._finish(failed("score", "cancelled", None))
    assert h.done() and h.result().status == "cancelled" and not h.cancel()
    assert isinstance(QueryTicket("x"), EmbeddingTicket)
    assert isinstance(object.__new__(ProcessEmbedder), Embedder)   # the class's shape; no worker started


class _ScriptedEngine:
    """A stand-in engine whose steps yield sync points (as on CUDA)."""

    def __init__(self, syncs_per_step: int, steps: int):
        self.syncs, self.steps_left, self.interrupt = syncs_per_step, steps, None
        self.submitted: list = []

    def submit(self, req):
        self.submitted.append(req)
        return [] if len(self.submitted) == 1 else [Done(req.job_id, failed("generate", "overloaded", "full"))]

    def cancel(self, job_id):
        pass

    def has_work(self):
        return self.steps_left > 0

    def step_iter(self):
        for i in range(self.syncs):
            yield f"step{self.steps_left}.{i}"
        self.steps_left -= 1

    def take_events(self):
        return [Piece(1, "x")]

    def step(self):
        for _ in self.step_iter():
            pass
        return self.take_events()

    def stats(self):
        return {"steps_left": self.steps_left}


class _SlowDevice(Device):
    """Each sync point is reached only on the second look."""

    def __init__(self):
        self.looked: set = set()
        self.waited: list = []

    def ready(self, sync):
        if sync in self.looked:
            return True
        self.looked.add(sync)
        return False

    def wait(self, sync):
        self.waited.append(sync)
        self.looked.add(sync)


def test_the_shared_step_loop_never_waits_on_a_device_that_is_not_ready():
    engine, device, delivered = _ScriptedEngine(syncs_per_step=2, steps=2), _SlowDevice(), []
    backend = DirectBackend(engine, device)
    backend.attach(lambda events, stats: delivered.append((events, stats)))
    assert isinstance(backend, Backend) and backend.runs_in == "inline"
    polls = 0
    while backend.step():
        polls += 1
        assert polls < 50
    # per step: start (yield .0), not ready, resume (yield .1), not ready, resume (done)
    assert polls == 9 and engine.steps_left == 0
    assert delivered == [([Piece(1, "x")], {"steps_left": 1}), ([Piece(1, "x")], {"steps_left": 0})]
    # run() waits instead, and delivers a whole step
    engine.steps_left, delivered[:] = 1, []
    device = _SlowDevice()
    Stepper(engine, device).run(lambda events, stats: delivered.append(events))
    assert device.waited == ["step1.0", "step1.1"] and delivered == [[Piece(1, "x")]]


def test_a_refused_submit_is_delivered_at_once_and_events_pickle():
    engine, delivered = _ScriptedEngine(0, 0), []
    backend = DirectBackend(engine)
    backend.attach(lambda events, stats: delivered.extend(events))
    req = GenerateRequest(5, "hi")
    assert backend.submit(req) and backend.submit(GenerateRequest(6, "hi")) and delivered[0].job_id == 6
    assert req.kind == "generate"
    events = [Piece(5, "he"), Done(5, GenerationResult("hello", [1, 2]))]
    assert pickle.loads(pickle.dumps(events)) == events        # the worker process sends them
