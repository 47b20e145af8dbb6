#!/bin/sh
# Start-up cost of the streamlua binary next to the stock interpreter: the
# mean wall time of an empty chunk (`-e ''`), run N times each, in ms.
# streamlua's figure includes opening the module and its event loop.
#
# usage: bench/startup.sh [path/to/streamlua] [runs]
#        (defaults: $STREAMLUA_BIN or build/streamlua, 200 runs; $LUA or lua5.4)
set -eu

BIN=${1:-${STREAMLUA_BIN:-build/streamlua}}
N=${2:-200}
LUA=${LUA:-lua5.4}

EMPTY=$(mktemp --suffix=.lua)
trap 'rm -f "$EMPTY"' EXIT

mean_ms() {   # mean_ms <interpreter> <args...>
  start=$(date +%s%N)
  i=0
  while [ "$i" -lt "$N" ]; do
    "$@" </dev/null >/dev/null
    i=$((i + 1))
  done
  end=$(date +%s%N)
  awk -v ns=$((end - start)) -v n="$N" 'BEGIN { printf "%.3f", ns / n / 1e6 }'
}

"$BIN" -e '' </dev/null >/dev/null || { echo "startup.sh: cannot run $BIN" >&2; exit 1; }
printf '%-24s %8s ms/run  (%s runs)\n' "streamlua -e ''" "$(mean_ms "$BIN" -e '')" "$N"
printf '%-24s %8s ms/run  (%s runs)\n' "streamlua empty.lua" "$(mean_ms "$BIN" "$EMPTY")" "$N"
printf '%-24s %8s ms/run  (%s runs)\n' "$LUA -e ''" "$(mean_ms "$LUA" -e '')" "$N"
printf '%-24s %8s ms/run  (%s runs)\n' "$LUA empty.lua" "$(mean_ms "$LUA" "$EMPTY")" "$N"
