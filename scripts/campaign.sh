#!/usr/bin/env bash
# campaign.sh — issue #11's training campaign, one command per step of a session.
#
#   scripts/campaign.sh resume   [FAMILY]      start or resume the trunk in the background (2 threads)
#   scripts/campaign.sh pause    [FAMILY]      SIGTERM: the trainer writes a checkpoint and exits
#   scripts/campaign.sh status   [FAMILY]      running or not, the checkpoint's step and hours, last log line
#   scripts/campaign.sh cooldown [FAMILY] [D]  pause, fork the trunk, train D more steps at lr×0.1, write
#                                              the cooled model and its Kodak evaluation (the trunk stays put)
#                                              NTC_COOL_ARGS (e.g. "--crop 256 --batch 2") changes the fork's
#                                              recipe and NTC_COOL_TAG names it: the fork is FAMILY_cool_STEP_TAG
#   scripts/campaign.sh ship     [FAMILY] STEP[_TAG]  that cooled fork becomes the shipped model:
#                                              data/models/ntc_FAMILY.ntcm, data/results/kodak_FAMILY.json,
#                                              BD-rates, the RD plot, a row of data/results/campaign_FAMILY.csv
#   scripts/campaign.sh snapshot [FAMILY]      pause, then commit-ready state: the compact snapshot and the log
#   scripts/campaign.sh derive   jpeg_like     the JPEG-like family's run, from the two_layer trunk's
#                                              checkpoint (`ntc derive`: its synthesis fitted by least squares);
#                                              then resume, cooldown and ship it like the trunk
#
# The schedule is warm-up–stable–decay (Hu et al. 2024, "MiniCPM"; Hägele et al. 2024, "Scaling laws
# and compute-optimal training beyond fixed training durations"): the trunk trains at a constant
# learning rate for as many sessions as the campaign lasts, and every shipped model is a fork of it
# cooled down for D steps at lr×0.1. A cooled fork matches a run whose whole budget was planned to
# end there, and the trunk never has to climb back out of a decay. A new machine resumes the trunk
# from the committed snapshot (f16 weights; Adam restarts with a 500-step warm-up).
#
# Environment: NTC_RUNS (run folders, default ../runs beside the checkout), NTC_TRAIN_DATA
# (default ../shared/data/train), NTC_KODAK (default ../shared/data/kodak), NTC_THREADS (threads of
# a trainer, cool-down or evaluation, default 2: two families training side by side take 1 each),
# NTC_RESUME_ARGS (more flags for `ntc train --resume`, e.g. --steps N).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${NTC_RUNS:-$ROOT/../runs}
DATA=${NTC_TRAIN_DATA:-$ROOT/../shared/data/train}
KODAK=${NTC_KODAK:-$ROOT/../shared/data/kodak}
CMD=${1:-status}
FAMILY=${2:-two_layer}
RUN=$RUNS/$FAMILY
BIN=$RUNS/ntc_$FAMILY  # a private copy: rebuilding the checkout never changes a running trainer
PID=$RUN.pid
SNAP=$ROOT/data/campaign/$FAMILY.snapshot.ntck
LOG=$ROOT/data/campaign/$FAMILY.log.jsonl

THREADS=${NTC_THREADS:-2}

die() { echo "campaign: $*" >&2; exit 1; }

# The trunk's crops: 256² (batch 2, the same pixels per step as 8 × 128²). The hyperprior of a
# 128² crop sees a 2 × 2 grid of z, mostly padding; trained on that, the campaign's trunk grew
# overconfident scales that Kodak's full-size images break (outliers costing 20+ bits each: the
# 128² cool-down at step 112,173 was 10% worse than the one at 78,639). A 6,000-step cool-down on
# 256² crops from the same trunk gave −50.8% BD-rate against JPEG (data/MODELS.md). Every resume
# applies these, so the trunk trains on 256² from step 112,173 on.
trunk_crops() { echo "--crop 256 --batch 2"; }

# The recipe of each family's trunk (a new run only; a resume keeps the checkpoint's options).
recipe() {
  case $FAMILY in
    jpeg_like) die "the jpeg_like family is derived from the two_layer trunk: scripts/campaign.sh derive jpeg_like" ;;
    two_layer)
      echo "--config $ROOT/data/configs/ntc_two_layer.cfg --data $DATA" \
           "--lambda 0.0004,0.0008,0.0016,0.0032,0.0064,0.0128,0.0256,0.0512,0.1024,0.2048 --steps 2000000 --decay-from 2000000" \
           "--warmup 500 --no-lambda-boost $(trunk_crops) --lr 5e-4 --quant mixed --min-scale 0.6 --flips" \
           "--precision bf16" \
           "--log-every 50" ;;
    *) die "no recipe for family '$FAMILY' (two_layer)" ;;
  esac
}

