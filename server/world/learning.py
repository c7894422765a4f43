"""What each learner has learned at the school: per entity (so per
account: a player keeps its entity id), per topic, the questions answered
and whether rightly. Changed only by `Learn` inputs (the teacher's
judgement, logged like every input), so it survives restarts and replays.
"""
from __future__ import annotations

from typing import Any

# Questions kept per learner and topic: a topic has a handful; the bound
# keeps a hostile or buggy teacher from growing the state.
MAX_QUESTIONS = 64


class Progress:
    def __init__(self) -> None:
        self.by_learner: dict[int, dict[str, dict[int, bool]]] = {}  # entity -> topic -> question -> right
        self.changed: set[int] = set()  # this tick: learners whose progress changed

    def begin_tick(self) -> None:
        self.changed = set()

    def answered(self, learner: int, topic: str, question: int, right: bool) -> bool:
        topics = self.by_learner.setdefault(learner, {})
        asked = topics.setdefault(topic, {})
        if question not in asked and len(asked) >= MAX_QUESTIONS:
            return False
        asked[question] = right
        self.changed.add(learner)
        return True

    def of(self, learner: int) -> dict[str, dict[int, bool]]:
        return self.by_learner.get(learner, {})

    def summary(self, learner: int) -> dict[str, list[int]]:
        """topic -> [right, wrong], for the learner's client and for the teacher."""
        return {t: [sum(v.values()), len(v) - sum(v.values())] for t, v in sorted(self.of(learner).items())}

    def snapshot(self) -> list[Any]:
        return [[eid, [[t, sorted([q, r] for q, r in qs.items())] for t, qs in sorted(topics.items())]]
                for eid, topics in sorted(self.by_learner.items())]

    @classmethod
    def restore(cls, snap: list[Any]) -> Progress:
        p = cls()
        for eid, topics in snap:
            p.by_learner[eid] = {t: {q: bool(r) for q, r in qs} for t, qs in topics}
        return p
