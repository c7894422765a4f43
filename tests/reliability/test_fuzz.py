"""Bad input at volume: over 10,000 malformed frames through the decoder
(hypothesis), and thousands over real sockets into a live server while
another client watches. The server never crashes, every bad frame gets a
documented error or close code, memory stays bounded, and the watcher's
updates keep flowing."""
from __future__ import annotations

import asyncio
import random
import resource

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_demo.client import HamletClient
from protocol.codec import Message, decode_client
from protocol.connection import CloseRequired, Rejected, ServerConnection
from protocol.errors import CLOSE_DOCS, ERROR_DOCS, ErrorCode, ProtocolError
from tests.waiting import settled

# Documented: what PROTOCOL.md's tables list (they are generated from these).
DOCUMENTED_ERRORS = {str(c) for c in ERROR_DOCS}
DOCUMENTED_CLOSES = {int(c) for c in CLOSE_DOCS}


def duplicate_key(frame: bytes) -> bytes:
    """The same map with its first entry given twice (msgpack.packb cannot)."""
    obj = msgpack.unpackb(frame)
    first = next(iter(obj.items()))
    head = bytes([0x80 | (len(obj) + 1)]) if len(obj) < 15 else b"\xde" + (len(obj) + 1).to_bytes(2, "big")
    return head + msgpack.packb(first[0]) + msgpack.packb(first[1]) + frame[1:]


# Frames a client written from the document got wrong, each with the code
# PROTOCOL.md gives it: structured mutations beside the random ones.
STRUCTURED = [
    (lambda f: duplicate_key(f), ErrorCode.BAD_FRAME),
    (lambda f: msgpack.packb({**msgpack.unpackb(f), b"x": 1}), ErrorCode.BAD_FRAME),  # a binary key
    (lambda f: msgpack.packb({**msgpack.unpackb(f), "z": [[[[1]]]]}), ErrorCode.BAD_FRAME),  # 5 deep
    (lambda f: msgpack.packb({**msgpack.unpackb(f), "seq": float("nan")}), ErrorCode.NOT_FINITE),
    (lambda f: msgpack.packb({**msgpack.unpackb(f), "seq": float("-inf")}), ErrorCode.NOT_FINITE),
]


def mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    if rng.random() < 0.1:
        return STRUCTURED[rng.randrange(len(STRUCTURED))][0](frame)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            del b[rng.randrange(len(b)):]
        elif op == 2:
            b[rng.randrange(len(b) + 1):0] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            b += rng.choice([b"\xdd\xff\xff\xff\xff", b"\xdb\x7f\xff\xff\xff", b"\xcb\x7f\xf8" + b"\0" * 6,
                             b"\x91" * 200, b"\xc7\x05\x01abcde"])
    return bytes(b)


SEEDS = [msgpack.packb(m) for m in (
    {"t": "hello", "v": 1, "name": "fuzz"}, {"t": "move", "to": [3, 4], "seq": 1}, {"t": "move", "dir": "n"},
    {"t": "say", "text": "hello", "to": 3}, {"t": "ping", "id": 9}, {"t": "bye"},
    {"t": "admin", "token": "x", "action": "kick", "target": 1})]


def test_structured_mutations_get_their_documented_codes():
    for seed in SEEDS:
        for make, code in STRUCTURED:
            result = decode_client(make(seed))
            assert isinstance(result, ProtocolError) and result.code == code, (msgpack.unpackb(seed), code)
    for text in ("c1 \u0085", "del \x7f", "nul \x00"):
        result = decode_client(msgpack.packb({"t": "say", "text": text}))
        assert isinstance(result, ProtocolError) and result.code == ErrorCode.BAD_VALUE


def corpus(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [mutate(rng, rng.choice(SEEDS)) for _ in range(n)]


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_decoder_on_5000_random_frames(data):
    result = decode_client(data)
    assert isinstance(result, (Message, ProtocolError))
    if isinstance(result, ProtocolError):
        assert str(result.code) in DOCUMENTED_ERRORS


def test_connection_state_machine_on_6000_mutated_frames():
    conn = ServerConnection()
    for i, frame in enumerate(corpus(6000, seed=1)):
        if conn.state == "closed":
            conn = ServerConnection(now=float(i))
        event = conn.receive(frame, float(i))  # one frame a second: no rate limiting
        if isinstance(event, Rejected):
            assert str(event.error.code) in DOCUMENTED_ERRORS
        elif isinstance(event, CloseRequired):
            assert int(event.code) in DOCUMENTED_CLOSES


def rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def test_server_survives_thousands_of_bad_frames_over_sockets(start_server):
    server = await start_server(tick_rate=20.0, ticks_per_tile=4)
    watcher = await HamletClient.connect(server.url)
    await watcher.join("watcher")
    walker = await HamletClient.connect(server.url)
    await walker.join("walker")
    frames = corpus(3000, seed=2)
    codes: dict[str, int] = {}
    closes: dict[int, int] = {}
    rss_before = rss_kib()

    def tally(c: HamletClient) -> None:
        for code, n in c.stats.errors.items():
            codes[code] = codes.get(code, 0) + n

    async def attacker(chunk: list[bytes], k: int) -> None:
        c = await HamletClient.connect(server.url)
        if k % 2:
            await c.join(f"fuzzer{k}")
        for frame in chunk:
            if c.closed:
                closes[c.close_code] = closes.get(c.close_code, 0) + 1
                tally(c)
                c = await HamletClient.connect(server.url)
            try:
                await c.send_raw(frame)
            except Exception:
                continue
            await asyncio.sleep(0.002)
        if not c.closed:
            try:  # the errors for its last frames (some come from the tick) have arrived
                await settled(server, c)
            except Exception:
                pass
        tally(c)
        await c.close()

    moving = asyncio.create_task(walk(walker))
    chunks = [frames[i::6] for i in range(6)]
    steps: list[tuple[int, int]] = []
    watching = asyncio.create_task(record_steps(watcher, walker.entity, steps))
    await asyncio.gather(*(attacker(chunk, k) for k, chunk in enumerate(chunks)))
    watching.cancel()
    moving.cancel()
    # How many frames are answered before each 4005 close cuts a connection
    # depends on the machine's load (889 of 3,000 in one loaded CI run, over
    # 1,000 alone): a floor that shows the attack was answered, not a figure.
    assert set(codes) <= DOCUMENTED_ERRORS and sum(codes.values()) > 600
    assert closes.get(4005, 0) >= 1  # persistent offenders are cut off
    assert set(closes) <= DOCUMENTED_CLOSES
    # the watcher kept getting the walker's updates: it steps every 0.2 s and
    # the attack lasts over a second
    assert len(steps) >= 3
    assert await watcher.ping() > 0 and await walker.say("still fine") > 0  # latency: bench/flood.py
    assert rss_kib() - rss_before < 100 * 1024  # bounded (ru_maxrss is in KiB)
    assert len(server.connections) <= 3


async def record_steps(watcher: HamletClient, entity: int, steps: list[tuple[int, int]]) -> None:
    """Append each new tile of the walker as the watcher's mirror shows it."""
    last = None
    while True:
        e = watcher.entities.get(entity)
        where = (e.x, e.y) if e is not None else None
        if where is not None and last is not None and where != last:
            steps.append(where)
        last = where
        await asyncio.sleep(0.02)


async def walk(c: HamletClient) -> None:
    while True:
        for d in ("e", "w"):
            await c.move(dir=d, wait=False)
            await asyncio.sleep(0.2)
