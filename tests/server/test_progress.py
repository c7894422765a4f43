"""A learner's progress over real sockets: a teacher's judgement (a `Learn`
input) reaches the learner as `progress`, only them, and comes back after
`welcome` when they resume, also after a restart."""
from __future__ import annotations

from client_demo.client import HamletClient
from server.world.inputs import Join, Learn
from tests.waiting import settled, until


async def test_progress_reaches_the_learner_only_and_survives_a_restart(start_server):
    server = await start_server()
    ann = await HamletClient.connect(server.url)
    await ann.join("ann")
    bob = await HamletClient.connect(server.url)
    await bob.join("bob")
    world = server.game.world
    elena = world.allocate_entity_id()
    assert server.game.apply(Join(elena, "Elena", *world.map.places["school"].entry, npc=True)) is None
    judged = [Learn(ann.entity, elena, "bread", 0, True), Learn(ann.entity, elena, "bread", 1, False)]
    # the teacher's judgements come from the agents phase of a tick, as the minds' do
    server.game.agent_systems.append(lambda w: [judged.pop(0)] if judged else [])
    await until(lambda: ann.progress == {"bread": [1, 1]})
    await settled(server, bob)
    assert bob.progress == {}
    token, eid = ann.token, ann.entity
    await ann.close()
    await bob.close()
    await server.stop()

    again = await start_server()
    assert again.game.world.progress.summary(eid) == {"bread": [1, 1]}
    back = await HamletClient.connect(again.url)
    await back.join("ann", token=token)
    await until(lambda: back.progress == {"bread": [1, 1]})
    await back.close()