running() { [[ -f $PID ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }

pause() {
  if running; then
    local p; p=$(cat "$PID")
    kill -TERM "$p"
    while kill -0 "$p" 2>/dev/null; do sleep 1; done
    echo "campaign: $FAMILY paused"
  fi
  rm -f "$PID"
}

resume() {
  running && { echo "campaign: $FAMILY is already running (pid $(cat "$PID"))"; return; }
  [[ -x $ROOT/build/ntc ]] || die "build first (make -j2)"
  mkdir -p "$RUNS"
  cp "$ROOT/build/ntc" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  local args
  if [[ -f $RUN/checkpoint.ntck ]]; then
    args="--resume --out $RUN --data $DATA $(trunk_crops)"
  elif [[ -f $SNAP ]]; then
    echo "campaign: no checkpoint in $RUN; resuming from the committed snapshot $SNAP"
    args="--resume --from $SNAP --out $RUN --data $DATA $(trunk_crops)"
  else
    echo "campaign: starting $FAMILY from scratch"
    args="--out $RUN $(recipe)"
  fi
  # shellcheck disable=SC2086
  nohup "$BIN" --threads "$THREADS" train $args ${NTC_RESUME_ARGS:-} >>"$RUN.stderr" 2>&1 &
  echo $! >"$PID"
  sleep 3
  running || { tail -n 3 "$RUN.stderr" >&2; rm -f "$PID"; die "$FAMILY stopped at once (see $RUN.stderr)"; }
  echo "campaign: $FAMILY running (pid $(cat "$PID"), log $RUN/log.jsonl, stderr $RUN.stderr)"
}

status() {
  if running; then echo "running (pid $(cat "$PID"))"; else echo "not running"; fi
  [[ -f $RUN/checkpoint.ntck ]] && "$BIN" train --info --out "$RUN"
  [[ -f $RUN/log.jsonl ]] && tail -n 1 "$RUN/log.jsonl"
  return 0
}

cooldown() {
  local D=${1:-6000}
  [[ -d $KODAK ]] || die "Kodak not found at $KODAK (NTC_KODAK)"
  pause
  [[ -f $RUN/checkpoint.ntck ]] || die "no trunk checkpoint in $RUN"
  local step cool
  step=$("$BIN" train --info --out "$RUN" | sed 's/.*"step":\([0-9]*\).*/\1/')
  cool=$RUNS/${FAMILY}_cool_$step${NTC_COOL_TAG:+_$NTC_COOL_TAG}
  rm -rf "$cool"
  echo "campaign: cooling down $FAMILY from step $step for $D steps into $cool ${NTC_COOL_ARGS:-}"
  # shellcheck disable=SC2086
  "$BIN" --threads "$THREADS" train --resume --from "$RUN/checkpoint.ntck" --out "$cool" --steps $((step + D)) \
    --decay-from "$step" --data "$DATA" ${NTC_COOL_ARGS:-} 2>>"$cool.stderr"
  "$BIN" --threads "$THREADS" eval --model "$cool/model.ntcm" --data "$KODAK" --json "$cool/kodak.json" \
    --name "ntc $FAMILY (step $step + $D cool-down${NTC_COOL_TAG:+, $NTC_COOL_TAG})" --quiet
  "$BIN" train --info --out "$cool" >"$cool/info.json"
  echo "campaign: cooled model $cool/model.ntcm, evaluation $cool/kodak.json"
}

ship() {
  local fork=${1:?ship needs the trunk step of the cooled fork (STEP or STEP_TAG)}
  local cool=$RUNS/${FAMILY}_cool_$fork anchors=$ROOT/../shared/anchors/kodak step=${fork%%_*}
  [[ -f $cool/model.ntcm && -f $cool/kodak.json ]] || die "no cooled model and evaluation in $cool (run cooldown)"
  local model=$ROOT/data/models/ntc_$FAMILY.ntcm res=$ROOT/data/results/kodak_$FAMILY.json
  mkdir -p "$ROOT/data/results"
  cp "$cool/model.ntcm" "$model.tmp" && mv "$model.tmp" "$model"
  # The evaluation names the shipped path, not the run folder.
  sed "s|$cool/model.ntcm|data/models/ntc_$FAMILY.ntcm|; s|\"file\":\"[^\"]*/\([^/\"]*\)\"|\"file\":\"\1\"|g" \
    "$cool/kodak.json" >"$res.tmp" && mv "$res.tmp" "$res"
  local bd_jpeg bd_webp psnr_jpeg h
  bd_jpeg=$("$BIN" bdrate "$anchors/jpeg420.json" "$res" --json | sed 's/.*"bd_rate_percent":\([-0-9.]*\).*/\1/')
  psnr_jpeg=$("$BIN" bdrate "$anchors/jpeg420.json" "$res" --json | sed 's/.*"bd_psnr_db":\([-0-9.]*\).*/\1/')
  bd_webp=$("$BIN" bdrate "$anchors/webp.json" "$res" --json | sed 's/.*"bd_rate_percent":\([-0-9.]*\).*/\1/')
  h=$(sed 's/.*"train_h":\([0-9.]*\).*/\1/' "$cool/info.json")
  local fams=() f
  for f in "$ROOT"/data/results/kodak_{two_layer,jpeg_like}.json; do [[ -f $f ]] && fams+=("$f"); done
  "$BIN" plot "$anchors/jpeg420.json" "$anchors/webp.json" "$anchors/jpeg2000.json" "$anchors/avif420.json" \
    "$anchors/paper_two_layer_syn.json" "$anchors/paper_jpeg_like_syn.json" "${fams[@]}" \
    -o "$ROOT/data/results/kodak_rd.svg"
  local csv=$ROOT/data/results/campaign_$FAMILY.csv
  [[ -f $csv ]] || echo "date,trunk_step,cooldown_steps,train_h,bd_rate_vs_jpeg420,bd_psnr_vs_jpeg420_db,bd_rate_vs_webp,sha256,cooldown_crops" >"$csv"
  local total crops r4='{printf "%.4f", $1}'
  total=$(sed 's/.*"step":\([0-9]*\).*/\1/' "$cool/info.json")
  crops=$(sed 's/.*"crop":\([0-9]*\).*"batch":\([0-9]*\).*/\2x\1/' "$cool/info.json")
  echo "$(date -u +%F),$step,$((total - step)),$h,$(echo "$bd_jpeg" | awk "$r4"),$(echo "$psnr_jpeg" | awk "$r4"),$(echo "$bd_webp" | awk "$r4"),$(sha256sum "$model" | cut -c1-64),$crops" >>"$csv"
  if [[ $FAMILY == two_layer && -x $ROOT/build/ntc_tests ]]; then  # the default family's golden streams
    NTC_REGENERATE_GOLDEN=1 "$ROOT/build/ntc_tests" --gtest_filter='Cli.GoldenStreams*' >/dev/null
    (cd "$ROOT" && bash tests/fuzz/make_seeds.sh streams >/dev/null)  # the fuzzers' stream seeds
  fi
  echo "campaign: shipped $model ($(stat -c %s "$model") bytes); BD-rate $bd_jpeg% vs JPEG 4:2:0, $bd_webp% vs WebP; $h h"
}

derive() {
  [[ $FAMILY == jpeg_like ]] || die "derive makes the jpeg_like family (from the two_layer trunk)"
  [[ -e $RUN ]] && die "$RUN exists already (resume it, or remove it to derive again)"
  local trunk=$RUNS/two_layer/checkpoint.ntck
  [[ -f $trunk ]] || trunk=$ROOT/data/campaign/two_layer.snapshot.ntck
  mkdir -p "$RUNS"
  "$ROOT/build/ntc" --threads "$THREADS" derive --from "$trunk" --config "$ROOT/data/configs/ntc_$FAMILY.cfg" \
    --out "$RUN" --crops 200 --data "$DATA" | tee "$RUNS/$FAMILY.derive.json"
}

snapshot() {
  pause
  [[ -f $RUN/checkpoint.ntck ]] || die "no trunk checkpoint in $RUN"
  mkdir -p "$(dirname "$SNAP")"
  "$BIN" train --out "$RUN" --snapshot "$SNAP"
  cp "$RUN/log.jsonl" "$LOG.tmp" && mv "$LOG.tmp" "$LOG"
  echo "campaign: snapshot $SNAP ($(stat -c %s "$SNAP") bytes), log $LOG"
}

case $CMD in
  resume) resume ;;
  pause) pause ;;
  status) status ;;
  cooldown) cooldown "${3:-6000}" ;;
  snapshot) snapshot ;;
  derive) derive ;;
  ship) ship "${3:-}" ;;
  *) die "unknown command '$CMD' (resume, pause, status, cooldown, ship, snapshot, derive)" ;;
esac
