"""The running batch: which sequence owns which row of the slot cache.

Owns `Seq` (one generation's state: prompt tokens, cache length, generated
tokens, text, its result) and `RunningBatch`: rows[i] <-> row i of the
`SlotKV`, kept one contiguous block of live rows. At most one row is
"filling" (its prompt prefilled in chunks over several steps); it is always
the last row. Freed rows are compacted at once (the last live row moves in:
one row copy), replies to people are swapped to the front while they are
served alone, and a filling row is parked past newly admitted rows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .api import GenerationResult, Priority
from .jobs import GenerateRequest
from .kv import SlotKV
from .sampling import TextState


@dataclass(eq=False)
class Seq:
    req: GenerateRequest
    prompt_len: int
    length: int                      # tokens whose keys/values are in the row; -1: finished, row free
    text: TextState
    generator: torch.Generator | None
    gen_ids: list[int] = field(default_factory=list)
    first_token_at: float | None = None
    ids: list[int] = field(default_factory=list)   # the prompt's tokens
    bans: tuple[tuple[int, ...], ...] = ()          # banned token sequences (bans.py)

    @property
    def urgent(self) -> bool:
        return self.req.priority == Priority.HUMAN_REPLY

    def add_token(self, tok: int, eos: set[int]) -> tuple[str, str | None]:
        """Take one generated token -> (new text, finish reason or None)."""
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        self.gen_ids.append(tok)
        if tok in eos:
            return "", "stop"
        piece = self.text.update(self.gen_ids)
        if self.text.stopped:
            return piece, "stop"
        return piece, "length" if len(self.gen_ids) >= self.req.max_new_tokens else None

    def finish(self, status: str, reason: str | None, error: str | None, eos: set[int]
               ) -> tuple[str, GenerationResult]:
        """End it (the row becomes free) -> (the text's held-back tail, the result)."""
        tail = self.text.flush()
        self.length = -1
        req, now = self.req, time.monotonic()
        return tail, GenerationResult(
            text=self.text.text, token_ids=[t for t in self.gen_ids if t not in eos], status=status,
            finish_reason=reason, latency_s=now - req.submitted, error=error, prompt_tokens=self.prompt_len,
            ttft_s=None if self.first_token_at is None else self.first_token_at - req.submitted)


class RunningBatch:
    def __init__(self, kv: SlotKV):
        self.kv = kv
        self.rows: list[Seq] = []         # row i of kv <-> rows[i]
        self.filling: Seq | None = None   # rows[-1] while its prompt is prefilled in chunks

    def __len__(self) -> int:
        return len(self.rows)

    def decoding(self) -> list[Seq]:
        """The rows that have a next token to feed (all but the filling row)."""
        return self.rows[:-1] if self.filling is not None else self.rows

    def longest(self) -> int:
        return max(s.length for s in self.rows)

    def urgent_running(self) -> bool:
        return any(s.urgent for s in self.rows if s is not self.filling)

    def gather_urgent(self) -> int:
        """Swap the rows of replies to people to the front; returns how many.
        (The filling row is never one of them, so it stays last.)"""
        rows = self.rows
        urgent = [s.urgent and s is not self.filling for s in rows]
        u = sum(urgent)
        back = [i for i in range(u, len(rows)) if urgent[i]]
        for i in range(u):
            if not urgent[i]:
                j = back.pop()
                self.kv.swap_rows(i, j, max(rows[i].length, rows[j].length))
                rows[i], rows[j] = rows[j], rows[i]
        return u

    def compact(self) -> None:
        """Drop finished rows: move the last live row into each freed row (one
        row copy each); the filling row, if any, stays the last row."""
        rows = self.rows
        filling = self.filling if self.filling is not None and self.filling.length >= 0 else None
        self.filling = filling
        if filling is not None:
            old_row = len(rows) - 1
            rows.pop()
        while rows and rows[-1].length < 0:
            rows.pop()
        for i in range(len(rows)):
            if i >= len(rows):
                break
            if rows[i].length < 0:
                last = rows.pop()                    # live: the freed tail was trimmed
                self.kv.move_row(len(rows), i, last.length)
                rows[i] = last
                while rows and rows[-1].length < 0:
                    rows.pop()
        if filling is not None:
            if len(rows) != old_row:
                self.kv.move_row(old_row, len(rows), filling.length)
            rows.append(filling)

    # -- around a prefill -------------------------------------------------------------
    def park_filling(self, room: int) -> Seq:
        """Take the filling row out, its cache moved `room` rows further down
        (new rows go first; `unpark` puts it back last)."""
        parked = self.rows.pop()
        self.kv.move_row(len(self.rows), len(self.rows) + room, parked.length)
        return parked

    def unpark(self, parked: Seq) -> None:
        self.rows.append(parked)

    def snapshot(self) -> tuple[list[Seq], Seq | None]:
        return list(self.rows), self.filling

    def restore(self, saved: tuple[list[Seq], Seq | None], parked: Seq | None) -> None:
        """Back to `saved` (an interrupted prefill); a parked filling row goes back to its row."""
        if parked is not None:
            self.kv.move_row(len(self.rows) - 1, len(saved[0]) - 1, parked.length)
        self.rows, self.filling = list(saved[0]), saved[1]
