#!/bin/sh
# Builds the Release benchmark tree (build-bench) and runs every bench_*
# program in it, one after the other.
#
#   bench/run.sh [seconds-per-measurement]
#
# Then every bench/bench_*.lua, run by the streamlua program, and
# bench/footprint.sh (sizes, start-up, resident memory).
# The optional argument is passed to each benchmark (bench_stream: default
# 0.5 s per measurement). Environment: BUILD_DIR (default build-bench),
# JOBS (default 2).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-"$root/build-bench"}
jobs=${JOBS:-2}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSL_WERROR=ON >/dev/null

# One target per bench/bench_*.c (the target is named after the file).
targets=""
for src in "$here"/bench_*.c; do
  [ -e "$src" ] || continue
  targets="$targets $(basename "$src" .c)"
done
if [ -z "$targets" ]; then
  echo "run.sh: no bench/bench_*.c found" >&2
  exit 1
fi
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target $targets streamlua

status=0
for t in $targets; do
  echo "==> $t $*"
  "$build/$t" "$@" || status=$?
  echo
done
# Lua benchmarks (bench/bench_*.lua), run by the streamlua program.
for src in "$here"/bench_*.lua; do
  [ -e "$src" ] || continue
  echo "==> $(basename "$src") $*"
  "$build/streamlua" "$src" "$@" || status=$?
  echo
done
echo "==> footprint.sh"
"$here/footprint.sh" "$build/streamlua" || status=$?
exit $status
