"""What `NatsLLM` (nats_llm.py) and `hamlet llm-worker` (nats_worker.py)
say to each other over NATS: subjects, the `nats://host:port/<world>` model
string, and bounded MessagePack requests and replies, checked strictly on
both sides (a bad request is answered with an error code, never half-run).

    hamlet.<world>.llm          request/reply, queue group "engines" (each
                                request reaches one worker): a generate,
                                score or info request -> a result, or a
                                refusal {code, message}
    hamlet.<world>.llm.cancel   every worker hears it: {"v", "id"}, stop
                                that job (its requester gave up)
    hamlet.<world>.llm.w.<id>   request/reply to the one worker whose
                                unique id is <id> (a client's choice by
                                load; the same requests and replies)
    hamlet.<world>.llm.load     each worker's load note (nats_load.py),
                                every ANNOUNCE_S and a goodbye as it stops

A request: {"v": 1, "op": "generate" | "score" | "info", "id": the
requester's job name ("<id>-r<n>" when sent again after its worker died),
then the keyword arguments of `LLM.generate` (GENERATE_FIELDS) or
`LLM.score` (SCORE_FIELDS)}; `deadline_s` is the time left when it was
sent (relative, so machines' clocks need not agree). A
reply: {"v": 1, "worker": its name, "kind": "generate" | "score", then
every field of `GenerationResult` / `ScoreResult`}, or {"v": 1, "worker",
"refused": {"code", "message"}} with a code of ERROR_CODES; an info request
is answered {"v": 1, "worker", "info": the engine's info()}. A worker that
announces its load adds its load note to each reply ("load"); a reply
without one (an older worker) is as good.
No torch here (the worker checks bans with bans.py, which imports it).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any
from urllib.parse import urlsplit

import msgpack

from .api import GenerationResult, ScoreResult, Status
from .calls import MAX_CHOICE_CHARS, MAX_CHOICES, MAX_STOPS, MAX_TOKENS_CAP
from .http_server import MAX_BODY
from .replies import BadAnswer

VERSION = 1
QUEUE_GROUP = "engines"
DEFAULT_NATS_PORT = 4222
# A message either way: llm-serve's body bound (1 MiB, far above any NPC
# prompt), which is also NATS's default max_payload.
MAX_MESSAGE = MAX_BODY
# Candidates per score: the choices llm-serve scores per request (an NPC
# picks among 3-8 actions or lines), each at most MAX_CHOICE_CHARS (a line is
# 280): that also keeps a reply's per-token log-probabilities far below
# MAX_MESSAGE (64 x ~150 tokens x ~14 bytes).
MAX_CANDIDATES = MAX_CHOICES
MAX_CANDIDATE_CHARS = MAX_CHOICE_CHARS
MAX_STOP_CHARS = 64        # a stop string is a turn marker or a newline, a few characters
MAX_ID_CHARS = 64          # a requester's job name: its client id and a counter
MAX_SENTENCES = 32         # an NPC line is 1-3 sentences
MAX_PRIORITY = 9           # Hamlet uses 0-3 (api.Priority); a few spare levels, bounded for metric labels
MAX_DEADLINE_S = 3600.0    # an NPC job an hour old is meaningless; bounds how long a worker holds one
MAX_TEMPERATURE = 100.0    # past ~2 the text is noise already
MAX_ERROR_CHARS = 1024     # a refusal's message: a sentence or two

# What a refused request is answered with.
BAD_REQUEST = "bad_request"    # not a well-formed request (the message says what)
TOO_LARGE = "too_large"        # over MAX_MESSAGE
BUSY = "busy"                  # the worker's queue is full: try another worker
CLOSING = "closing"            # the worker is shutting down: try another worker
INTERNAL = "internal"          # a bug in the worker; the worker keeps serving
ERROR_CODES = (BAD_REQUEST, TOO_LARGE, BUSY, CLOSING, INTERNAL)
RETRY_CODES = (BUSY, CLOSING)

_WORLD = re.compile(r"^[A-Za-z0-9_-]{1,32}$")   # as a region's world name (server/cluster/wire.py)
_INT = (int,)
_NUMBER = (int, float)
# name -> (types, default); the defaults are `LLM.generate`'s and `LLM.score`'s.
GENERATE_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "prompt": ((str,), ""), "max_new_tokens": (_INT, 32), "temperature": (_NUMBER, 0.0),
    "top_p": (_NUMBER, 1.0), "seed": (_INT, None), "stop": ((list,), []), "priority": (_INT, 1),
    "deadline_s": (_NUMBER, None), "prefix": ((str,), None), "sentences": (_INT, None), "ban": ((list,), [])}
SCORE_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "prompt": ((str,), ""), "candidates": ((list,), []), "priority": (_INT, 2),
    "deadline_s": (_NUMBER, None), "prefix": ((str,), None)}
_ENVELOPE = {"v", "op", "id"}


class RequestError(ValueError):
    """A request the worker refuses, with the code its reply carries."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def llm_subject(world: str) -> str:
    return f"hamlet.{check_world(world)}.llm"


