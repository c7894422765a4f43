"""A FAKE language model for unit tests of agent logic only: it returns
scripted texts and scores so the minds' rules can be tested without the
real model. Anything about the model itself uses the real embedded model."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass
class FakeResult:
    text: str = ""
    status: str = "ok"
    logprobs: list[float] = field(default_factory=list)
    token_logprobs: list[list[float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class FakeHandle:
    def __init__(self, job_id: int, result: FakeResult, ready_after: int) -> None:
        self.job_id = job_id
        self._result = result
        self._polls_left = ready_after
        self.cancelled = False

    def done(self) -> bool:
        if self._polls_left > 0:
            self._polls_left -= 1
            return False
        return True

    def result(self) -> FakeResult:
        return self._result

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class FakeLLM:
    """Scripted: `replies` is consumed in order for generations (then a
    default line); `prefer` picks which candidate wins a `score`."""

    def __init__(self, replies: list[str] | None = None, prefer: str = "greet", ready_after: int = 1) -> None:
        self.replies = list(replies or [])
        self.prefer = prefer
        self.ready_after = ready_after
        self.prompts: list[tuple[str, int]] = []  # (prompt, priority)
        self.kwargs: list[dict] = []              # the other arguments of each generate()
        self.handles: list[FakeHandle] = []
        self._ids = itertools.count(1)

    def chat_prompt(self, system: str, turns, add_generation_prompt: bool = True) -> str:
        body = "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns)
        return f"<|im_start|>system\n{system}<|im_end|>\n{body}" + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def generate(self, prompt: str, **kw) -> FakeHandle:
        self.prompts.append((prompt, int(kw.get("priority", 1))))
        self.kwargs.append(kw)
        text = self.replies.pop(0) if self.replies else "A fine day in the village."
        h = FakeHandle(next(self._ids), FakeResult(text=text), self.ready_after)
        self.handles.append(h)
        return h

    def score(self, prompt: str, candidates, **kw) -> FakeHandle:
        self.prompts.append((prompt, int(kw.get("priority", 2))))
        logprobs = [-1.0 if self.prefer in c else -5.0 for c in candidates]
        h = FakeHandle(next(self._ids), FakeResult(logprobs=logprobs, token_logprobs=[[x] for x in logprobs]),
                       self.ready_after)
        self.handles.append(h)
        return h

    def close(self) -> None:
        pass
