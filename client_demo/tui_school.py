"""The terminal client's school (protocol/PROTOCOL.md, "School"): the
learner's record from `progress` messages (topic -> [right, wrong], mirrored
as `HamletClient.progress`) put into words, for `/progress` and for the
line the chat log gets whenever the teacher judges an answer."""
from __future__ import annotations

from typing import Any

NO_LESSONS = "No lessons yet: say 'teach me' to Elena at the school."
HELP_SCHOOL = "School: /progress (or /school) your record per topic; say 'teach me' to Elena at the school."


def counts(value: Any) -> tuple[int, int] | None:
    """[right, wrong] as two counts, or None when malformed."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    right, wrong = value
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (right, wrong)):
        return None
    return right, wrong


def records(progress: dict[str, Any] | None) -> list[tuple[str, int, int]]:
    """(topic, right, wrong) for each well-formed topic, by name."""
    out = []
    for topic, value in (progress.items() if isinstance(progress, dict) else ()):
        c = counts(value)
        if isinstance(topic, str) and topic and c is not None:
            out.append((topic, *c))
    return sorted(out, key=lambda r: r[0].casefold())


def totals(progress: dict[str, Any] | None) -> tuple[int, int]:
    """(right, answered) over all topics."""
    rows = records(progress)
    return sum(r for _, r, _ in rows), sum(r + w for _, r, w in rows)


def topic_line(topic: str, right: int, wrong: int) -> str:
    return f"{topic}: {right} right, {wrong} wrong"


def progress_text(progress: dict[str, Any] | None) -> str:
    """The whole record for `/progress`: one line per topic."""
    rows = records(progress)
    if not rows:
        return NO_LESSONS
    if len(rows) == 1:
        return "Your record at the school: " + topic_line(*rows[0]) + "."
    right, answered = totals(progress)
    lines = ["Your record at the school:"] + [f"  {topic_line(*r)}" for r in rows]
    lines.append(f"  in all: {right} of {answered} right")
    return "\n".join(lines)


def progress_news(progress: dict[str, Any] | None) -> str | None:
    """The short line for the chat log when a `progress` message arrives."""
    right, answered = totals(progress)
    if not answered:
        return None
    return f"School: {right} of {answered} right so far."
