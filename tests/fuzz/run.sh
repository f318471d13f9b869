#!/usr/bin/env bash
# make fuzz: runs each libFuzzer target for SECONDS from its seed corpus (tests/fuzz/corpus/T,
# read-only) and a working corpus that persists in BUILD/corpus/T, then prints a table of
# executions per target. Exits non-zero if any target found a crash, a hang (> 10 s for one input),
# a leak or an allocation over 2 GB; the input that did it is kept in BUILD/artifacts/ (replay it
# with BUILD/fuzz_T FILE) and the fuzzer's log in BUILD/logs/T.log.
#   usage: tests/fuzz/run.sh BUILD SECONDS TARGET...
set -uo pipefail
build=$1 seconds=$2
shift 2
mkdir -p "$build/artifacts" "$build/logs"
# Largest input each target mutates up to (model files and checkpoints need room for tensors).
max_len() {
  case $1 in
    fuzz_model|fuzz_checkpoint) echo 200000 ;;
    fuzz_image) echo 65536 ;;
    *) echo 8192 ;;
  esac
}
status=0 total=0
printf '%-18s %12s %10s %8s  %s\n' target executions 'exec/s' corpus result
for t in "$@"; do
  seeds=tests/fuzz/corpus/${t#fuzz_}
  work=$build/corpus/${t#fuzz_}
  mkdir -p "$work"
  log=$build/logs/$t.log
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
    -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
    "$work" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  n=$(find "$work" -type f | wc -l)
  result=ok
  if [ $rc -ne 0 ]; then
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR|SUMMARY|==[0-9]+==|deadly signal|timeout|out-of-memory' "$log" | cut -c1-100)"
    status=1
  fi
  printf '%-18s %12s %10s %8s  %s\n' "$t" "${execs:-0}" "${rate:-0}" "$n" "$result"
  total=$((total + ${execs:-0}))
done
echo "fuzz: $total executions in total"
[ $status -eq 0 ] || echo "fuzz: FAILED; logs in $build/logs, inputs in $build/artifacts" >&2
exit $status
