"""The per-connection state machine of the server side, sans-I/O.

Bytes go in (`receive`), one event comes out. Which message types each state
accepts, and the state each one leads to, is a table (`TRANSITIONS`), after
h11. An illegal input yields a `Rejected` event and changes nothing: not the
state, not the rate budget of legal messages. The asyncio layer in
`server/net.py` only moves bytes between the socket and this object.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.codec import Message, decode_client, encode
from protocol.errors import CloseCode, ErrorCode, ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits


class State(enum.StrEnum):
    AWAIT_HELLO = "await_hello"
    JOINING = "joining"  # hello accepted by the protocol, the world decides
    JOINED = "joined"
    CLOSED = "closed"


# state -> {message type: next state}. Anything absent is refused.
TRANSITIONS: dict[State, dict[str, State]] = {
    State.AWAIT_HELLO: {"hello": State.JOINING, "ping": State.AWAIT_HELLO, "admin": State.AWAIT_HELLO},
    State.JOINING: {"ping": State.JOINING},
    State.JOINED: {"move": State.JOINED, "say": State.JOINED, "ping": State.JOINED,
                   "bye": State.CLOSED, "admin": State.JOINED, "give": State.JOINED, "buy": State.JOINED,
                   "sell": State.JOINED, "shop": State.JOINED, "offer": State.JOINED, "accept": State.JOINED,
                   "decline": State.JOINED, "board": State.JOINED, "turn_in": State.JOINED},
    State.CLOSED: {},
}


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    # A person types or clicks a few times a second; bots in `chat` mode send
    # a few messages a second. 20/s sustained with bursts of 40 leaves them
    # room and keeps one client's share of the tick's input budget small.
    rate_per_s: float = 20.0
    burst: int = 40
    # Rejected frames tolerated within `error_window_s` before the server
    # gives up on the peer: enough for a buggy client to see and log its
    # errors, too few for a fuzzer to cost the server much.
    max_errors: int = 50
    error_window_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Accepted:
    message: Message


@dataclass(frozen=True, slots=True)
class Rejected:
    error: ProtocolError
    reply: bytes  # the encoded `error` message to send back


@dataclass(frozen=True, slots=True)
class CloseRequired:
    code: CloseCode
    reason: str
    error: ProtocolError | None = None


Event = Accepted | Rejected | CloseRequired


def error_frame(err: ProtocolError) -> bytes:
    return encode("error", code=str(err.code), msg=err.message, seq=err.seq)


class ServerConnection:
    """Protocol state of one client connection. Never raises on input."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS,
                 policy: ConnectionPolicy = ConnectionPolicy(), now: float = 0.0) -> None:
        self.limits = limits
        self.policy = policy
        self.state = State.AWAIT_HELLO
        self._tokens = float(policy.burst)
        self._refill_at = now
        self._errors: list[float] = []  # timestamps of recent rejections
        self.rejected_total = 0

    # -- input ---------------------------------------------------------------
    def receive(self, data: bytes | str, now: float) -> Event:
        if self.state is State.CLOSED:
            return CloseRequired(CloseCode.NORMAL, "connection closed")
        decoded = decode_client(data, self.limits)
        if isinstance(decoded, ProtocolError):
            return self._reject(decoded, now)
        allowed = TRANSITIONS[self.state]
        if decoded.type not in allowed:
            code = ErrorCode.ALREADY_JOINED if decoded.type == "hello" else ErrorCode.NOT_JOINED
            why = "already joined" if decoded.type == "hello" else f"{decoded.type} is not allowed before joining"
            if self.state is State.JOINING:
                why = "wait for welcome before sending " + decoded.type
            return self._reject(ProtocolError(code, why, decoded.seq), now)
        if not self._take_token(now):
            return self._reject(ProtocolError(ErrorCode.RATE_LIMITED,
                                              f"more than {self.policy.rate_per_s:g} messages per second",
                                              decoded.seq), now)
        self.state = allowed[decoded.type]
        return Accepted(decoded)

    def _take_token(self, now: float) -> bool:
        p = self.policy
        self._tokens = min(float(p.burst), self._tokens + (now - self._refill_at) * p.rate_per_s)
        self._refill_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _reject(self, err: ProtocolError, now: float) -> Event:
        self.rejected_total += 1
        if err.close is not None:
            self.state = State.CLOSED
            return CloseRequired(err.close, err.message, err)
        horizon = now - self.policy.error_window_s
        self._errors = [t for t in self._errors if t > horizon]
        self._errors.append(now)
        if len(self._errors) > self.policy.max_errors:
            self.state = State.CLOSED
            return CloseRequired(CloseCode.TOO_MANY_ERRORS,
                                 f"more than {self.policy.max_errors} rejected messages in "
                                 f"{self.policy.error_window_s:g} s", err)
        return Rejected(err, error_frame(err))

    # -- decisions of the world ----------------------------------------------
    def join_accepted(self) -> None:
        assert self.state is State.JOINING, self.state
        self.state = State.JOINED

    def join_refused(self) -> None:
        assert self.state is State.JOINING, self.state
        self.state = State.AWAIT_HELLO

    def close(self) -> None:
        self.state = State.CLOSED
