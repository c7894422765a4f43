"""The notice board: quests posted from real needs, paid atomically when
turned in, withdrawn when the need is gone or expired; notices pinned by
NPCs within their bounds; refusals that change nothing; and the board
through snapshots and replay."""
from __future__ import annotations

import msgpack

from protocol.board import (BOARD_PLACE, MAX_NOTICE_TEXT, MAX_NOTICES, MAX_NOTICES_PER_AUTHOR, QUEST_TTL_TICKS)
from protocol.codec import decode_server
from protocol.entities import ROWS
from protocol.errors import ErrorCode
from server.board import QUEST_RUNS, board_frame, quest_system, reward_for
from server.world.inputs import (Consume, Join, PinNotice, PostQuest, Rejection, TurnIn, WithdrawQuest,
                                 from_record, to_record)
from server.world.world import World
from tests.world.test_economy import CATALOG, MAP, holdings, spot, totals

BOARD = MAP.places[BOARD_PLACE].entry
HOUR_TICKS = 7200  # 60 game minutes at half a game second per tick


def world_with_need() -> World:
    """Ann by the board, Bob far from it, Sanne (the baker) at the bakery
    without the eggs her afternoon bake uses."""
    w = World(MAP, seed=5, catalog=CATALOG)
    w.begin_tick()
    bakery = MAP.places["bakery"].entry
    for inp in (Join(1, "Ann", *BOARD), Join(2, "Bob", *MAP.places["market"].entry), Join(3, "Sanne", *bakery, npc=True)):
        assert w.apply(inp) is None
    assert w.apply(Consume(3, "eggs", w.economy.purse(3).goods["eggs"])) is None
    return w


