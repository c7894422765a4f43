"""The sans-I/O connection state machine: transitions as data; an illegal
input changes nothing."""
from __future__ import annotations

import copy

from protocol.codec import encode
from protocol.connection import (TRANSITIONS, Accepted, CloseRequired, ConnectionPolicy, Rejected,
                                 ServerConnection, State)
from protocol.errors import CloseCode, ErrorCode

HELLO = encode("hello", v=1, name="ann")


def joined(now: float = 0.0, **policy) -> ServerConnection:
    conn = ServerConnection(policy=ConnectionPolicy(**policy), now=now)
    assert isinstance(conn.receive(HELLO, now), Accepted)
    conn.join_accepted()
    return conn


def snapshot(conn: ServerConnection) -> dict:
    return copy.deepcopy({k: v for k, v in vars(conn).items() if k not in ("_errors", "rejected_total")})


def test_hello_then_join():
    conn = ServerConnection()
    assert conn.state is State.AWAIT_HELLO
    assert isinstance(conn.receive(HELLO, 0.0), Accepted)
    assert conn.state is State.JOINING
    conn.join_accepted()
    assert conn.state is State.JOINED


def test_refused_join_allows_another_hello():
    conn = ServerConnection()
    conn.receive(HELLO, 0.0)
    conn.join_refused()
    assert conn.state is State.AWAIT_HELLO
    assert isinstance(conn.receive(HELLO, 0.1), Accepted)


def test_messages_before_join_are_refused_and_change_nothing():
    conn = ServerConnection()
    before = snapshot(conn)
    for frame in (encode("say", text="hi"), encode("move", dir="n"), encode("bye")):
        event = conn.receive(frame, 0.0)
        assert isinstance(event, Rejected) and event.error.code == ErrorCode.NOT_JOINED
        assert snapshot(conn) == before


def test_second_hello_is_refused_and_changes_nothing():
    conn = joined()
    before = snapshot(conn)
    event = conn.receive(HELLO, 0.0)
    assert isinstance(event, Rejected) and event.error.code == ErrorCode.ALREADY_JOINED
    assert snapshot(conn) == before


def test_bad_frame_changes_nothing():
    conn = joined()
    before = snapshot(conn)
    event = conn.receive(b"\xc1", 0.0)
    assert isinstance(event, Rejected) and event.reply  # an error frame to send back
    assert snapshot(conn) == before


def test_ping_is_allowed_in_every_open_state():
    for state, allowed in TRANSITIONS.items():
        if state is not State.CLOSED:
            assert allowed.get("ping") is state


def test_rate_limit_refuses_then_recovers():
    conn = joined(rate_per_s=10, burst=5)
    say = encode("say", text="hi")
    results = [conn.receive(say, 1.0) for _ in range(7)]
    assert all(isinstance(r, Accepted) for r in results[:5])
    assert all(isinstance(r, Rejected) and r.error.code == ErrorCode.RATE_LIMITED for r in results[5:])
    assert isinstance(conn.receive(say, 1.5), Accepted)  # refilled


def test_too_many_errors_close_the_connection():
    conn = joined(max_errors=3, error_window_s=10)
    events = [conn.receive(b"\xc1", 0.0) for _ in range(4)]
    assert all(isinstance(e, Rejected) for e in events[:3])
    assert isinstance(events[3], CloseRequired) and events[3].code == CloseCode.TOO_MANY_ERRORS
    assert conn.state is State.CLOSED


def test_errors_outside_the_window_are_forgotten():
    conn = joined(max_errors=3, error_window_s=1)
    for i in range(10):
        assert isinstance(conn.receive(b"\xc1", float(i)), Rejected)


def test_oversized_frame_closes_with_1009():
    conn = joined()
    event = conn.receive(b"\x00" * 5000, 0.0)
    assert isinstance(event, CloseRequired) and event.code == CloseCode.MESSAGE_TOO_BIG


def test_bye_closes_the_protocol():
    conn = joined()
    assert isinstance(conn.receive(encode("bye"), 0.0), Accepted)
    assert conn.state is State.CLOSED
    assert isinstance(conn.receive(encode("ping", id=1), 0.0), CloseRequired)


def test_bye_with_seq_closes_the_protocol():
    conn = joined()
    event = conn.receive(encode("bye", seq=3), 0.0)
    assert isinstance(event, Accepted) and event.message.seq == 3
    assert conn.state is State.CLOSED


def test_refused_frames_of_every_new_kind_change_nothing():
    conn = joined()
    before = snapshot(conn)
    for frame in (b"\x82\xa1t\xa4ping\xa1t\xa4ping", encode("move", stop=False), encode("ping", id=float("nan")),
                  encode("hello", v=2, name="ann"), encode("say", text="\u0085"), b"\x91" * 10 + b"\x01"):
        assert isinstance(conn.receive(frame, 0.0), Rejected)
        assert snapshot(conn) == before


def test_a_bad_version_allows_another_hello():
    conn = ServerConnection()
    event = conn.receive(encode("hello", v=0, name="ann"), 0.0)
    assert isinstance(event, Rejected) and event.error.code == ErrorCode.BAD_VERSION
    assert conn.state is State.AWAIT_HELLO
    assert isinstance(conn.receive(HELLO, 0.1), Accepted)
