#!/usr/bin/env bash
# Signals-stage throughput on a GPU: per-token log-probs + entropies for a ~0.5B-parameter model
# (Qwen2.5-0.5B's shape, built from a config: nothing downloaded), rewardsmith vs TRL's computation.
#
#   bash bench/signals_gpu.sh [extra bench/signals.py args...]
#
# Needs a CUDA build of torch (PYTHON, default .venv/bin/python, else python3). About a minute on one
# H200: 256 rollouts x 1024 completion tokens, bfloat16, batches of 32; then float32 for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

"$PYTHON" - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device visible to torch")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
PY

for dtype in bfloat16 float32; do
  "$PYTHON" bench/signals.py --size 0.5b --device cuda --dtype "$dtype" --rollouts 256 --prompt-len 256 \
    --completion-len 1024 --batch-size 32 --skip-bs1 "$@"
done
