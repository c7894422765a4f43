"""The school: a teacher NPC's lessons, quizzes and each learner's progress.

Lessons come from a data file (`agents/data/lessons.toml`: topic, a line to
teach, questions with their answer and other accepted answers). Asked
"teach me" or "quiz me", the teacher explains the learner's next topic in a
line and asks its next question; the learner's next line is the answer. It
is judged right when it holds the answer's words (or an accepted one's),
else by the model's `score` of " right" against " wrong" after the question,
the expected answer and the learner's; a wrong answer is told the right one.
The verdict is a `Learn` input, so progress lives in the world (per
account, through restarts and replay). "How am I doing?" is answered from
it. Nothing here is generated: every line is the lesson's own words.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LESSONS = Path(__file__).with_name("data") / "lessons.toml"

_TEACH = re.compile(r"\b(teach|lesson|lessons|quiz|test me|ask me|learn)\b", re.I)
_PROGRESS = re.compile(r"\b(how am i doing|my progress|how did i do|my (marks|score|grades))\b", re.I)
_WORD = re.compile(r"[a-z0-9]+")
# Words that do not decide whether an answer is right.
_FILLER = frozenset("the a an it is its at in on of to i think maybe um well answer that's thats its".split())
# A quiz waits this many ticks for its answer (two minutes at 20 Hz); a
# later line is a new request.
QUIZ_TICKS = 2400


@dataclass(frozen=True)
class Question:
    q: str
    a: str
    accept: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lesson:
    topic: str
    teach: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Quiz:
    """A question asked and not yet answered."""
    topic: str
    question: int
    asked_tick: int


def load_lessons(path: str | Path | None = None) -> tuple[Lesson, ...]:
    p = Path(path) if path else DEFAULT_LESSONS
    data = tomllib.loads(p.read_text(encoding="utf-8"))
    out = []
    for raw in data.get("lesson", []):
        qs = tuple(Question(str(q["q"]), str(q["a"]), tuple(str(x) for x in q.get("accept", ())))
                   for q in raw.get("question", []))
        if not qs:
            raise ValueError(f"{p}: lesson {raw.get('topic')!r} has no questions")
        out.append(Lesson(str(raw["topic"]), str(raw["teach"]), qs))
    return tuple(out)


def wants_lesson(text: str) -> bool:
    return _TEACH.search(text) is not None


def wants_progress(text: str) -> bool:
    return _PROGRESS.search(text) is not None


def next_question(lessons: tuple[Lesson, ...], done: dict[str, dict[int, bool]]) -> tuple[Lesson, int] | None:
    """The learner's first lesson with a question not yet answered rightly
    (unanswered first, then those answered wrong), or None when all are."""
    for lesson in lessons:
        asked = done.get(lesson.topic, {})
        fresh = [i for i in range(len(lesson.questions)) if i not in asked]
        if fresh:
            return lesson, fresh[0]
    for lesson in lessons:
        wrong = [i for i, right in done.get(lesson.topic, {}).items() if not right and i < len(lesson.questions)]
        if wrong:
            return lesson, wrong[0]
    return None


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _FILLER}


def holds_answer(answer: str, q: Question) -> bool:
    """The answer holds every word of the expected answer, or of an accepted one."""
    said = _words(answer)
    return any(want and want <= said for want in (_words(x) for x in (q.a, *q.accept)))


def judge_prompt(q: Question, answer: str) -> str:
    """What the model reads before " right" or " wrong"."""
    return (f"A teacher asked: {q.q}\nThe correct answer is: {q.a}.\nThe student answered: {answer}\n"
            f"The student's answer is")


JUDGE_CANDIDATES = [" right", " wrong"]


def asking_line(lesson: Lesson, q: Question, name: str, first: bool) -> str:
    intro = f"{lesson.teach} " if first else ""
    return f"{intro}Here's a question, {name}: {q.q}"


def verdict_line(q: Question, name: str, right: bool) -> str:
    if right:
        return f"That's right, {name}: {q.a}."
    return f"Not quite, {name}: the answer is {q.a}."


def progress_line(summary: dict[str, list[int]], lessons: tuple[Lesson, ...], name: str) -> str:
    """From the world's record of the learner (Progress.summary)."""
    if not summary:
        return f"You haven't had a lesson with me yet, {name}. Ask me to teach you!"
    right = sum(r for r, _ in summary.values())
    total = sum(r + w for r, w in summary.values())
    per = ", ".join(f"{topic} {r} of {r + w}" for topic, (r, w) in summary.items())
    questions = sum(len(lesson.questions) for lesson in lessons)
    more = " There's more to learn when you're ready." if right < questions else " You've learned all I have to teach!"
    return f"You've answered {right} of {total} right, {name}: {per}.{more}"


def lessons_summary(progress) -> dict[str, int]:
    """The school's figures for a sim's summary.json (`world.progress`,
    server/world/learning.Progress): learners, and their answers judged."""
    answers = [right for topics in progress.by_learner.values() for qs in topics.values() for right in qs.values()]
    return {"learners": len(progress.by_learner), "answers_right": sum(answers),
            "answers_wrong": len(answers) - sum(answers)}
