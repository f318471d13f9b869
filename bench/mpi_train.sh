#!/usr/bin/env bash
# Data-parallel training step on one machine (#17): 1 process × 2 threads against mpirun -np 2 ×
# 1 thread, same global batch, same run. Prints one JSON line per case (ntc bench train --json with
# ranks, reduce, unit, overlap, comm_s, comm_share). Pause the campaign first (scripts/campaign.sh pause).
#   bench/mpi_train.sh [CONFIG ...]   (default: ntc_two_layer light)
set -euo pipefail
cd "$(dirname "$0")/.."
NTC=${NTC:-build/ntc}
REPS=${REPS:-7}
command -v mpirun >/dev/null || { echo "mpirun not found: install openmpi-bin libopenmpi-dev (make deps)" >&2; exit 1; }
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
configs=("$@"); [ ${#configs[@]} -eq 0 ] && configs=(ntc_two_layer light)
for c in "${configs[@]}"; do
  "$NTC" bench train --config "$c" --reps "$REPS" --threads 2 --json
  for u in 1 4; do
    "$NTC" bench train --config "$c" --reps "$REPS" --threads 2 --reduce exact --unit "$u" --json
    mpirun "${root[@]}" -np 2 "$NTC" bench train --config "$c" --reps "$REPS" --threads 1 --unit "$u" --json
    mpirun "${root[@]}" -np 2 "$NTC" bench train --config "$c" --reps "$REPS" --threads 1 --unit "$u" --no-overlap --json
  done
done
