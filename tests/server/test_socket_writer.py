"""The writer thread and the transport guard (server/socket_writer.py): bytes
reach the peer in the order they were written, whoever wrote them, also
when the socket takes only part of a write; close waits for the frames in
flight; the duplicate descriptor is closed only when the thread lets go."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from server.socket_writer import GuardedTransport, SocketWriter
from tests.waiting import until


class _Sink(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(None)


async def _pair(sndbuf: int | None = None, reading: bool = True):
    """A loopback connection: (the listening server, our transport, the peer's sink)."""
    loop = asyncio.get_running_loop()
    sinks: list[_Sink] = []

    def make():
        s = _Sink()
        sinks.append(s)
        return s

    server = await loop.create_server(make, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    await until(lambda: sinks, what="the accepted connection")
    if sndbuf:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    return server, transport, sinks[0]


def _guard(transport) -> GuardedTransport:
    return GuardedTransport(transport, os.dup(transport.get_extra_info("socket").fileno()))


async def test_frames_from_the_thread_and_the_loop_arrive_in_order():
    server, transport, sink = await _pair()
    writer = SocketWriter(asyncio.get_running_loop())
    g = _guard(transport)
    try:
        expected = bytearray()
        for i in range(50):
            job = [f"tick{i}-a;".encode(), f"tick{i}-b;".encode()]
            if g.idle():
                writer.submit([(g, job)])
            else:
                g.writelines(job)          # the thread still holds the last tick: held in order
            g.write(f"pong{i};".encode())  # what websockets writes meanwhile
            expected += b"".join(job) + f"pong{i};".encode()
            if i % 7 == 0:
                await asyncio.sleep(0)
        await until(lambda: len(sink.data) >= len(expected))
        assert bytes(sink.data) == bytes(expected)
        assert not g.busy and g.held == []
    finally:
        writer.close()
        g.abort()
        server.close()


async def test_a_partial_write_is_finished_by_the_transport_before_what_waited():
    server, transport, sink = await _pair(sndbuf=4096)
    writer = SocketWriter(asyncio.get_running_loop())
    g = _guard(transport)
    try:
        big = bytes(range(256)) * 8192             # 2 MiB: more than the socket takes at once
        sink.transport.pause_reading()             # the peer does not read for now
        writer.submit([(g, [b"head;", big])])
        assert g.busy and g.get_write_buffer_size() >= len(big)
        g.write(b";after")
        g.close()                                  # waits for the frames in flight
        assert not transport.is_closing() and g.is_closing()
        await until(lambda: not g.busy)           # the thread wrote what the socket took
        sink.transport.resume_reading()
        await asyncio.wait_for(sink.closed, 10)
        assert bytes(sink.data) == b"head;" + big + b";after"
        assert writer.partial_writes == 1
        assert g.fd == -1                          # our duplicate went with the connection
    finally:
        writer.close()
        server.close()


async def test_the_duplicate_descriptor_is_kept_while_the_thread_holds_it():
    server, transport, sink = await _pair()
    g = _guard(transport)
    fd = g.fd
    g.busy = True                                  # as if the thread held it
    g.drop()
    assert g.fd == fd and os.fstat(fd)             # not closed under a write
    g.finished(b"")
    assert g.fd == -1
    with pytest.raises(OSError):
        os.fstat(fd)
    g.abort()
    server.close()


async def test_abort_drops_what_waits_and_the_thread_writes_nothing_after():
    server, transport, sink = await _pair()
    g = _guard(transport)
    g.busy = True
    g.write(b"never")
    g.abort()
    assert g.held == [] and transport.is_closing()
    g.finished(b"rest")                            # the thread reports back after the abort
    await asyncio.wait_for(sink.closed, 5)
    assert b"never" not in sink.data and b"rest" not in sink.data
    server.close()


# -- supervision: injected faults --------------------------------------------
async def test_a_fault_on_one_connection_aborts_that_connection_and_the_thread_carries_on(monkeypatch):
    server1, t1, sink1 = await _pair()
    server2, t2, sink2 = await _pair()
    writer = SocketWriter(asyncio.get_running_loop())
    g1, g2 = _guard(t1), _guard(t2)
    real_writev = os.writev

    def writev(fd, parts):
        if fd == g1.fd:
            raise RuntimeError("injected fault")
        return real_writev(fd, parts)

    monkeypatch.setattr(os, "writev", writev)
    try:
        writer.submit([(g1, [b"lost;"]), (g2, [b"first;"])])
        await asyncio.wait_for(sink1.closed, 5)          # the faulty connection is aborted
        await until(lambda: bytes(sink2.data) == b"first;")
        assert writer.faults == 1 and not g1.busy and g1.fd == -1
        assert writer.thread.is_alive() and writer.restarts == 0
        writer.submit([(g2, [b"second;"])])              # the same thread goes on
        await until(lambda: bytes(sink2.data) == b"first;second;")
    finally:
        writer.close()
        g2.abort()
        server1.close()
        server2.close()


async def test_a_dead_thread_is_restarted_and_the_connections_it_held_are_released(caplog):
    server1, t1, sink1 = await _pair()
    server2, t2, sink2 = await _pair()
    writer = SocketWriter(asyncio.get_running_loop())
    g1, g2 = _guard(t1), _guard(t2)
    first = writer.thread

    def die(g, parts):
        del writer._write_one                            # one fault only
        raise RuntimeError("injected fault in the writer loop")

    writer._write_one = die
    try:
        writer.submit([(g1, [b"held;"])])
        await until(lambda: writer.restarts == 1)
        assert not first.is_alive() and writer.thread.is_alive() and not writer.broken
        await asyncio.wait_for(sink1.closed, 5)          # what reached its wire is unknown: aborted
        assert not g1.busy and writer.faults == 1
        assert "socket writer thread died" in caplog.text
        writer.submit([(g2, [b"after;"])])               # the new thread writes
        await until(lambda: bytes(sink2.data) == b"after;")
        assert not g2.busy
    finally:
        writer.close()
        g2.abort()
        server1.close()
        server2.close()


async def test_a_thread_that_keeps_dying_puts_the_writer_out_of_service(caplog):
    server, transport, sink = await _pair()
    writer = SocketWriter(asyncio.get_running_loop())

    def die(g, parts):
        raise RuntimeError("injected fault in the writer loop")

    writer._write_one = die
    try:
        for death in range(1, SocketWriter.MAX_RESTARTS + 2):
            s, t, _ = await _pair()
            assert writer.submit([(_guard(t), [b"x"])])
            await until(lambda: writer.restarts == death)
            s.close()
        assert writer.broken and "out of service" in caplog.text
        g = _guard(transport)
        assert writer.submit([(g, [b"by the loop"])]) is False and not g.busy
    finally:
        writer.close()
        server.close()


async def test_with_the_writer_out_of_service_the_server_writes_on_the_loop(start_server):
    from client_demo.client import HamletClient

    server = await start_server()
    writer = server.writer
    writer.MAX_RESTARTS = 0

    def die(g, parts):
        raise RuntimeError("injected fault in the writer loop")

    writer._write_one = die
    victim = await HamletClient.connect(server.url)      # its welcome goes to the thread, which dies
    with pytest.raises(Exception):
        await victim.join("victim")
    await until(lambda: writer.broken)
    ann = await HamletClient.connect(server.url)
    await ann.join("ann")
    await ann.move(dir="e")
    assert await ann.say("still here") > 0
    await until(lambda: ann.me is not None and ann.me.x == server.game.world.entities[ann.entity].x)
    assert not ann.closed and writer.faults >= 1
    await ann.close()
