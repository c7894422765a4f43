"""The codec on literal bytes: every kind of bad input gets its documented
error code, and decoding never raises."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codec import Message, decode_client, decode_server, encode
from protocol.errors import CloseCode, ErrorCode, ProtocolError
from protocol.schema import CLIENT_MESSAGES, SERVER_MESSAGES


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def code_of(data) -> ErrorCode:
    result = decode_client(data)
    assert isinstance(result, ProtocolError), result
    return result.code


def test_valid_messages_decode():
    hello = decode_client(bytes.fromhex("83a174a568656c6c6fa17601a46e616d65a3616e6e"))
    assert isinstance(hello, Message) and hello.type == "hello"
    assert hello.data == {"v": 1, "name": "ann"}
    assert decode_client(pack({"t": "move", "to": [3, 4], "seq": 7})).data == {"to": [3, 4], "seq": 7}
    assert decode_client(pack({"t": "move", "dir": "ne"})).data == {"dir": "ne"}
    assert decode_client(pack({"t": "say", "text": "héllo ✓", "to": 12})).data["text"] == "héllo ✓"
    assert decode_client(pack({"t": "ping", "id": 2**32 - 1})).type == "ping"
    assert decode_client(pack({"t": "bye"})).type == "bye"


@pytest.mark.parametrize("data, code", [
    (b"", ErrorCode.BAD_FRAME),  # empty frame
    (b"\xc1", ErrorCode.BAD_FRAME),  # never-used MessagePack byte
    (b"\x82\xa1t\xa4ping", ErrorCode.BAD_FRAME),  # truncated map
    (pack({"t": "ping", "id": 1}) + b"\x00", ErrorCode.BAD_FRAME),  # trailing bytes
    (b"\xdd\xff\xff\xff\xff", ErrorCode.BAD_FRAME),  # array declaring 4 billion items
    (b"\xdb\xff\xff\xff\xff" + b"a" * 10, ErrorCode.BAD_FRAME),  # string declaring 4 GiB
    (b"\x91" * 2000 + b"\x01", ErrorCode.BAD_FRAME),  # nesting 2,000 deep
    (b"\xc7\x01\x05a", ErrorCode.BAD_FRAME),  # extension type
    (pack([1, 2, 3]), ErrorCode.BAD_FRAME),  # not a map
    (pack({1: 2}), ErrorCode.BAD_FRAME),  # non-string key
    (pack({"id": 1}), ErrorCode.UNKNOWN_TYPE),  # no type
    (pack({"t": "teleport", "to": [1, 1]}), ErrorCode.UNKNOWN_TYPE),
    (pack({"t": 5}), ErrorCode.UNKNOWN_TYPE),
    (pack({"t": "hello", "name": "ann"}), ErrorCode.MISSING_FIELD),
    (pack({"t": "say"}), ErrorCode.MISSING_FIELD),
    (pack({"t": "hello", "v": 1, "name": "ann", "admin": True}), ErrorCode.UNKNOWN_FIELD),
    (pack({"t": "hello", "v": "1", "name": "ann"}), ErrorCode.BAD_TYPE),
    (pack({"t": "hello", "v": True, "name": "ann"}), ErrorCode.BAD_TYPE),  # bool is not int
    (pack({"t": "say", "text": b"bytes"}), ErrorCode.BAD_TYPE),
    (pack({"t": "move", "to": [1.5, 2]}), ErrorCode.BAD_TYPE),
    (pack({"t": "move", "to": [1, 2, 3]}), ErrorCode.BAD_TYPE),
    (pack({"t": "move", "to": [float("nan"), 2]}), ErrorCode.NOT_FINITE),
    (pack({"t": "move", "to": [float("inf"), 2]}), ErrorCode.NOT_FINITE),
    (pack({"t": "move", "to": [-1, 2]}), ErrorCode.OUT_OF_RANGE),
    (pack({"t": "ping", "id": -1}), ErrorCode.OUT_OF_RANGE),
    (pack({"t": "ping", "id": 2**63}), ErrorCode.OUT_OF_RANGE),
    (pack({"t": "say", "text": "x" * 281}), ErrorCode.TOO_LONG),
    (pack({"t": "hello", "v": 1, "name": "n" * 25}), ErrorCode.TOO_LONG),
    (pack({"t": "say", "text": ""}), ErrorCode.BAD_VALUE),
    (pack({"t": "say", "text": "bell\x07"}), ErrorCode.BAD_VALUE),
    (pack({"t": "hello", "v": 1, "name": "<script>"}), ErrorCode.BAD_VALUE),
    (pack({"t": "hello", "v": 1, "name": " ann"}), ErrorCode.BAD_VALUE),
    (pack({"t": "move", "dir": "up"}), ErrorCode.BAD_VALUE),
    (pack({"t": "move"}), ErrorCode.BAD_VALUE),  # none of to/dir/place/stop
    (pack({"t": "move", "to": [1, 1], "dir": "n"}), ErrorCode.BAD_VALUE),  # two of them
    (pack({"t": "give", "to": 2, "item": "Bread", "n": 1}), ErrorCode.BAD_VALUE),  # items are lowercase
    (pack({"t": "give", "to": 2, "item": "bread", "n": 0}), ErrorCode.OUT_OF_RANGE),
    (pack({"t": "give", "to": 2, "item": "bread", "n": -3}), ErrorCode.OUT_OF_RANGE),
    (pack({"t": "give", "to": 2, "item": "bread", "n": 1.5}), ErrorCode.BAD_TYPE),
    (pack({"t": "give", "to": 2, "item": "bread", "n": float("nan")}), ErrorCode.NOT_FINITE),
    (pack({"t": "give", "to": 2, "item": "b" * 25, "n": 1}), ErrorCode.TOO_LONG),
    (pack({"t": "buy", "from": 2, "item": "bread", "n": 1}), ErrorCode.MISSING_FIELD),
    (pack({"t": "buy", "from": 2, "item": "bread", "n": 1, "max_price": -1}), ErrorCode.OUT_OF_RANGE),
    (pack({"t": "offer", "to": 2, "give": [["eggs", 1]] * 5}), ErrorCode.TOO_LONG),
    (pack({"t": "offer", "to": 2, "give": [["eggs", 0]]}), ErrorCode.OUT_OF_RANGE),
    (pack({"t": "offer", "to": 2, "give": [["eggs"]]}), ErrorCode.BAD_TYPE),
    (pack({"t": "offer", "to": 2, "give": {"eggs": 1}}), ErrorCode.BAD_TYPE),
    (pack({"t": "offer", "to": 2, "want": [["Eggs!", 1]]}), ErrorCode.BAD_VALUE),
    (pack({"t": "offer", "to": 2, "want": [["eggs", 1.0]]}), ErrorCode.BAD_TYPE),
    ("text frame", ErrorCode.TEXT_FRAME),
])
def test_bad_input_gets_its_code(data, code):
    assert code_of(data) == code


def test_oversized_frame_requires_close_1009():
    result = decode_client(pack({"t": "say", "text": "x" * 100}) + b"\x00" * 5000)
    assert isinstance(result, ProtocolError)
    assert result.close == CloseCode.MESSAGE_TOO_BIG


def test_error_carries_the_seq_of_the_bad_message():
    result = decode_client(pack({"t": "say", "text": "x" * 300, "seq": 41}))
    assert isinstance(result, ProtocolError) and result.seq == 41


def test_every_client_type_round_trips():
    samples = {"hello": {"v": 1, "name": "Ann B."}, "move": {"place": "market"},
               "say": {"text": "hi"}, "ping": {"id": 3}, "bye": {},
               "admin": {"token": "t", "action": "broadcast", "text": "hello all"},
               "give": {"to": 3, "item": "coins", "n": 5}, "buy": {"from": 2, "item": "bread", "n": 1, "max_price": 6},
               "sell": {"to": 2, "item": "eggs", "n": 3, "min_price": 0}, "shop": {"at": 2},
               "offer": {"to": 4, "give": [["eggs", 2]], "want_coins": 5}, "accept": {"offer": 1},
               "decline": {"offer": 1}, "board": {}, "turn_in": {"quest": 7}}
    assert set(samples) == set(CLIENT_MESSAGES)
    for type_, fields in samples.items():
        msg = decode_client(encode(type_, **fields))
        assert isinstance(msg, Message) and msg.type == type_ and msg.data == fields


def test_server_messages_decode_and_tolerate_new_fields():
    frame = encode("pong", id=1, tick=5, future_field="x")
    msg = decode_server(frame)
    assert isinstance(msg, Message) and msg.data == {"id": 1, "tick": 5}
    assert isinstance(decode_server(b"\xc1"), ProtocolError)
    assert "state" in SERVER_MESSAGES and "welcome" in SERVER_MESSAGES


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_decode_never_raises_on_random_bytes(data):
    result = decode_client(data)
    assert isinstance(result, (Message, ProtocolError))


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64 - 1) | st.floats() | st.text(max_size=40)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(CLIENT_MESSAGES)), st.dictionaries(st.sampled_from(
    ["v", "name", "token", "seq", "to", "dir", "place", "stop", "text", "id", "x"]), json_like, max_size=5))
def test_decode_never_raises_on_structured_junk(type_, fields):
    try:
        data = pack({"t": type_, **fields})
    except (OverflowError, ValueError):
        return
    result = decode_client(data)
    assert isinstance(result, (Message, ProtocolError))


# -- what a client written from PROTOCOL.md alone ran into ----------------------

NAN, INF = float("nan"), float("inf")


def test_every_message_may_carry_seq():
    for frame in (pack({"t": "ping", "id": 1, "seq": 9}), pack({"t": "bye", "seq": 9})):
        msg = decode_client(frame)
        assert isinstance(msg, Message) and msg.seq == 9


@pytest.mark.parametrize("obj", [
    {"t": "ping", "id": NAN}, {"t": "ping", "id": INF}, {"t": "hello", "v": NAN, "name": "ann"},
    {"t": "ping", "id": 1, "seq": -INF}, {"t": "say", "text": "hi", "to": NAN},
    {"t": "admin", "token": "x", "action": "kick", "target": INF},
    {"t": "move", "to": [1, NAN]}, {"t": "move", "to": [INF, 1]},
])
def test_nan_and_infinity_are_not_finite_in_every_numeric_field(obj):
    assert code_of(pack(obj)) == ErrorCode.NOT_FINITE


def test_not_finite_keeps_a_good_seq_and_a_float_is_still_bad_type():
    result = decode_client(pack({"t": "say", "text": "hi", "to": NAN, "seq": 5}))
    assert isinstance(result, ProtocolError) and result.seq == 5
    assert code_of(pack({"t": "ping", "id": 1.0})) == ErrorCode.BAD_TYPE


def test_stop_must_be_true():
    assert decode_client(pack({"t": "move", "stop": True})).data == {"stop": True}
    assert code_of(pack({"t": "move", "stop": False})) == ErrorCode.BAD_VALUE
    assert code_of(pack({"t": "move", "stop": 1})) == ErrorCode.BAD_TYPE


@pytest.mark.parametrize("v", [0, -1, 2, 2**40, 2**64 - 1, -(2**63)])
def test_any_other_integer_version_is_bad_version(v):
    assert code_of(pack({"t": "hello", "v": v, "name": "ann"})) == ErrorCode.BAD_VERSION


@pytest.mark.parametrize("obj", [
    {"t": "hello", "v": 1, "name": "ann", "token": ""}, {"t": "move", "place": ""},
    {"t": "admin", "token": "", "action": "snapshot"}, {"t": "hello", "v": 1, "name": ""},
])
def test_empty_strings_are_bad_value(obj):
    assert code_of(pack(obj)) == ErrorCode.BAD_VALUE


def test_a_name_is_checked_with_a_token_too():
    assert code_of(pack({"t": "hello", "v": 1, "name": "<x>", "token": "t" * 32})) == ErrorCode.BAD_VALUE


def test_duplicate_keys_are_a_bad_frame():
    # {t: move, to: [1, 2], t: ping}: msgpack.packb cannot write this, so by hand
    frame = b"\x83\xa1t\xa4move\xa2to\x92\x01\x02\xa1t\xa4ping"
    assert code_of(frame) == ErrorCode.BAD_FRAME
    eight_ids = b"\x89\xa1t\xa4ping" + b"\xa2id\x01" * 8
    assert code_of(eight_ids) == ErrorCode.BAD_FRAME
    assert decode_client(b"\x82\xa1t\xa4ping\xa2id\x01").type == "ping"  # the same, once each


@pytest.mark.parametrize("text", ["next\u0085line", "c1\u009f", "del\x7f", "nul\x00", "tab\t", "cr\r"])
def test_control_characters_but_newline_are_refused(text):
    assert code_of(pack({"t": "say", "text": text})) == ErrorCode.BAD_VALUE


def test_newline_and_other_text_are_fine():
    for text in ("two\nlines", "¡olé! ✓ 你好 \u00a0nbsp"):
        assert decode_client(pack({"t": "say", "text": text})).data["text"] == text


def test_text_frames_are_measured_in_bytes_before_anything_else():
    assert code_of("x" * 4096) == ErrorCode.TEXT_FRAME
    for big in ("x" * 4097, "ж" * 2100):  # 2,100 code points, 4,200 bytes of UTF-8
        result = decode_client(big)
        assert isinstance(result, ProtocolError) and result.close == CloseCode.MESSAGE_TOO_BIG


def test_keys_must_be_strings():
    assert code_of(pack({"t": "ping", b"id": 1})) == ErrorCode.BAD_FRAME
    assert code_of(pack({b"t": "ping", "id": 1})) == ErrorCode.BAD_FRAME
    assert code_of(pack({"t": "ping", "id": 1, 7: 1})) == ErrorCode.BAD_FRAME


def test_nesting_is_limited_to_four_levels():
    assert code_of(pack({"t": "move", "to": [[[1]], 2]})) == ErrorCode.BAD_TYPE  # 4 deep: decoded, then refused
    assert code_of(pack({"t": "move", "to": [[[[1]]], 2]})) == ErrorCode.BAD_FRAME  # 5 deep
    assert code_of(b"\x91" * 1000 + b"\x01") == ErrorCode.BAD_FRAME
    assert code_of(b"\x81\xa1t" * 5 + b"\x01") == ErrorCode.BAD_FRAME  # maps count too


def test_values_per_frame_are_limited():
    assert code_of(pack({"t": "say", "text": "hi", "x": list(range(20))})) == ErrorCode.UNKNOWN_FIELD
    assert code_of(pack({"t": "say", "text": "hi", "x": list(range(100))})) == ErrorCode.BAD_FRAME
    assert code_of(pack([{}] * 1000)) == ErrorCode.BAD_FRAME


def test_header_bytes_inside_strings_and_binaries_are_not_containers():
    assert code_of(pack({"t": "say", "text": b"\x91" * 50})) == ErrorCode.BAD_TYPE
    assert decode_client(pack({"t": "say", "text": "\u0391" * 50})).data["text"] == "\u0391" * 50
