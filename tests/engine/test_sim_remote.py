"""`hamlet sim` with a remote engine: a real `hamlet llm-serve` (two, for a
pool) on 127.0.0.1 serving the embedded model; the sim waits for each
tick's jobs (server/sim_lockstep.py) instead of stepping an engine it does
not have. A dead engine stops the run with a message; a paced run on a
remote engine is refused before anything is written."""
from __future__ import annotations

import asyncio
import json

import pytest

from agents.budget import MindBudget
from agents.inference import client_for
from agents.inference.api import GenerationResult
from agents.inference.serve import LLMServer
from server.cli import main
from server.sim import SimOptions, run_sim
from server.sim_lockstep import Lockstep
from tests.engine.test_pool import dead_url


# Three friends on the square. Mira's eight seed memories (importance 5
# each) make a reflection due at once: a generation in the first ticks,
# whatever the model's choices.
PERSONAS = """
[[npc]]
name = "Mira"
occupation = "village guide"
home = "house 3"
workplace = "square"
summary = "Mira greets newcomers at the square."
routine = [[0, "square", "chatting with friends"]]
relationships = { Tomas = "old friend", Elena = "friend" }
memories = ["The market opens at eight.", "The smithy is south-east of the square.", "Tomas tells stories.",
            "The pond freezes in winter.", "Bread comes from the bakery.", "The chapel bell rings at noon.",
            "Elena teaches at the school.", "The well is by the square."]

[[npc]]
name = "Tomas"
occupation = "tavern keeper"
home = "house 3"
workplace = "square"
summary = "Tomas tells stories."
routine = [[0, "square", "chatting with friends"]]
relationships = { Mira = "trusted friend" }

[[npc]]
name = "Elena"
occupation = "teacher"
home = "house 3"
workplace = "square"
summary = "Elena teaches at the school."
routine = [[0, "square", "chatting with friends"]]
relationships = { Mira = "friend" }
"""
# Short lines, short talks: the test is about the waiting, not the words.
BUDGET = MindBudget(line_tokens=6, max_lines=2, line_sentences=1, reflect_tokens=8)


@pytest.fixture
async def served(loaded):
    """Two llm-serve instances over one engine on its own thread."""
    local = client_for(loaded, runner="thread", max_batch=8, max_queue=64)
    servers = [LLMServer(local, host="127.0.0.1", port=0, model_name="embedded") for _ in range(2)]
    urls = [f"http://{h}:{p}" for h, p in [await s.start() for s in servers]]
    yield urls
    for s in servers:
        await s.close()
    local.close()


@pytest.mark.model
@pytest.mark.parametrize("how", ["one", "pool"])
async def test_a_fast_sim_waits_for_a_remote_engine(served, tmp_path, how):
    model = served[0] if how == "one" else ",".join(served)
    out = tmp_path / "run"
    personas = tmp_path / "three.toml"
    personas.write_text(PERSONAS)
    opts = SimOptions(out=out, npcs=3, minutes=1, seed=1, model=model, progress=False, embeddings=False,
                      personas=str(personas), budget=BUDGET)
    summary = await asyncio.wait_for(asyncio.to_thread(run_sim, opts), 240)
    assert summary["jobs"].get("reflect:ok") == 1, summary["jobs"]
    assert summary["ticks"] == 120 and not summary["stopped_early"] and "engine_error" not in summary
    assert summary["tokens"] > 0, summary["jobs"]
    assert summary["jobs"] and all(k.endswith(":ok") for k in summary["jobs"]), summary["jobs"]
    assert summary["model"]["runner"] == "remote"
    if how == "pool":
        assert summary["model"]["outstanding"] == 0
    recorded = json.loads((out / "summary.json").read_text())
    assert recorded["tokens"] == summary["tokens"] and recorded["mode"] == "fast"


def test_lockstep_counts_a_remote_generations_tokens_from_its_result():
    class Done:
        def __init__(self, kind, result):
            self.kind, self._result = kind, result

        def result(self):
            return self._result

        def add_done_callback(self, fn):
            fn(self)

    class Engine:
        def __init__(self, result):
            self.result = result

        def generate(self, *a, **kw):
            return Done("generate", self.result)

    remote = Lockstep(Engine(GenerationResult("Hello there.", [], completion_tokens=4)))
    remote.generate("Hi")
    remote.generate("Hi")
    assert remote.take_streamed_tokens() == 8 and remote.take_streamed_tokens() == 0 and remote.pending == 0
    # the embedded engine's results carry token ids, which the sim counts itself
    local = Lockstep(Engine(GenerationResult("Hello there.", [1, 2, 3])))
    local.generate("Hi")
    assert local.take_streamed_tokens() == 0


def test_an_unreachable_engine_stops_the_sim_with_a_message(tmp_path, capsys):
    out = tmp_path / "run"
    personas = tmp_path / "three.toml"
    personas.write_text(PERSONAS)
    code = main(["sim", "--npcs", "3", "--minutes", "30", "--out", str(out), "--model", dead_url(), "--quiet",
                 "--personas", str(personas)])
    err = capsys.readouterr().err
    assert code == 1
    assert "stopped at tick" in err and "cannot be reached" in err and "127.0.0.1" in err, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_early"] and "unreachable" in summary["engine_error"]
    assert summary["ticks"] < 30 * 120      # it did not run on without its model


def test_a_paced_run_on_a_remote_engine_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["sim", "--npcs", "2", "--minutes", "1", "--out", str(out), "--model", dead_url(),
                 "--ticks-per-step", "2", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--ticks-per-step 2" in err and "--ticks-per-step 0" in err and "--realtime" in err, err
    assert not out.exists()
    with pytest.raises(ValueError, match="steps on its own"):
        run_sim(SimOptions(out=out, npcs=2, minutes=1, model=dead_url(), ticks_per_step=1))
    assert not out.exists()
    with pytest.raises(ValueError, match="steps on its own"):   # a NATS queue group of workers is remote too
        run_sim(SimOptions(out=out, npcs=2, minutes=1, model="nats://127.0.0.1:9/w", ticks_per_step=1))
    assert not out.exists()
    assert main(["sim", "--out", str(out), "--model", "http://127.0.0.1:9,ftp://x"]) == 2
    assert "ftp://x" in capsys.readouterr().err and not out.exists()
