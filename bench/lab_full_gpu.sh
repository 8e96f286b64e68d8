#!/usr/bin/env bash
# The overthinking lab's `full` preset on a GPU machine, then its figures.
#
#   bash bench/lab_full_gpu.sh [OUT_DIR] [extra `rewardsmith lab` args...]
#
# Needs a CUDA build of torch in the environment (PYTHON, default .venv/bin/python, else python3).
# Writes OUT_DIR (default runs/lab/full-<timestamp>): report.md, results.json, plots. Prints the
# GPU, the wall time, the summary table, the conclusion and per-difficulty accuracy/tokens.
# The base policy is cached under $REWARDSMITH_CACHE/lab (default ~/.cache/rewardsmith/lab).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
OUT="${1:-runs/lab/full-$(date +%Y%m%d-%H%M%S)}"
shift || true

"$PYTHON" - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device visible to torch: the full preset needs --device cuda")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
PY

start=$(date +%s)
"$PYTHON" -m rewardsmith lab --preset full --device cuda --out "$OUT" "$@"
echo "wall time: $(( $(date +%s) - start )) s (includes SFT unless cached)"

"$PYTHON" - "$OUT/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
base = r["specs"][r["baseline"]]
print(f"\npreset {r['preset']}: {r['seconds']:.0f} s in the lab, device {r['device']}; base policy (no RL): "
      f"acc {r['base_policy']['accuracy']:.3f}, {r['base_policy']['mean_tokens']:.1f} tokens; necessary steps: {r['necessary_tokens']['mean_tokens']:.1f} tokens")
levels = list(r["base_policy"]["by_difficulty"])
print(f"{'spec':<16} {'acc':>6} {'tokens':>7} {'vs corr.':>8} {'AES':>6} | " + " ".join(f"k={k:<9}" for k in levels))
for name, s in r["specs"].items():
    cut = f"{-100 * s['token_reduction']:+.0f}%"
    cells = " ".join(f"{s['by_difficulty'][k]['accuracy']:.2f}/{s['by_difficulty'][k]['mean_tokens']:<5.1f}" for k in levels)
    print(f"{name:<16} {s['accuracy']:>6.3f} {s['mean_tokens']:>7.1f} {cut:>8} {s['aes']:>6.2f} | {cells}")
print("(per difficulty: accuracy/mean tokens)")
PY
sed -n '/^## Conclusion/,/^## Results/p' "$OUT/report.md" | sed '$d'
