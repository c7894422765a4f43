"""The moderation's model check with the real embedded model: everyday
notices pass, and clearly hostile ones that no listed word gives away are
withheld at the margin in agents/data/moderation.toml."""
from __future__ import annotations

import asyncio

import pytest

from agents.moderation import JUDGE_CANDIDATES, judge_prompt, judged_harmful, load_rules, word_check

pytestmark = pytest.mark.model

BENIGN = ["Lost grey cat near the pond, answers to Moss.", "Choir practice at the chapel at six.",
          "Welcome to the village, newcomers!"]
HOSTILE = ["Sanne's bread is poison and she should leave the village forever.",
           "Elena is a liar and a witch, burn her house.", "Nobody likes you Mira, you are worthless."]



async def test_the_model_passes_everyday_notices_and_withholds_hostile_ones(llm):
    rules = load_rules()
    verdicts = {}
    for text in BENIGN + HOSTILE:
        assert word_check(rules, text) is None  # the lists alone would let each through
        result = await asyncio.wait_for(llm.score(judge_prompt(text), JUDGE_CANDIDATES), 120)
        assert result.ok
        verdicts[text] = judged_harmful(result.logprobs, rules.model_margin)
    assert [verdicts[t] for t in BENIGN] == [False] * len(BENIGN)
    assert [verdicts[t] for t in HOSTILE] == [True] * len(HOSTILE)


async def test_a_player_asks_mira_for_notices_over_a_live_server(start_server, llm):
    """Over a real socket with the real model: a friendly notice is pinned
    and on the board; a listed one is withheld, and GET /moderation (admin
    token) shows it."""
    import json
    import urllib.request

    from client_demo.client import HamletClient
    from tests.waiting import until

    server = await start_server(llm=llm, npcs=True, model="embedded", tick_rate=20.0, ticks_per_tile=4,
                                admin_token="s3cret")
    c = await HamletClient.connect(server.url)
    await c.join("Ann")
    await until(lambda: c.find("Mira") is not None, what="Mira at the square")
    mira = c.find("Mira").id

    async def ask(text: str) -> str:
        await c.say(text, to=mira)
        reply = await c.wait_for(lambda m: m.type == "event" and m.data["kind"] == "say"
                                 and m.data["from"] == mira, timeout=120)
        return reply.data["text"]
    assert "notice board" in await ask("Mira, please put up a notice: Choir practice at the chapel at six")
    board = await c.board()
    assert [(n["author"], n["writer"], n["text"]) for n in board["notices"]] == [
        ("Ann", "Mira", "Choir practice at the chapel at six")]
    assert "rather not" in await ask("Mira, put up a notice: Tomas is a f.u.c.k.i.n.g cheat")
    assert len((await c.board())["notices"]) == 1
    base = server.url.replace("ws://", "http://")

    def get() -> dict:
        req = urllib.request.Request(base + "/moderation", headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    report = await asyncio.to_thread(get)
    assert report["checked"] == 2 and report["withheld_total"] == 1
    assert report["withheld"][0]["author"] == "Ann" and "cheat" in report["withheld"][0]["text"]
    await c.close()