def cancel_subject(world: str) -> str:
    return f"hamlet.{check_world(world)}.llm.cancel"


def load_subject(world: str) -> str:
    return f"hamlet.{check_world(world)}.llm.load"


def direct_subject(world: str, worker_id: str) -> str:
    """The subject of the one worker with unique id `worker_id` (a subject token)."""
    if not isinstance(worker_id, str) or not _WORLD.match(worker_id):
        raise ValueError(f"worker id {worker_id!r}: letters, digits, '_' and '-', 1-32")
    return f"hamlet.{check_world(world)}.llm.w.{worker_id}"


def check_world(world: str) -> str:
    if not isinstance(world, str) or not _WORLD.match(world):
        raise ValueError(f"world name {world!r}: letters, digits, '_' and '-', 1-32")
    return world


def nats_address(model: str) -> tuple[str, str] | None:
    """(server URL, world) of a `nats://host[:port]/<world>` model string,
    None when `model` is no nats:// URL; ValueError saying what is wrong."""
    if not model.strip().startswith("nats://"):
        return None
    try:
        parts = urlsplit(model.strip())
        host, port = parts.hostname, parts.port or DEFAULT_NATS_PORT
    except ValueError:       # a port that is not a number
        host = None
    world = parts.path.strip("/") if host else ""
    if not host or "," in model or parts.query or parts.fragment or not _WORLD.match(world):
        raise ValueError(f"{model!r}: a NATS queue group of engine workers is nats://host:port/<world> "
                         "(the world name the workers were started with: letters, digits, '_', '-')")
    return f"nats://{host}:{port}", world


