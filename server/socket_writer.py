"""Writing the tick's frames to the sockets from a thread beside the loop.

Owns the writer thread and the `GuardedTransport` put in front of each
connection's asyncio transport. At the end of a tick the loop hands each
idle client's frames to the thread, which writes them with one `writev` on
a duplicate of the socket's descriptor (the GIL is released for the
system call). On loopback a send also runs the receiving side's TCP
processing, so with 1,000 clients those calls were a quarter of the
server's CPU time on the loop's thread; here they run on the other core
while the loop reads the next inputs.

Order on the wire: while the thread holds a client's frames, every other
write to that connection (websockets' pongs and close frames, our own
frames of the next tick) is held by the guard and written after them, in
order, when the thread reports back on the loop. What the socket did not
take (a full send buffer) goes to the transport's own buffer first. Close
and half-close wait for the frames in flight; abort does not.

Descriptor lifetime: the duplicate is closed on the loop thread, never
while the thread holds it, so the number cannot be reused under a write.

Faults are never silent (see `SocketWriter`): a connection the thread fails
on is aborted, a thread that dies is restarted, and one that keeps dying
leaves the writing to the loop.
"""
from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading

log = logging.getLogger("hamlet.net")

# writev takes at most IOV_MAX (1024 on Linux) buffers; a client gets a few
# frames a tick, so more than this is joined into one first.
MAX_PARTS = 64


class GuardedTransport:
    """An asyncio transport whose writes wait while the writer thread holds
    the connection. Everything not overridden goes to the real transport."""

    def __init__(self, real: asyncio.Transport, fd: int) -> None:
        self.real = real
        self.fd = fd                   # our duplicate of the socket's descriptor; -1 once closed
        self.busy = False              # the writer thread holds frames of this connection
        self.inflight = 0
        self.held: list[bytes] = []
        self.held_bytes = 0
        self._eof = self._close = self._drop = False

    def __getattr__(self, name):
        return getattr(self.real, name)

    # -- what websockets and our Client call --------------------------------
    def write(self, data) -> None:
        if self.busy:
            self.held.append(bytes(data))
            self.held_bytes += len(data)
        else:
            self.real.write(data)

    def writelines(self, parts) -> None:
        if self.busy:
            for data in parts:
                self.write(data)
        else:
            self.real.writelines(parts)

    def write_eof(self) -> None:
        if self.busy:
            self._eof = True
        else:
            self.real.write_eof()

    def can_write_eof(self) -> bool:
        return self.real.can_write_eof()

    def close(self) -> None:
        if self.busy:
            self._close = True
        else:
            self.real.close()
            self.drop()

    def abort(self) -> None:
        self.held, self.held_bytes = [], 0
        self.real.abort()
        self.drop()

    def is_closing(self) -> bool:
        return self._close or self.real.is_closing()

    def get_write_buffer_size(self) -> int:
        return self.real.get_write_buffer_size() + self.inflight + self.held_bytes

    # -- the writer's side ---------------------------------------------------
    def idle(self) -> bool:
        """May the thread take this connection's next frames now?"""
        return (not self.busy and self.fd >= 0 and not self.is_closing()
                and self.real.get_write_buffer_size() == 0)

    def drop(self) -> None:
        """Close our duplicate descriptor (now, or once the thread lets go)."""
        if self.busy:
            self._drop = True
        elif self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def failed(self) -> None:
        """On the loop: the thread failed on this connection's frames, so
        what reached the wire is unknown; the connection is aborted."""
        self.busy, self.inflight = False, 0
        self.abort()

    def finished(self, rest: bytes) -> None:
        """On the loop: the thread wrote all but `rest`; release what waited."""
        self.busy, self.inflight = False, 0
        held, self.held, self.held_bytes = self.held, [], 0
        if not self.real.is_closing():
            if rest:
                self.real.write(rest)
            if held:
                self.real.writelines(held)
            if self._eof:
                self.real.write_eof()
        if self._close:
            self.real.close()
        if self._drop or self._close:
            self.drop()


def guard(ws) -> GuardedTransport | None:
    """Put a guard in front of a websockets connection's transport (None if
    the transport has no socket, e.g. in some test doubles)."""
    t = ws.transport
    sock = t.get_extra_info("socket") if t is not None else None
    if sock is None or isinstance(t, GuardedTransport):
        return None
    g = GuardedTransport(t, os.dup(sock.fileno()))
    ws.transport = g
    return g


