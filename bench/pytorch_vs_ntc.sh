#!/usr/bin/env bash
# Same-run training-step comparison of ntc (fp32 and bf16 analysis) against PyTorch fp32 (issue #12):
#   bench/pytorch_vs_ntc.sh [CONFIG ...]      (default: light jpegl; 2 threads; batch 8 of 128²)
# Prints one JSON line per measurement and a ratio line per config. Needs build/ntc and, for the
# PyTorch side, python3-torch (jemalloc is preloaded when libjemalloc2 is installed). Pause the
# training campaign first (scripts/campaign.sh pause): the numbers are only meaningful on idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(light jpegl)
threads=${THREADS:-2}
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "pytorch_vs_ntc: PyTorch is not installed for $py (Debian: apt-get install python3-torch); skipped" >&2
  exit 0
fi
jemalloc=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1 || true)
field() { "$py" -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }
for c in "${configs[@]}"; do
  f32=$(build/ntc --threads "$threads" bench train --config "$c" --precision fp32 --reps 5 --json)
  echo "$f32"
  b16=$(build/ntc --threads "$threads" bench train --config "$c" --precision bf16 --reps 5 --json 2>/dev/null || true)
  [ -n "$b16" ] && echo "$b16"
  pt=$(LD_PRELOAD=${jemalloc} "$py" bench/pytorch_train.py --config "$c" --threads "$threads" --reps "${PT_REPS:-3}")
  echo "$pt"
  s32=$(echo "$f32" | field step_s) spt=$(echo "$pt" | field step_s)
  s16=$([ -n "$b16" ] && echo "$b16" | field step_s || echo "")
  "$py" - "$c" "$s32" "$spt" "$s16" <<'EOF'
import json, sys
c, s32, spt, s16 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
r = {"compare": c, "ntc_fp32_over_pytorch": round(s32 / spt, 4)}
if s16:
    r["ntc_bf16_over_pytorch"] = round(float(s16) / spt, 4)
    r["bf16_over_fp32"] = round(float(s16) / s32, 4)
print(json.dumps(r))
EOF
done
