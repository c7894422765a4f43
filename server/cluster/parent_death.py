"""Child processes that die with their parent. `hamlet sim --regions N` and
`hamlet cluster` start regions, a gateway and nats-server, some in sessions
of their own (a Ctrl-C reaches only the parent, which stops them in order);
a `kill -9` of the parent would leave them running. On Linux each child
started with `Popen(..., preexec_fn=die_with_parent())` is sent SIGTERM
when its parent dies (prctl PR_SET_PDEATHSIG): regions and nats-server
stop as they do on SIGTERM. Elsewhere `die_with_parent()` is None and
nothing changes.

The kernel sends the signal when the *thread* that forked the child ends,
not the process: so it is asked for only from the main thread; a child
started from another thread (None) outlives its parent as before.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Resolved here, in the parent: between fork and exec the child only calls it
# (loading a library there could wait forever on a lock that another of the
# parent's threads held at the fork).
_prctl = _load_prctl()


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that has the child sent `sig` when this process dies;
    None where that cannot be asked for (not Linux, not the main thread)."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def in_child() -> None:
        # A handler of the parent's (hamlet cluster catches SIGTERM) would catch
        # a signal that came before the exec, which resets it to the default anyway.
        if callable(signal.getsignal(sig)):
            signal.signal(sig, signal.SIG_DFL)
        if _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return  # not to be had here: the child runs on, as without it
        if os.getppid() != parent:  # the parent died between the fork and the prctl
            os.kill(os.getpid(), sig)
            os._exit(1)  # `sig` is ignored here
    return in_child