def next_hour(w: World, inputs=None) -> list:
    """Run ticks up to the next whole game hour; what the quest system asks there."""
    w.tick = (w.tick // HOUR_TICKS + 1) * HOUR_TICKS - 1
    w.begin_tick()
    out = quest_system(w)
    for inp in out:
        assert w.apply(inp) is None, inp
    w.simulate()
    return out


def refused(w: World, inp, code: str) -> None:
    before = w.state_hash()
    got = w.apply(inp)
    assert isinstance(got, Rejection) and got.code == code, got
    assert w.state_hash() == before  # nothing changed


def test_a_workplace_lacking_what_it_uses_posts_one_quest_for_it():
    w = world_with_need()
    assert quest_system(w) == []  # not on the hour
    posted = next_hour(w)
    assert posted == [PostQuest(3, "eggs", QUEST_RUNS, reward_for(w, "eggs", QUEST_RUNS))]
    (q,) = w.board.quests.values()
    assert (q.poster_name, q.item, q.n) == ("Sanne", "eggs", 3)
    assert q.reward > 3 * CATALOG.prices["eggs"] * 6 // 5  # beats what any shop pays for them
    assert q.text == f"Sanne needs 3 eggs: bring them for {q.reward} coins."
    assert next_hour(w) == []  # asked once, not again every hour
    assert w.board.posted == 1


def test_turning_in_pays_atomically_and_only_once():
    w = world_with_need()
    next_hour(w)
    (q,) = w.board.quests.values()
    refused(w, TurnIn(1, q.id), ErrorCode.NOT_ENOUGH)         # Ann has no eggs yet
    w.economy.purse(1).add("eggs", 4)
    w.economy.purse(2).add("eggs", 4)
    refused(w, TurnIn(2, q.id), ErrorCode.OUT_OF_RANGE)       # Bob is neither at the board nor at the bakery
    refused(w, TurnIn(3, q.id), ErrorCode.BAD_VALUE)          # Sanne's own quest
    refused(w, TurnIn(1, q.id + 99), ErrorCode.QUEST_CLOSED)
    before, sums = holdings(w), totals(w)
    assert w.apply(TurnIn(1, q.id)) is None
    after = holdings(w)
    assert after[1] == (before[1][0] + q.reward, {"eggs": 1})
    assert after[3][0] == before[3][0] - q.reward and after[3][1]["eggs"] == 3
    assert totals(w) == sums                                  # nothing made or lost
    assert w.board.quests == {} and w.board.done == 1
    assert [t.kind for t in w.economy.trades] == ["quest"]
    assert w.events[-1]["kind"] == "trade" and "3 eggs" in w.events[-1]["text"]
    refused(w, TurnIn(1, q.id), ErrorCode.QUEST_CLOSED)       # the second one finds it done


def test_a_poster_who_cannot_pay_refuses_the_turn_in_whole():
    w = world_with_need()
    next_hour(w)
    (q,) = w.board.quests.values()
    w.economy.purse(1).add("eggs", 3)
    w.economy.purse(3).coins = q.reward - 1
    refused(w, TurnIn(1, q.id), ErrorCode.NOT_ENOUGH)


def test_posting_rules():
    w = world_with_need()
    refused(w, PostQuest(1, "eggs", 3, 5), ErrorCode.FORBIDDEN)        # players do not post quests
    refused(w, PostQuest(3, "gold", 3, 5), ErrorCode.NO_SUCH_ITEM)
    refused(w, PostQuest(3, "eggs", 0, 5), ErrorCode.OUT_OF_RANGE)
    coins = w.economy.purse(3).coins
    refused(w, PostQuest(3, "eggs", 3, coins + 1), ErrorCode.NOT_ENOUGH)
    assert w.apply(PostQuest(3, "eggs", 3, coins - 1)) is None
    refused(w, PostQuest(3, "eggs", 1, 1), ErrorCode.BAD_VALUE)        # one ask per item
    refused(w, PostQuest(3, "flour", 1, 2), ErrorCode.NOT_ENOUGH)      # its coins are promised
    refused(w, WithdrawQuest(1, 1), ErrorCode.QUEST_CLOSED)            # not Ann's to withdraw


def test_a_need_met_elsewhere_withdraws_the_quest_and_an_unanswered_one_expires():
    w = world_with_need()
    next_hour(w)
    w.economy.purse(3).add("eggs", 2)
    (withdraw,) = next_hour(w)
    assert isinstance(withdraw, WithdrawQuest) and w.board.quests == {}
    assert [q.state for q in w.board.news] == ["withdrawn"]
    assert w.apply(Consume(3, "eggs", 2)) is None
    next_hour(w)
    (q,) = w.board.quests.values()
    w.tick = q.expires - 1
    w.begin_tick()
    w.simulate()
    assert w.board.quests == {} and [x.state for x in w.board.news] == ["expired"]
    assert q.expires - q.posted == QUEST_TTL_TICKS


def test_notices_are_pinned_by_npcs_within_bounds():
    w = world_with_need()
    refused(w, PinNotice(1, 1, "Ann", "Lost cat"), ErrorCode.FORBIDDEN)
    refused(w, PinNotice(3, 1, "Ann", "x" * (MAX_NOTICE_TEXT + 1)), ErrorCode.BAD_VALUE)
    refused(w, PinNotice(3, 1, "Ann", "two\nlines"), ErrorCode.BAD_VALUE)
    refused(w, PinNotice(3, 1, "Ann", "   "), ErrorCode.BAD_VALUE)
    for i in range(MAX_NOTICES_PER_AUTHOR + 1):  # past the cap, the author's own oldest comes down
        assert w.apply(PinNotice(3, 1, "Ann", f"Ann's notice {i}")) is None
    assert [n.text for n in w.board.notices] == [f"Ann's notice {i + 1}" for i in range(MAX_NOTICES_PER_AUTHOR)]
    for i in range(MAX_NOTICES):  # others fill the board: the oldest come down
        assert w.apply(PinNotice(3, 100 + i, f"P{i}", f"notice {i}")) is None
    texts = [n.text for n in w.board.notices]
    assert len(texts) == MAX_NOTICES and texts[0] == "notice 0" and texts[-1] == f"notice {MAX_NOTICES - 1}"
    assert w.board.pinned == MAX_NOTICES_PER_AUTHOR + 1 + MAX_NOTICES


def test_the_board_answer_has_the_documented_rows():
    w = world_with_need()
    next_hour(w)
    assert w.apply(PinNotice(3, 1, "Ann", "Bread on Sunday")) is None
    msg = decode_server(board_frame(w, 9))
    assert msg.type == "board" and msg.data["seq"] == 9
    (quest,), (notice,) = msg.data["quests"], msg.data["notices"]
    q = dict(zip(ROWS["quest"], quest))
    n = dict(zip(ROWS["notice"], notice))
    assert len(quest) == len(ROWS["quest"]) and len(notice) == len(ROWS["notice"])
    assert (q["from_name"], q["item"], q["n"]) == ("Sanne", "eggs", 3) and q["text"].startswith("Sanne needs")
    assert (n["author"], n["writer"], n["text"]) == ("Ann", "Sanne", "Bread on Sunday")


def test_the_board_survives_snapshots_and_replays_from_its_records():
    w = world_with_need()
    records = []
    start = msgpack.unpackb(msgpack.packb(w.snapshot()), strict_map_key=False)
    for inp in next_hour(w):
        records.append(to_record(inp))
    pin = PinNotice(3, 1, "Ann", "Choir at six")
    assert w.apply(pin) is None
    records.append(to_record(pin))
    copy = World.restore(MAP, msgpack.unpackb(msgpack.packb(w.snapshot()), strict_map_key=False))
    assert copy.state_hash() == w.state_hash()
    assert [n.text for n in copy.board.notices] == ["Choir at six"] and len(copy.board.quests) == 1
    again = World.restore(MAP, start)
    again.tick = w.tick - 1
    again.begin_tick()
    for kind, data in records:
        assert again.apply(from_record(kind, msgpack.unpackb(msgpack.packb(data)))) is None
    again.simulate()
    assert again.board.snapshot() == w.board.snapshot()
