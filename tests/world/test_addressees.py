"""A say to someone across a region border (server/world/addressees.py):
accepted within hearing of where the world's resolver sees them, refused
out of hearing or when nobody is known; the logged input carries what was
seen, so replay without the resolver accepts and says the same; one process
(no resolver) is unchanged."""
from __future__ import annotations

from server.persistence import Database
from server.restore import ReplayMismatch, replay_into
from server.world.addressees import LoggedAddressee
from server.world.inputs import Join, Say, from_record, to_record
from server.world.village import village
from server.world.world import Rejection, World

MAP = village()
ACROSS = {900: LoggedAddressee(900, "npc", "Mira", 66, 48), 901: LoggedAddressee(901, "player", "Far", 90, 48)}


def regional_world() -> World:
    w = World(MAP, seed=5)
    w.foreign = ACROSS.get
    w.begin_tick()
    assert w.apply(Join(1, "ann", 60, 48)) is None
    return w


def test_a_say_to_someone_across_the_border_is_checked_where_they_are_seen():
    w = regional_world()
    chat = w.apply(Say(1, "Mira, where is the well?", to=900))
    assert isinstance(chat, int)
    ev = w.events[-1]
    assert (ev["to"], ev["to_name"], ev["from"], ev["chat"]) == (900, "Mira", 1, chat)
    far = w.apply(Say(1, "hello?", to=901))                   # 30 tiles off: out of hearing
    assert isinstance(far, Rejection) and far.code == "bad_value" and "Far" in far.message
    nobody = w.apply(Say(1, "hello?", to=902))                # neither here nor seen across
    assert isinstance(nobody, Rejection) and nobody.code == "no_such_entity"
    assert w.find_entity(900) is ACROSS[900] and w.find_entity(1) is w.entities[1] and w.find_entity(902) is None


def test_the_logged_say_carries_what_was_seen_and_replays_without_the_resolver(tmp_path):
    db = Database(str(tmp_path / "r.db"))
    live = World(MAP, seed=5)
    live.foreign = ACROSS.get
    said = []
    for _ in range(6):
        live.begin_tick()
        inputs = {1: [Join(1, "ann", 60, 48)], 3: [Say(1, "Mira, where is the well?", to=900)],
                  4: [Say(1, "Thanks!", to=1)]}.get(live.tick, [])
        log = []
        for inp in inputs:
            inp = live.address(inp)                            # what Game.apply logs
            if not isinstance(live.apply(inp), Rejection):
                log.append(to_record(inp))
        said += [e for e in live.events if e["kind"] == "say"]
        live.simulate()
        db.commit_tick(live.tick, log, [e for e in live.events if e["kind"] == "say"], [])
    kind, data = next(r[1:] for r in db.events_after(0) if r[1] == "say")
    assert (data["to"], data["to_name"], data["to_x"], data["to_y"]) == (900, "Mira", 66, 48)
    assert live.address(from_record(kind, data)) == from_record(kind, data)   # already addressed: unchanged
    replayed = World(MAP, seed=5)                              # no neighbours: no resolver
    replay_into(replayed, db, db.last_tick())
    assert replayed.state_hash() == live.state_hash() and replayed.next_chat_id == live.next_chat_id
    assert [(c["to"], c["to_name"]) for c in db.chat_history()] == [(900, "Mira")]


def test_replay_refuses_a_say_across_logged_without_what_was_seen(tmp_path):
    db = Database(str(tmp_path / "r.db"))
    db.commit_tick(1, [to_record(Join(1, "ann", 60, 48))], [], [])
    db.commit_tick(2, [to_record(Say(1, "Mira?", to=900))], [], [])   # as logged before addresses were written in
    try:
        replay_into(World(MAP, seed=5), db, 2)
    except ReplayMismatch as exc:
        assert "Mira?" in str(exc)
    else:
        raise AssertionError("a say to nobody known replayed")


def test_one_process_is_unchanged():
    w = World(MAP, seed=5)
    assert w.foreign is None
    w.begin_tick()
    assert w.apply(Join(1, "ann", 60, 48)) is None and w.apply(Join(2, "bob", 64, 48)) is None
    inp = Say(1, "Mira?", to=900)
    assert w.address(inp) is inp and w.find_entity(900) is None and w.find_entity(2) is w.entities[2]
    refused = w.apply(inp)
    assert isinstance(refused, Rejection) and refused.code == "no_such_entity"
    local = Say(1, "hi bob", to=2)
    assert w.address(local) is local and isinstance(w.apply(local), int)
    assert w.events[-1]["to_name"] == "bob" and to_record(local)[1]["to_name"] is None


def test_goods_do_not_cross_a_border_and_the_refusal_names_who_is_across():
    from protocol.codec import Message, decode_server as decode
    from server.trade import shop_reply
    from server.world.inputs import Buy, Give, MakeOffer

    w = regional_world()
    before = (w.economy.purses[1].coins, dict(w.economy.purses[1].goods), len(w.economy.offers))
    for inp, what in ((Give(1, 900, "coins", 1), "give to"), (MakeOffer(1, 900, coins=1), "trade with"),
                      (Buy(1, 900, "bread", 1, 99), "trade with")):
        r = w.apply(inp)
        assert isinstance(r, Rejection) and r.code == "no_such_entity"
        assert r.message == f"Mira is across a region border: walk over to {what} them"
    r = w.apply(Give(1, 902, "coins", 1))                    # nobody seen: the plain refusal
    assert isinstance(r, Rejection) and r.message == "nobody with id 902 is here"
    assert (w.economy.purses[1].coins, dict(w.economy.purses[1].goods), len(w.economy.offers)) == before
    err = decode(shop_reply(w, Message("shop", {"at": 900, "seq": 7})))
    assert err.type == "error" and err.data["code"] == "no_such_entity" and "Mira" in err.data["msg"]
    assert err.data["seq"] == 7
