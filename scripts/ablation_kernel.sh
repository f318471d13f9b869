#!/usr/bin/env bash
# Kernel-size ablation of the JPEG-like synthesis (issue #16, PAPER: blocking at k16, gone at k18):
# the light config with k16 (light_k16) and k18 (light), trained with the same short budget and
# seed, then rate–distortion (ntc eval) and blockiness (ntc analyze blocking) on Kodak.
#   scripts/ablation_kernel.sh [STEPS] [LIMIT]     (defaults 2000 steps, 4 Kodak images)
# Runs go to ../runs/ablation_<config>, results to data/results/analysis/ablation_<config>_*.json.
# It shares the CPU with the campaign: one thread each, one run at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-2000}
limit=${2:-4}
shared=${NTC_SHARED:-../shared}
for cfg in light_k16 light; do
  out=../runs/ablation_$cfg
  if [ ! -f "$out/model.ntcm" ]; then
    args=(--config "$cfg" --data "$shared/data/train" --lambda 0.01 --steps "$steps" --out "$out" --lr 5e-4
          --quant mixed --flips --seed 7)
    [ -f "$out/checkpoint.ntck" ] && args=(--resume --out "$out" --steps "$steps")
    build/ntc --threads 1 train "${args[@]}" 2> "$out.stderr" || { tail -3 "$out.stderr"; exit 1; }
  fi
  build/ntc --threads 1 eval --model "$out/model.ntcm" --data "$shared/data/kodak" --limit "$limit" --quiet \
    --json "data/results/analysis/ablation_${cfg}_eval.json"
  build/ntc --threads 1 analyze blocking --model "$out/model.ntcm" --data "$shared/data/kodak" --limit "$limit" \
    --json "data/results/analysis/ablation_${cfg}_blocking.json"
done
