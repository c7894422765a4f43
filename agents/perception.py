"""What the minds perceive: each event of the world reaches the minds within
hearing (speech, trades, arrivals and departures) as memories; a person
addressing an NPC joins its reply queue (agents/replies.py) and may ask it
to meet (agents/plans.py); an NPC's partner's line gives it the turn; a
gift is thanked; notable events go to the day's log (agents/stories.py).
In a region, speech from across a border comes in too (`hear_across`), and
a speaker or addressee across it is found through the world's resolver
(`World.find_entity`), so an NPC answers them as anyone near.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import MutableSequence
from typing import Any, NamedTuple, Protocol

from agents import prompts
from agents.dialogue import thanks_line
from agents.facts import places_asked
from agents.mind import ConversationLog, Mind
from agents.plans import meeting_asked
from server.world.inputs import Input, Say
from server.world.world import World


class SensesHost(Protocol):
    """What perception needs of the minds system (agents/minds.py)."""
    budget: Any
    rng: Any
    desk: Any      # agents.replies.ReplyDesk
    tales: Any     # agents.stories.Storytellers
    by_entity: dict[int, Mind]
    transcripts: MutableSequence[ConversationLog]

    def end(self, world: World, mind: Mind) -> None: ...


# Lines said across a border within hearing of this region's NPCs, waiting
# for the next agents phase (a tick): a few a tick at a crowded border; past
# this the oldest go, as local events past the minds' own bound do.
MAX_HEARD_ACROSS = 256


class SpeakerAcross(NamedTuple):
    """Who spoke across a border as the neighbour region's event says (its
    `who`), until this region's border view shows them."""
    id: int
    kind: str
    name: str
    x: int
    y: int


class Perception:
    def __init__(self, host: SensesHost) -> None:
        self.host = host
        self.across: deque[dict] = deque(maxlen=MAX_HEARD_ACROSS)

    def hear_across(self, ev: dict) -> None:
        """A `say` event from a neighbour region (server/cluster/region_systems.py),
        perceived at the next agents phase like this world's own."""
        self.across.append(ev)

    def perceive(self, world: World, events: deque[dict], out: list[Input]) -> None:
        """Each event reaches the minds that hear it (and the day's log of notable ones)."""
        host = self.host
        now = world.game_minutes
        while events or self.across:
            ev = events.popleft() if events else self.across.popleft()
            speaker = world.find_entity(ev["from"])  # across a border: as this region sees them
            if speaker is None and ev.get("who"):    # or, before its ghost arrives, as its region said
                speaker = SpeakerAcross(ev["from"], ev["who"], ev["name"], ev["x"], ev["y"])
            if ev["kind"] == "trade":  # the day's notable events, for the evening's tale
                host.tales.day_log.add(now, ev["text"], 3)
            elif ev["kind"] == "arrive" and speaker is not None and speaker.kind == "player":
                host.tales.day_log.add(now, f"{ev['name']} came to the village", 2)
            for hearer in world.hearers(ev["x"], ev["y"]):
                mind = host.by_entity.get(hearer.id)
                if mind is None or (hearer.id == ev["from"] and ev["kind"] != "trade"):
                    continue  # its own lines and comings; but its own trades it remembers
                if ev["kind"] == "say":
                    self.hear(world, mind, ev, speaker, now, out)
                elif ev["kind"] == "trade":  # something changed hands near it (or with it)
                    involved = mind.entity in (ev["from"], ev.get("to"))
                    mind.memory.add(now, "observation", ev["text"] + ".", 5 if involved else 2, embed=False)
                    if ev.get("to") == mind.entity and " gave " in ev["text"] and speaker is not None \
                            and speaker.kind == "player" and world.in_hearing(hearer, speaker):
                        out.append(Say(mind.entity, thanks_line(host.rng, ev["name"]), speaker.id))
                elif ev["kind"] in ("arrive", "depart"):
                    verb = "arrived" if ev["kind"] == "arrive" else "left"
                    is_player = speaker is not None and speaker.kind == "player"
                    mind.memory.add(now, "observation", f"{ev['name']} {verb}.", 3 if is_player else 1,
                                    embed=False)

    def hear(self, world: World, mind: Mind, ev: dict, speaker, now: float, out: list[Input]) -> None:
        """A line spoken within its hearing: remembered; a person addressing it
        joins its reply queue; its NPC partner's line gives it the turn."""
        host = self.host
        text, name = ev["text"], ev["name"]
        # addressed: spoken to it, or naming it while speaking to nobody in particular
        to = ev.get("to")
        addressed = to == mind.entity or (to is None and re.search(rf"\b{re.escape(mind.name)}\b", text, re.I) is not None)
        from_player = speaker is not None and speaker.kind == "player"
        mind.memory.add(now, "observation", f"{name} said {prompts.quote(text)}" +
                        (" to me." if ev.get("to") == mind.entity else "."),
                        7 if addressed and from_player else 4 if from_player else 3)
        mind.events.heard(text, now, set(world.map.places))  # a feast at the tavern at 18:00 (agents/events.py)
        conv = mind.conversation
        if from_player and addressed:
            if not host.desk.heard(world, mind, ev["from"], name, text, out):
                return  # past the queue's bound: told to come back
            meeting = meeting_asked(text, set(world.map.places), places_asked)
            if meeting is not None:  # decided on (scored) once the person has their answer
                mind.meeting = (name, *meeting)
            if mind.job is not None and mind.job.kind in ("choose", "reflect"):
                mind.job.handle.cancel()  # a person outranks musing; the result is dropped
                mind.job = None
            if conv is None or not conv.with_player:
                host.end(world, mind)  # a person outranks NPC small talk
                log_ = ConversationLog.start([mind.name, name], True, now)
                conv = mind.begin_conversation(ev["from"], name, True, log_, False, world.tick)
                host.transcripts.append(log_)
            elif name not in conv.log.participants:
                conv.log.participants.append(name)  # one more person in the crowd around it
            conv.log.lines.append((now, name, text))
            conv.last_tick = world.tick
        elif conv is not None and conv.partner == ev["from"] and not conv.with_player:
            # the shared log already holds the line: the speaker's mind wrote it
            conv.my_turn = True
            conv.next_tick = world.tick + host.budget.line_gap_ticks
            conv.last_tick = world.tick
            if len(conv.log.lines) >= host.budget.max_lines:
                host.end(world, mind)
