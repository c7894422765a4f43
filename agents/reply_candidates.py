"""A reply to one person generated as several candidates at once (agents/
replies.py): one handle over their generations, done as soon as the gate
would accept a finished one, so the person waits for the quickest good
line rather than the slowest."""
from __future__ import annotations

from typing import Any


class Candidates:
    """Several generations of one reply, as one handle: done when all are, or
    as soon as a finished one is accepted (`accept(result)`: the gate's
    verdict, so the person does not wait for a slower candidate); `result()`
    is an accepted finished one's, else the first finished one's (what a
    caller that wants one line reads)."""

    def __init__(self, handles: list[Any], accept: Any = None) -> None:
        self.handles = handles
        self.accept = accept
        self._verdicts: dict[int, bool] = {}    # handle index -> accepted (asked once each)

    @property
    def job_id(self) -> int:
        return self.handles[0].job_id

    def _accepted(self, i: int) -> bool:
        if i not in self._verdicts:
            self._verdicts[i] = bool(self.accept(self.handles[i].result()))
        return self._verdicts[i]

    def done(self) -> bool:
        finished = [i for i, h in enumerate(self.handles) if h.done()]
        if len(finished) == len(self.handles):
            return True
        return self.accept is not None and any(self._accepted(i) for i in finished)

    def result(self) -> Any:
        """An accepted finished candidate's result, else the first finished one's."""
        finished = [i for i, h in enumerate(self.handles) if h.done()]
        if not finished:
            return self.handles[0].result()          # (raises: not done)
        accepted = [i for i in finished if self.accept is not None and self._accepted(i)]
        return self.handles[(accepted or finished)[0]].result()

    def cancel(self) -> bool:
        return all([h.cancel() for h in self.handles])


def generations(handle: Any) -> list[tuple[Any, Any]]:
    """(handle, result) of each finished candidate of a finished reply; the
    others are cancelled (one was accepted before they ended)."""
    hs = handle.handles if isinstance(handle, Candidates) else [handle]
    finished = [h for h in hs if h.done()]
    for h in hs:
        if h not in finished:
            h.cancel()
    return [(h, h.result()) for h in finished]
