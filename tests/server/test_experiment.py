"""A scenario run end to end (server/experiment.py, agents/scenario_script.py):
the seeded fact arrives as logged inputs (a visitor joins, tells the NPC,
leaves), the measures and plots are written, `hamlet replay` reproduces the
run without the model, and `hamlet interview` reads a finished run without
changing it. The plumbing tests drive the minds with the FAKE model
(tests/agents/fake_llm.py); the test marked `model` runs the real one."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from agents.scenario import SHIPPED, load_scenario
from server.world.village import village
from tests.agents.fake_llm import FakeLLM

PLACES = set(village().places)


class SteppedFakeLLM(FakeLLM):
    """The FAKE model with the inline engine's step() (nothing to step)."""

    def step(self) -> bool:
        return False

    def info(self) -> dict:
        return {"model": "fake"}


def _party(days: float, npcs: int):
    sc = load_scenario(SHIPPED / "party.toml", PLACES)
    return dataclasses.replace(sc, days=days, personas=sc.personas[:npcs])


def test_a_scenario_seeds_its_fact_through_logged_inputs_and_replays(tmp_path):
    from server.sim import SimOptions, replay, run_sim
    from server.persistence import Database

    out = tmp_path / "run"
    summary = run_sim(SimOptions(out=out, seed=3, progress=False, embeddings=False, scenario=_party(0.12, 6),
                                 ticks_per_step=1), llm=SteppedFakeLLM())
    db = Database(str(out / "world.db"))
    kinds = [(kind, data) for _, kind, data in db.events_after(0)]
    db.close()
    joins = [d for k, d in kinds if k == "join" and not d["npc"]]
    assert [d["name"] for d in joins] == ["Messenger"]
    said = [d for k, d in kinds if k == "say" and d["entity"] == joins[0]["entity"]]
    assert len(said) == 1 and "harvest feast" in said[0]["text"]
    assert any(k == "leave" and d["entity"] == joins[0]["entity"] for k, d in kinds)
    exp = json.loads((out / "experiment.json").read_text())
    feast = exp["facts"]["feast"]
    assert feast["knew_memory"] >= 1 and feast["told"] == ["Tomas"]
    assert feast["timeline"][0][1] == 0 and feast["timeline"][-1][1] == feast["knew_memory"]
    assert exp["seeded"][0]["to"] == "Tomas" and exp["seeded"][0]["minute"] == 630
    assert exp["interview_answers"] == 6 and 0.0 <= exp["hallucination_rate"] <= 1.0
    assert 0 < exp["density_before"] <= exp["density_after"] <= 1
    assert summary["experiment"]["game_to_wall"] > 0 and "experiment.png" in summary["plots"]
    assert set(summary["board"]) >= {"quests_posted", "quests_completed", "notices_pinned", "notices_withheld"}
    assert summary["lessons"] == {"learners": 0, "answers_right": 0, "answers_wrong": 0}
    assert (out / "experiment.png").stat().st_size > 1000
    assert json.loads((out / "population.json").read_text())[1]["name"] == "Tomas"
    ok, want, got = replay(out)
    assert ok and want == got


def test_interview_reads_a_finished_run_without_changing_it(tmp_path):
    from server.interview_cmd import interview, load_npc
    from server.sim import SimOptions, run_sim

    out = tmp_path / "run"
    run_sim(SimOptions(out=out, seed=1, progress=False, embeddings=False, scenario=_party(0.11, 3)),
            llm=SteppedFakeLLM())
    before = hashlib.sha256((out / "world.db").read_bytes()).hexdigest()
    persona, stream, now = load_npc(out, "tomas")
    assert persona.name == "Tomas" and any("harvest feast" in m.text for m in stream.memories)
    assert now == pytest.approx(8 * 60 + 0.11 * 1440, abs=0.1)
    llm = SteppedFakeLLM(prefer="harvest feast")  # the FAKE model's score prefers the answer that tells of it
    got = interview(out, "Tomas", "What is happening at the tavern?", llm)
    assert "harvest feast" in got["answer"] and "harvest feast" in got["source"] and got["status"] == "ok"
    assert got["source"] in got["recalled"] and "What is happening at the tavern?" in llm.prompts[-1][0]
    assert hashlib.sha256((out / "world.db").read_bytes()).hexdigest() == before
    with pytest.raises(ValueError, match="no NPC named 'Nobody'"):
        load_npc(out, "Nobody")


SMALL = """days = 0.004
ticks_per_step = 0
[population]
npcs = 3
[[fact]]
id = "feast"
text = "Tomas holds a harvest feast at the tavern at 18:00 on day 1."
keywords = ["feast"]
tell = ["Tomas"]
at = "day 0 08:01"
question = "Is anything special happening in the village soon?"
"""


@pytest.mark.model
def test_a_small_scenario_with_the_real_model_interviews_and_replays(tmp_path, embedded_model):
    from agents.inference import client_for
    from server.sim import SimOptions, replay, run_sim

    (tmp_path / "small.toml").write_text(SMALL)
    sc = load_scenario(tmp_path / "small.toml", PLACES)
    out = tmp_path / "run"
    llm = client_for(embedded_model, runner="inline")
    try:
        summary = run_sim(SimOptions(out=out, seed=1, progress=False, scenario=sc), llm=llm)
    finally:
        llm.close()
    exp = summary["experiment"]
    answers = json.loads((out / "interviews.json").read_text())["answers"]
    assert set(answers) == {"Mira", "Tomas", "Elena"}
    assert all(a["feast"]["answer"] for a in answers.values())  # the model answered each
    assert answers["Tomas"]["feast"]["supported"]  # he was told: his memories hold it
    # an answer is one made from a memory (its source) or "not heard"
    assert all(a["feast"]["source"] or a["feast"]["answer"].startswith("I have not heard") for a in answers.values())
    assert exp["interview_answers"] == 3 and exp["hallucination_rate"] is not None
    ok, _, _ = replay(out)
    assert ok


class InterruptedFakeLLM(SteppedFakeLLM):
    """The FAKE model; its 500th step is where Ctrl-C lands."""

    steps = 0

    def step(self) -> bool:
        self.steps += 1
        if self.steps == 500:
            raise KeyboardInterrupt
        return False


def test_ctrl_c_stops_a_scenario_run_and_it_still_writes_what_it_has(tmp_path):
    from server.sim import SimOptions, replay, run_sim

    out = tmp_path / "run"
    summary = run_sim(SimOptions(out=out, seed=1, progress=False, embeddings=False, scenario=_party(0.5, 3),
                                 ticks_per_step=1), llm=InterruptedFakeLLM())
    assert summary["stopped_early"] and summary["ticks"] == 500
    assert summary["experiment"]["stopped_early"] and not (out / "interviews.json").exists()
    assert json.loads((out / "summary.json").read_text())["stopped_early"]
    assert (out / "experiment.json").exists() and (out / "transcript.md").exists()
    assert replay(out)[0]
