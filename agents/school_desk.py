"""The school at the reply desk: a teacher NPC answering a learner with a
lesson and a question, the judgement of the learner's answer (by its words,
or else by the model's score of " right" against " wrong"), or a report of
progress. The lessons and the lines are agents/school.py's; the verdict is
a `Learn` input, so progress lives in the world.
"""
from __future__ import annotations

from typing import Any

from agents.explain import record, scored
from agents.inference.api import Priority
from agents.mind import Mind, PendingJob, WaitingPerson
from agents.npc_talk import best_normalised
from agents.school import (JUDGE_CANDIDATES, QUIZ_TICKS, Quiz, asking_line, holds_answer, judge_prompt,
                           next_question, progress_line, verdict_line, wants_lesson, wants_progress)
from server.world.inputs import Input, Learn
from server.world.world import World

# Quizzes a teacher keeps open at once (one per person asked): a class,
# not a crowd; the oldest is dropped past it.
MAX_QUIZZES = 64


class SchoolDesk:
    def __init__(self, desk: Any) -> None:
        self.desk = desk  # agents.replies.ReplyDesk: its system, counters and speech

    def answer(self, world: World, mind: Mind, person: WaitingPerson, out: list[Input]) -> bool:
        """A lesson, the judgement of an answer, or a report of progress; False
        when the line is none of these (an ordinary reply follows)."""
        lessons, speaker, name, text = self.desk.system.lessons, person.speaker, person.name, person.text
        quiz = mind.quizzes.get(speaker)
        if quiz is not None and world.tick - quiz.asked_tick > QUIZ_TICKS:
            del mind.quizzes[speaker]
            quiz = None
        if quiz is not None and not wants_lesson(text) and not wants_progress(text):
            q = next(l for l in lessons if l.topic == quiz.topic).questions[quiz.question]
            if holds_answer(text, q):
                self.judged(world, mind, speaker, name, quiz, True, None, out, text, ())
                return True
            handle = self.desk.system.llm.score(judge_prompt(q, text), JUDGE_CANDIDATES, priority=Priority.HUMAN_REPLY,
                                           deadline_s=self.desk.system.budget.reply_deadline_s)
            mind.reply_jobs[speaker] = PendingJob(handle, "quiz", {
                "partner": speaker, "partner_name": name, "heard": text, "quiz": quiz,
                "priority": int(Priority.HUMAN_REPLY)})
            return True
        if wants_progress(text):
            line = progress_line(world.progress.summary(speaker), lessons, name)
        elif wants_lesson(text):
            done = world.progress.of(speaker)
            nq = next_question(lessons, done)
            if nq is None:
                line = f"You've learned all I have to teach, {name}!"
            else:
                lesson, i = nq
                line = asking_line(lesson, lesson.questions[i], name, first=lesson.topic not in done)
                if len(mind.quizzes) >= MAX_QUIZZES:
                    del mind.quizzes[next(iter(mind.quizzes))]
                mind.quizzes[speaker] = Quiz(lesson.topic, i, world.tick)
        else:
            return False
        mind.forget_waiting(speaker)
        self.desk.outcomes["school"] += 1
        self.desk._say(world, mind, speaker, name, line, None, out)
        self.desk._log_line(world, mind, line)
        record(world, mind, "school", to=name, heard=text, line=line, outcome="school")
        return True

    def judged(self, world: World, mind: Mind, speaker: int, name: str, quiz: Quiz, right: bool, job: int | None,
                out: list[Input], heard: str, candidates: tuple[tuple[str, float], ...]) -> None:
        """Say the verdict (the right answer when wrong) and log it as a `Learn` input."""
        mind.quizzes.pop(speaker, None)
        q = next(l for l in self.desk.system.lessons if l.topic == quiz.topic).questions[quiz.question]
        line = verdict_line(q, name, right)
        mind.forget_waiting(speaker)
        self.desk.outcomes["school"] += 1
        self.desk._say(world, mind, speaker, name, line, job, out)
        self.desk._log_line(world, mind, line)
        if world.entities.get(speaker) is not None:
            out.append(Learn(speaker, mind.entity, quiz.topic, quiz.question, right))
            if right:
                self.desk.system.tales.day_log.add(world.game_minutes, f"{name} learned about {quiz.topic} with {mind.name}", 3)
        record(world, mind, "school", to=name, heard=heard, line=line, outcome="school", candidates=candidates,
               chosen="right" if right else "wrong")

    def finished(self, world: World, mind: Mind, job: PendingJob, result: Any, out: list[Input]) -> None:
        """A judgement by score; a failed one counts as wrong (and says the answer)."""
        ctx = job.context
        right = bool(result.ok and result.logprobs and best_normalised(result) == 0)
        self.judged(world, mind, ctx["partner"], ctx["partner_name"], ctx["quiz"], right, job.handle.job_id, out,
                    ctx["heard"], scored(["right", "wrong"], result))
