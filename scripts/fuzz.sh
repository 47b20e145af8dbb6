#!/usr/bin/env bash
# Builds the fuzz harnesses with clang and libFuzzer (tree build-fuzz, or
# FUZZ_BUILD) and runs each, one after the other, for FUZZ_SECONDS
# (default 60) with its committed corpus spec/fuzz/corpus/<name>/ as seed.
# New inputs go to <build>/finds/<name>/ and crashes to
# <build>/crashes/<name>-*, never into the committed corpus. Ends with one
# line per harness: executions, exec/s, coverage (cov, ft) and the corpus.
#   scripts/fuzz.sh [name...]      default: every spec/fuzz/fuzz_*.c
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=$(nproc 2>/dev/null || echo 2)

# clang's warnings differ from gcc's: -Werror stays with the gcc builds
mkdir -p "$BUILD"
if ! { CC=clang cmake -S . -B "$BUILD" -DSL_FUZZ=ON -DSL_WERROR=OFF -DSL_BUILD_TESTS=OFF \
         -DSL_BUILD_BENCH=OFF -DSL_BUILD_HOST=OFF >"$BUILD/build.log" 2>&1 &&
       cmake --build "$BUILD" -j"$JOBS" --target fuzzers >>"$BUILD/build.log" 2>&1; }; then
  tail -40 "$BUILD/build.log"
  echo "== fuzz build FAILED"
  exit 1
fi

if [ $# -gt 0 ]; then
  names="$*"
else
  names=$(for f in spec/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)
fi
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
summary=""
status=0
for n in $names; do
  finds="$BUILD/finds/$n"
  mkdir -p "$finds" "$BUILD/crashes"
  log="$BUILD/fuzz-$n.log"
  echo "== fuzz $n for ${SECONDS_EACH}s"
  "./$BUILD/fuzz_$n" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
    -artifact_prefix="$BUILD/crashes/$n-" "$finds" "spec/fuzz/corpus/$n" >"$log" 2>&1
  rc=$?
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | sed -nE 's/.* cov: ([0-9]+).*/\1/p')
  ft=$(echo "$last" | sed -nE 's/.* ft: ([0-9]+).*/\1/p')
  corp=$(echo "$last" | sed -nE 's/.* corp: ([^ ]+).*/\1/p')
  line="$n: ${execs:-?} execs, ${rate:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
  if [ "$rc" -ne 0 ]; then
    line="$line, FAILED (exit $rc; see $log)"
    grep -E -A20 'ERROR: libFuzzer|Sanitizer|invariant failed|runtime error' "$log" | head -40
    status=1
  fi
  echo "$line"
  summary="$summary$line"$'\n'
done
echo "== fuzz summary (${SECONDS_EACH}s each)"
printf '%s' "$summary"
exit $status
