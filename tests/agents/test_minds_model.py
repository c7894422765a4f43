"""NPC minds with the REAL embedded model: scored action choice, a person's
greeting answered over a real socket, and a short headless simulation that
replays to the same final state."""
from __future__ import annotations

import asyncio
import json

import pytest

from agents import prompts
from agents.minds import _best_normalised
from agents.personas import load_personas
from client_demo.client import HamletClient
from tests.waiting import until

pytestmark = pytest.mark.model

MIRA = next(p for p in load_personas() if p.name == "Mira")


@pytest.fixture(scope="module")
def llm(embedded_model):
    from agents.inference import client_for
    model = client_for(embedded_model, runner="thread")
    yield model
    model.close()


async def test_scored_choice_prefers_the_sensible_action(llm):
    prompt = prompts.choice_prompt(MIRA, "day 0 09:00", "welcoming visitors",
                                   "A lost traveller asks Mira the way to the market.")
    handle = llm.score(prompt, [" show the traveller the way to the market.",
                                " eat a rock and bark at the moon."])
    result = await asyncio.wait_for(handle, 120)
    assert result.ok
    assert _best_normalised(result) == 0


async def test_a_person_greets_an_npc_and_gets_a_clean_reply(start_server, llm):
    server = await start_server(llm=llm, npcs=True, model="embedded", tick_rate=20.0, ticks_per_tile=4)
    c = await HamletClient.connect(server.url)
    await c.join("Ann")
    await until(lambda: c.find("Mira") is not None, what="Mira at the square")
    mira = c.find("Mira")
    await c.say("Hello Mira! Where can I buy bread?", to=mira.id)
    reply = await c.wait_for(lambda m: m.type == "event" and m.data["kind"] == "say"
                             and m.data["from"] == mira.id, timeout=120)
    text = reply.data["text"]
    assert text.strip() and text == text.strip()
    assert "<|" not in text and "\n" not in text
    assert not text.lower().startswith("mira:")
    assert reply.data["to"] == c.entity
    await c.close()


def test_headless_sim_has_an_npc_conversation_and_replays(tmp_path, embedded_model):
    from agents.inference import client_for
    from server.sim import SimOptions, replay, run_sim

    out = tmp_path / "run"
    inline = client_for(embedded_model, runner="inline")  # the sim steps the engine after each tick
    try:
        summary = run_sim(SimOptions(out=out, npcs=8, minutes=2, seed=1, progress=False), llm=inline)
    finally:
        inline.close()
    assert summary["npc_conversations"] >= 1, summary
    transcript = (out / "transcript.md").read_text()
    assert "between NPCs" in transcript
    assert (out / "timeline.png").stat().st_size > 1000
    assert (out / "conversations.png").stat().st_size > 1000
    recorded = json.loads((out / "summary.json").read_text())
    assert recorded["ticks"] == 240 and recorded["lines_spoken"] >= 2
    ok, want, got = replay(out)
    assert ok and got == recorded["final_state_hash"]