def pack(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """The object in `data`; RequestError if it is too large or not MessagePack."""
    if len(data) > MAX_MESSAGE:
        raise RequestError(TOO_LARGE, f"a message of {len(data)} bytes is over {MAX_MESSAGE}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for bad input
        raise RequestError(BAD_REQUEST, f"not MessagePack: {type(exc).__name__}") from None


# -- requests -------------------------------------------------------------------
def request(op: str, job: str, **kw: Any) -> dict:
    """A request of `op` for the job named `job`, from `LLM.generate`'s or
    `LLM.score`'s keyword arguments (sequences become lists, enums ints)."""
    out: dict[str, Any] = {"v": VERSION, "op": op, "id": job}
    for name, value in kw.items():
        if isinstance(value, (tuple, list)):
            value = list(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = int(value)      # Priority -> int
        out[name] = value
    return out


def check_request(msg: Any) -> dict:
    """The request in `msg` with every field of its op, defaults filled in;
    RequestError(BAD_REQUEST) saying what is wrong."""
    if not isinstance(msg, dict) or msg.get("v") != VERSION:
        raise RequestError(BAD_REQUEST, f"a request is a map with v={VERSION}")
    op, job = msg.get("op"), msg.get("id")
    if not isinstance(job, str) or not 1 <= len(job) <= MAX_ID_CHARS:
        raise RequestError(BAD_REQUEST, f"id must be a string of 1..{MAX_ID_CHARS} characters")
    if op == "info":
        fields: dict = {}
    elif op in ("generate", "score"):
        fields = GENERATE_FIELDS if op == "generate" else SCORE_FIELDS
    else:
        raise RequestError(BAD_REQUEST, "op must be generate, score or info")
    unknown = set(msg) - _ENVELOPE - set(fields)
    if unknown:
        raise RequestError(BAD_REQUEST, f"unknown fields for {op}: {sorted(map(str, unknown))[:4]}")
    out = {"op": op, "id": job}
    for name, (types, default) in fields.items():
        value = msg.get(name, default)
        if (value is None and default is not None) or (
                value is not None and (not isinstance(value, types) or isinstance(value, bool))):
            what = " or ".join(t.__name__ for t in types) + (" or None" if default is None else "")
            raise RequestError(BAD_REQUEST, f"{name} must be {what}")
        out[name] = value
    if op != "info":
        _check_values(out)
    return out


def _check_values(req: dict) -> None:
    def bad(why: str) -> RequestError:
        return RequestError(BAD_REQUEST, why)

    if not 0 <= req["priority"] <= MAX_PRIORITY:
        raise bad(f"priority must be 0..{MAX_PRIORITY} (lower is more urgent)")
    d = req["deadline_s"]
    if d is not None and not (math.isfinite(d) and 0 <= d <= MAX_DEADLINE_S):
        raise bad(f"deadline_s must be None or 0..{MAX_DEADLINE_S:g} seconds")
    if req["op"] == "score":
        cands = req["candidates"]
        if len(cands) > MAX_CANDIDATES or not all(
                isinstance(c, str) and len(c) <= MAX_CANDIDATE_CHARS for c in cands):
            raise bad(f"candidates must be a list of 0..{MAX_CANDIDATES} strings of at most "
                      f"{MAX_CANDIDATE_CHARS} characters")
        return
    if not 0 <= req["max_new_tokens"] <= MAX_TOKENS_CAP:
        raise bad(f"max_new_tokens must be 0..{MAX_TOKENS_CAP}")
    t, p = req["temperature"], req["top_p"]
    if not (math.isfinite(t) and 0 <= t <= MAX_TEMPERATURE):
        raise bad(f"temperature must be 0..{MAX_TEMPERATURE:g}")
    if not (math.isfinite(p) and 0 < p <= 1):
        raise bad("top_p must be in (0, 1]")
    stop = req["stop"]
    if len(stop) > MAX_STOPS or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stop):
        raise bad(f"stop must be a list of at most {MAX_STOPS} strings of 1..{MAX_STOP_CHARS} characters")
    if req["sentences"] is not None and not 1 <= req["sentences"] <= MAX_SENTENCES:
        raise bad(f"sentences must be None or 1..{MAX_SENTENCES}")
    if req["ban"]:
        from .bans import check_bans      # imports torch: only when there are bans to check
        why = check_bans(req["ban"])
        if why is not None:
            raise bad(why)
    req["stop"], req["ban"] = tuple(stop), tuple(req["ban"])


def call_kwargs(req: dict) -> dict:
    """The keyword arguments of `LLM.generate` / `LLM.score` in a checked request."""
    fields = GENERATE_FIELDS if req["op"] == "generate" else SCORE_FIELDS
    return {name: req[name] for name in fields if name not in ("prompt", "candidates")}


# -- replies --------------------------------------------------------------------
def result_reply(result: GenerationResult | ScoreResult, worker: str) -> dict:
    kind = "score" if isinstance(result, ScoreResult) else "generate"
    return {"v": VERSION, "worker": worker, "kind": kind, **dataclasses.asdict(result)}


def error_reply(code: str, message: str, worker: str) -> dict:
    return {"v": VERSION, "worker": worker, "refused": {"code": code, "message": message[:MAX_ERROR_CHARS]}}


def read_reply(data: bytes) -> dict:
    """The map of a reply; BadAnswer if it is not one."""
    try:
        msg = unpack(data)
    except RequestError as exc:
        raise BadAnswer(str(exc)) from None
    if not isinstance(msg, dict) or msg.get("v") != VERSION or not isinstance(msg.get("worker"), str):
        raise BadAnswer(f"a worker's reply is not a map with v={VERSION} and its name")
    refused = msg.get("refused")
    if refused is not None and not (isinstance(refused, dict) and refused.get("code") in ERROR_CODES
                                    and isinstance(refused.get("message"), str)):
        raise BadAnswer("a worker's refusal has no known code and message")
    return msg


_OPTIONAL_STR, _OPTIONAL_NUMBER = (str, type(None)), (float, int, type(None))
_RESULT_TYPES: dict[str, type | tuple[type, ...]] = {
    "text": str, "status": str, "finish_reason": _OPTIONAL_STR, "error": _OPTIONAL_STR, "ttft_s": _OPTIONAL_NUMBER,
    "latency_s": _OPTIONAL_NUMBER, "prompt_tokens": int, "completion_tokens": (int, type(None)),
    "token_ids": list, "logprobs": list, "token_logprobs": list, "token_offsets": list}
_STATUSES = {Status.OK, Status.DEADLINE, Status.CANCELLED, Status.OVERLOADED, Status.ERROR}


def result_of(msg: dict, kind: str, candidates: int = 0) -> GenerationResult | ScoreResult:
    """The result a reply carries for a job of `kind` (a score of
    `candidates` candidates); BadAnswer saying what is wrong."""
    cls = ScoreResult if kind == "score" else GenerationResult
    if msg.get("kind") != kind:
        raise BadAnswer(f"a {kind} job was answered with a {msg.get('kind')!r} result")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in msg:
            raise BadAnswer(f"the reply has no {f.name}")
        value = msg[f.name]
        if not isinstance(value, _RESULT_TYPES[f.name]) or isinstance(value, bool):
            raise BadAnswer(f"the reply's {f.name} is {type(value).__name__}")
        values[f.name] = value
    if values["status"] not in _STATUSES:
        raise BadAnswer(f"the reply's status {values['status']!r} is not one of {sorted(_STATUSES)}")
    if cls is GenerationResult:
        if not all(isinstance(t, int) for t in values["token_ids"]):
            raise BadAnswer("the reply's token_ids are not integers")
        return GenerationResult(**values)
    ok = values["status"] == Status.OK
    rows = values["token_logprobs"], values["token_offsets"]
    if ok and not (len(values["logprobs"]) == len(rows[0]) == len(rows[1]) == candidates):
        raise BadAnswer(f"the reply scores {len(values['logprobs'])} candidates of {candidates}")
    if not all(isinstance(v, (int, float)) for v in values["logprobs"]) or not all(
            isinstance(row, list) and all(isinstance(v, (int, float)) for v in row) for row in rows[0]) or not all(
            isinstance(row, list) and all(isinstance(v, int) for v in row) for row in rows[1]):
        raise BadAnswer("the reply's log-probabilities or offsets are not numbers")
    return ScoreResult(**values)