class SocketWriter:
    """The thread, supervised. `submit()` takes a tick's [(guard, frames)]
    on the loop and returns False when the thread is out of service (the
    caller then writes on the loop, as without a writer).

    Faults: an unexpected exception while writing one connection's frames
    aborts that connection (its bytes on the wire are unknown; the client
    resumes with its token) and the thread carries on. A thread that dies
    anyway is restarted by the loop, which aborts the connections it held;
    after MAX_RESTARTS deaths the writer is out of service for good and says
    so in the log. Every fault is logged with its traceback: none is silent.
    """

    # Deaths before the writer gives up and the loop writes every frame: a
    # thread that keeps dying is a bug to fix, not to restart forever.
    MAX_RESTARTS = 3

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Unbounded in count but not in practice: at most one job a tick is
        # outstanding per connection (a busy connection's frames are held by
        # its guard instead), so the queue holds at most a few ticks of jobs.
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.partial_writes = 0
        self.faults = 0      # connections aborted after an unexpected error in the thread
        self.restarts = 0
        self.broken = False  # out of service: the loop writes everything
        self._closing = False
        self._held: list[tuple[GuardedTransport, list[bytes]]] | None = None  # the batch in the thread's hands
        self.thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="hamlet-writer", daemon=True)
        thread.start()
        return thread

    def submit(self, batch: list[tuple[GuardedTransport, list[bytes]]]) -> bool:
        if not self.thread.is_alive() and not self.broken:
            self._thread_died(self.thread)  # a death the thread could not report
        if self.broken:
            return False
        for g, parts in batch:
            g.busy = True
            g.inflight = sum(map(len, parts))
        self.jobs.put(batch)
        return True

    # -- the thread ----------------------------------------------------------
    def _run(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                batch = self.jobs.get()
                if batch is None:
                    return
                self._held = batch
                done = [(g, self._write_one(g, parts)) for g, parts in batch]
                try:
                    self.loop.call_soon_threadsafe(self._finished, done)
                except RuntimeError:  # the loop is closed: nothing left to tell
                    return
                self._held = None
        except Exception:
            log.exception("the socket writer thread died")
            if not self._closing:
                try:
                    self.loop.call_soon_threadsafe(self._thread_died, me)
                except RuntimeError:  # the loop is closed
                    pass

    def _write_one(self, g: GuardedTransport, parts: list[bytes]) -> bytes | None:
        """Write one connection's frames; returns what the socket did not
        take, or None after an unexpected error (the loop aborts it)."""
        try:
            total = g.inflight
            if len(parts) > MAX_PARTS:
                parts = [b"".join(parts)]
            try:
                n = os.writev(g.fd, parts)
            except BlockingIOError:
                n = 0
            except OSError:   # the peer is gone: the transport reports it on the loop
                n = total
            return b"".join(parts)[n:] if n < total else b""
        except Exception:
            log.exception("the socket writer failed on a connection; closing that connection")
            return None

    # -- back on the loop ----------------------------------------------------
    def _finished(self, done: list[tuple[GuardedTransport, bytes | None]]) -> None:
        for g, rest in done:
            try:
                if rest is None:
                    self.faults += 1
                    g.failed()
                    continue
                self.partial_writes += bool(rest)
                g.finished(rest)
            except Exception:  # one connection's trouble must not stop the others'
                log.exception("releasing a connection's frames failed")

    def _thread_died(self, thread: threading.Thread) -> None:
        """On the loop: the connections the dead thread held are aborted;
        a new thread takes the queue, or, past MAX_RESTARTS, nobody does."""
        if thread is not self.thread or self._closing:
            return  # already handled (reported by the thread and found by submit)
        held, self._held = self._held, None
        for g, _ in held or ():
            self.faults += 1
            g.failed()
        self.restarts += 1
        if self.restarts > self.MAX_RESTARTS:
            self.broken = True
            log.error("the socket writer thread died %d times: out of service, the event loop "
                      "writes every frame from now on", self.restarts)
            self._release_queued()
            return
        log.error("the socket writer thread died (%d of %d restarts); restarting it",
                  self.restarts, self.MAX_RESTARTS)
        self.thread = self._start()

    def _release_queued(self) -> None:
        """Out of service: the jobs still queued are written on the loop."""
        while True:
            try:
                batch = self.jobs.get_nowait()
            except queue.Empty:
                return
            if batch is not None:
                self._finished([(g, b"".join(parts)) for g, parts in batch])

    def close(self) -> None:
        self._closing = True
        self.jobs.put(None)
        self.thread.join(timeout=5)
