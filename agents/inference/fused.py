"""Our own CPU ops, built once with the system's C++ compiler and loaded into
torch: the fused decode attention (`torch.ops.hamlet.decode_attention`) and
the linear layers over weights kept in blocks of small integers
(`q4_linear`, `q8_linear` and their packers; see blockweights.py), and a
whole decoder layer of a few-row decode step over such weights
(`decode_layer`; see llama.py).

Owns: building `csrc/*.cpp` (with their headers) into one shared library under the
cache folder (`HAMLET_CACHE_DIR`, default ~/.cache/hamlet: ops/<key>/), the
key being a hash of the source, the torch version, the flags and this CPU's
instruction sets (the library is built for the CPU it runs on); loading it;
and saying why not when it cannot (no compiler, a failed build): the
decoder then keeps its torch ops. `HAMLET_FUSED=0` turns it off.

Why: a decode step's attention over the slot cache, done with torch ops,
reads every row's keys and values over the whole buffer (padded to the
longest row plus headroom) and runs a dozen small ops per layer; the fused
op reads each row's own positions once. Measured on the 2-core AVX2 EPYC,
float32, 64 rows of ~150 positions, 30 layers, one thread: 80-90 ms
against 170-240 ms (the torch ops over the 256-position buffer), and one
row 1.2-1.7 ms against 5-7.7 ms.

Build: `python -m agents.inference.fused` (make install runs it); else the
first engine on the CPU builds it (~15 s on 2 cores, one source a core), safe against
concurrent processes (each builds into its own temporary file, then an
atomic rename).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

log = logging.getLogger("hamlet.inference")

SOURCES = sorted((Path(__file__).with_name("csrc")).glob("*.cpp"))
HEADERS = sorted((Path(__file__).with_name("csrc")).glob("*.h"))      # in the build key: sources include them
# -ffast-math when compiling: lets GCC call glibc's vector expf for the
# softmax (the kernel never sees infinities or NaNs: each row attends to >= 1
# position). Never when linking: there GCC would add crtfastmath.o, which
# sets flush-to-zero for the whole process when the library loads (found by
# the msgpack float tests: 5e-324 became 0 everywhere).
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-fPIC", "-std=c++20"]
LINK_FLAGS = ["-shared", "-fopenmp"]
BUILD_TIMEOUT_S = 300        # a cold compile takes ~15 s on 2 cores; a hung compiler must not hang the server

_state: dict[str, object] = {}


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return os.uname().machine


def library_path() -> Path:
    env = os.environ.get("HAMLET_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "hamlet"
    key = hashlib.sha256("\0".join([*(src.read_text() for src in SOURCES + HEADERS), torch.__version__,
                                     " ".join(FLAGS + LINK_FLAGS), _cpu_flags()])
                         .encode()).hexdigest()[:16]
    return base / "ops" / key / "hamlet_ops.so"


def build(target: Path) -> None:
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler (g++) found")
    torch_dir = Path(torch.__file__).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    objs = [f"{tmp[:-3]}.{src.stem}.o" for src in SOURCES]
    compiles = [[compiler, *FLAGS, f"-I{torch_dir / 'include'}", "-c", str(src), "-o", obj]
                for src, obj in zip(SOURCES, objs)]
    link = [compiler, *LINK_FLAGS, *objs, "-o", tmp, f"-L{torch_dir / 'lib'}", "-lc10", "-ltorch_cpu"]
    try:
        # the sources compile side by side (one per core on the 2-core machine), then link
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for cmd in compiles]
        try:
            errors = [p.communicate(timeout=BUILD_TIMEOUT_S)[1] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        failed = [err for p, err in zip(procs, errors) if p.returncode != 0]
        if failed:
            raise RuntimeError(f"{compiler} failed: {failed[0].strip()[-800:]}")
        done = subprocess.run(link, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {done.stderr.strip()[-800:]}")
        os.replace(tmp, target)
    finally:
        for path in (tmp, *objs):
            if os.path.exists(path):
                os.unlink(path)


def load() -> bool:
    """Build if needed and load the op; True when `decode_attention` may be used.
    Asked once per process; a failure is logged once and remembered."""
    if "ok" in _state:
        return bool(_state["ok"])
    ok, why = False, ""
    if os.environ.get("HAMLET_FUSED", "1") == "0":
        why = "HAMLET_FUSED=0"
    else:
        try:
            path = library_path()
            if not path.exists():
                log.info("building Hamlet's CPU ops (once): %s", path)
                build(path)
            torch.ops.load_library(str(path))
            ok = True
        except Exception as e:          # noqa: BLE001 - any failure means: keep the torch ops
            why = f"{type(e).__name__}: {e}"
    if not ok:
        log.warning("fused decode attention unavailable (%s); using torch ops", why)
    _state["ok"], _state["why"] = ok, why
    return ok


def why_not() -> str:
    return str(_state.get("why", ""))


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, first: int, lengths: torch.Tensor,
                     scale: float) -> torch.Tensor:
    """q [n, H, D]; k, v [S, Hk, T, D] (one layer of the slot cache); rows
    first..first+n-1 attend to their first lengths[i] positions. -> [n, H, D]"""
    return torch.ops.hamlet.decode_attention(q, k, v, first, lengths, scale)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print("Hamlet's CPU ops:", "ready" if load() else f"unavailable ({why_not()})", library_path())
    sys.exit(0)
