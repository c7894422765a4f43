"""Hamlet's model calls as OpenAI-compatible request bodies.

Owns both directions of that vocabulary: `Call` (what `RemoteLLM` and
`EnginePool` send: a path, a JSON body, the priority and deadline) with the
builders of generate / chat / score calls, and the reading of a request by
`hamlet llm-serve`: `generation_kwargs` (sampling, priority, bans, Hamlet's
extensions), `choices_of` (vLLM's `structured_outputs: {"choice": ...}`)
and `wants_usage` (`stream_options.include_usage`: a stream's last event
counts its tokens). The words are vLLM's where vLLM has one (`priority`,
`bad_words`, `structured_outputs`, `stream_options`); Hamlet's own start
with `hamlet_`, and other servers ignore them. Reading raises ValueError
with what is wrong (llm-serve: 400).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .api import Priority

# structured_outputs.choice bounds: an NPC picks among 3-8 actions or lines;
# 64 choices of 512 characters each keep one request's scoring work to a few
# thousand tokens, which one batch of the engine absorbs.
MAX_CHOICES = 64
MAX_CHOICE_CHARS = 512
MAX_TOKENS_CAP = 2048       # per request; the engine's sequence limit applies too
MAX_STOPS = 8               # stop strings per request: an NPC line needs one or two


@dataclass
class Call:
    """One request, ready for any OpenAI-compatible server."""
    kind: str                   # "generate" or "score"
    path: str                   # under /v1
    body: dict
    priority: int
    deadline_s: float | None = None
    refused: str | None = None  # why it fails before it is sent (a bad ban list)


def generate_call(prompt: str, *, max_new_tokens: int = 32, temperature: float = 0.0, top_p: float = 1.0,
                  seed: int | None = None, stop: Sequence[str] = (), priority: int = Priority.CONVERSATION,
                  deadline_s: float | None = None, prefix: str | None = None, sentences: int | None = None,
                  ban: Sequence[str] = ()) -> Call:
    from .bans import check_bans
    body: dict = {"prompt": prompt, "max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                  "stream": True, "stream_options": {"include_usage": True}, "priority": int(priority)}
    if ban:
        body["bad_words"] = list(ban)   # vLLM's name; `hamlet llm-serve` reads it too
    if sentences:
        # `hamlet llm-serve` stops there itself; other servers are cut off by the client
        body["hamlet_sentences"] = int(sentences)
    if seed is not None:
        body["seed"] = seed
    if stop:
        body["stop"] = list(stop)
    if prefix:
        body["hamlet_prefix"] = prefix
    return Call("generate", "/completions", body, int(priority), deadline_s, check_bans(ban))


def chat_call(system: str, turns: list[tuple[str, str]], **kw) -> Call:
    """Generation through `/v1/chat/completions` (the server applies its chat template)."""
    msgs = ([{"role": "system", "content": system}] if system else [])
    msgs += [{"role": r, "content": c} for r, c in turns]
    priority = int(kw.get("priority", Priority.CONVERSATION))
    body = {"messages": msgs, "max_tokens": kw.get("max_new_tokens", 32), "temperature": kw.get("temperature", 0.0),
            "top_p": kw.get("top_p", 1.0), "stream": True, "stream_options": {"include_usage": True},
            "priority": priority}
    if kw.get("stop"):
        body["stop"] = list(kw["stop"])
    return Call("generate", "/chat/completions", body, priority, kw.get("deadline_s"))


def score_call(prompt: str, candidates: Sequence[str], *, priority: int = Priority.PLANNING,
               deadline_s: float | None = None, prefix: str | None = None) -> Call:
    """Echo mode: each prompt + candidate comes back with its tokens' log-probabilities;
    `_prompt_len` (not sent) says where the candidate starts."""
    body = {"prompt": [prompt + c for c in candidates], "max_tokens": 0, "echo": True, "logprobs": 0,
            "temperature": 0.0, "priority": int(priority), "_prompt_len": len(prompt)}
    return Call("score", "/completions", body, int(priority), deadline_s)


def choices_of(req: dict) -> list[str] | None:
    """The choices a request constrains its answer to (vLLM's
    `structured_outputs.choice`, or its older `guided_choice`), None if it
    does not; ValueError with the reason if they are malformed."""
    structured = req.get("structured_outputs")
    if structured is not None and not isinstance(structured, dict):
        raise ValueError("structured_outputs must be an object")
    choices = (structured or {}).get("choice", req.get("guided_choice"))
    if choices is None:
        if structured:
            raise ValueError(f"structured_outputs supports only 'choice' here, not {sorted(structured)[:4]}")
        return None
    if not isinstance(choices, list) or not 1 <= len(choices) <= MAX_CHOICES:
        raise ValueError(f"structured_outputs.choice must be a list of 1..{MAX_CHOICES} strings")
    for c in choices:
        if not isinstance(c, str) or not c or len(c) > MAX_CHOICE_CHARS:
            raise ValueError(f"each choice must be a non-empty string of at most {MAX_CHOICE_CHARS} characters")
    return choices


def wants_usage(req: dict) -> bool:
    """Whether a streaming request asks for a last event with its `usage`."""
    options = req.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ValueError("stream_options must be an object")
    return bool(req.get("stream") and (options or {}).get("include_usage"))


def generation_kwargs(req: dict) -> dict[str, Any]:
    """`LLM.generate`'s keyword arguments from a completions request."""
    from .bans import check_bans
    stop = req.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    try:
        max_tokens = int(req.get("max_tokens", req.get("max_completion_tokens", 16)))
        kw: dict[str, Any] = {
            "max_new_tokens": max(0, min(max_tokens, MAX_TOKENS_CAP)),
            "temperature": float(req.get("temperature", 1.0)), "top_p": float(req.get("top_p", 1.0)),
            "seed": None if req.get("seed") is None else int(req["seed"]), "stop": stop[:MAX_STOPS],
            "priority": int(req.get("priority", Priority.CONVERSATION)),
            "deadline_s": None if req.get("hamlet_deadline_s") is None else float(req["hamlet_deadline_s"]),
            "prefix": req.get("hamlet_prefix"),
            "sentences": None if req.get("hamlet_sentences") is None else int(req["hamlet_sentences"])}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad parameter: {exc}") from None
    if not all(isinstance(s, str) for s in kw["stop"]):
        raise ValueError("stop must be a string or a list of strings")
    ban = req.get("bad_words") or []     # vLLM's field: phrases the text may not contain
    why = check_bans(ban) if isinstance(ban, list) else "bad_words must be a list of strings"
    if why is not None:
        raise ValueError(f"bad parameter: {why}")
    if ban:
        kw["ban"] = tuple(ban)
    return kw
