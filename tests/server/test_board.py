"""The notice board over real sockets: `board` reads the quests and notices
as documented rows, `turn_in` pays the reward (the `inv` before the `ack`,
a `trade` event), and refusals come with their codes and change nothing."""
from __future__ import annotations

import pytest

from client_demo.client import HamletClient, ServerError
from protocol.board import BOARD_PLACE
from server.world.inputs import Join, PinNotice, PostQuest
from tests.server.test_trade import joined
from tests.waiting import until


async def test_reading_the_board_and_turning_in_a_quest(server):
    ann = await joined(server, "ann")
    bob = await joined(server, "bob")
    world = server.game.world
    assert (await ann.board()) == {"quests": [], "notices": []}
    oda = world.allocate_entity_id()
    assert server.game.apply(Join(oda, "Oda", *world.map.places["fields"].entry, npc=True)) is None
    assert server.game.apply(PostQuest(oda, "wheat", 2, 5)) is None
    assert server.game.apply(PinNotice(oda, ann.entity, "ann", "Choir practice at six")) is None
    board = await bob.board()
    (q,) = board["quests"]
    assert (q["from"], q["from_name"], q["item"], q["n"], q["reward"]) == (oda, "Oda", "wheat", 2, 5)
    assert board["notices"] == [{"id": board["notices"][0]["id"], "author": "ann", "writer": "Oda",
                                 "text": "Choir practice at six", "tick": board["notices"][0]["tick"]}]
    world.economy.purse(ann.entity).add("wheat", 2)
    await ann.move(place="school")              # spawns are random: some are within reach of the board
    await until(lambda: not world.entities[ann.entity].path, what="ann at the school")
    with pytest.raises(ServerError) as err:     # not at the board, not by Oda
        await ann.turn_in(q["id"])
    assert err.value.code == "out_of_range" and world.economy.purse(ann.entity).goods == {"wheat": 2}
    for c in (ann, bob):
        await c.move(place=BOARD_PLACE)
    await until(lambda: not world.entities[ann.entity].path and not world.entities[bob.entity].path,
                what="both at the board")
    with pytest.raises(ServerError) as err:
        await bob.turn_in(q["id"])
    assert err.value.code == "not_enough"
    world.economy.purse(bob.entity).add("wheat", 2)
    coins = ann.coins
    ann.drain()
    await ann.turn_in(q["id"])
    seen = [m.type for m in ann.drain() if m.type in ("inv", "ack")]
    assert seen[:2] == ["inv", "ack"] and ann.coins == coins + 5 and "wheat" not in ann.items
    await until(lambda: any(m.type == "event" and m.data["kind"] == "trade" and "quest" in m.data["text"]
                            for m in bob.drain()), what="the trade event")
    with pytest.raises(ServerError) as err:     # Bob was second
        await bob.turn_in(q["id"])
    assert err.value.code == "quest_closed" and world.economy.purse(bob.entity).goods == {"wheat": 2}
    assert (await bob.board())["quests"] == []
    await ann.close()
    await bob.close()
