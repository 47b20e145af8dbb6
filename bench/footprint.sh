#!/bin/sh
# What streamlua costs on a board: the stripped program's size and its
# libraries, start-up time, idle resident memory, and the peak resident memory
# of fixed graphs (bench/footprint.lua), with the stock interpreter's start-up
# and idle memory beside them as the baseline.
#
# usage: bench/footprint.sh [path/to/streamlua] [seconds per graph]
#        (defaults: $STREAMLUA_BIN or build-bench/streamlua, 2 s)
set -eu
cd "$(dirname "$0")/.."
BIN=${1:-${STREAMLUA_BIN:-build-bench/streamlua}}
SECS=${2:-2}
LUA=${LUA:-lua5.4}
command -v /usr/bin/time >/dev/null || { echo "footprint.sh: needs /usr/bin/time (package time)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the program and the project's own libraries it loads, stripped
own=$(ldd "$BIN" | awk '$1 ~ /^libstreamlua/ { print $3 }')
size_b=0
for f in "$BIN" $own; do
  cp "$f" "$tmp/s" && strip "$tmp/s"
  size_b=$((size_b + $(stat -c %s "$tmp/s")))
done
size_kb=$((size_b / 1024))
libs=$(ldd "$BIN" | awk '$1 !~ /^(linux-vdso|\/lib64\/ld-linux|libstreamlua)/ { sub(/\.so.*/, "", $1); printf "%s ", $1 }')

peak_kb() {   # peak_kb <command...>: peak resident set in KiB (last line: what it printed)
  /usr/bin/time -f "%M" -o "$tmp/peak" "$@" >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
  cat "$tmp/peak"
}

printf '| what | streamlua | its queues may hold | baseline (%s) |\n|---|---|---|---|\n' "$LUA"
printf '| program and its own libraries, stripped | %d KiB; also loads %s| | |\n' "$size_kb" "$libs"
startup=$(bench/startup.sh "$BIN" 200)
sl_ms=$(echo "$startup" | awk '/^streamlua -e/ { print $4 }')
lua_ms=$(echo "$startup" | awk -v l="$LUA -e" 'index($0, l) == 1 { print $4 }')
printf '| start-up of an empty chunk | %s ms | | %s ms |\n' "$sl_ms" "$lua_ms"
printf '| resident, idle | %d KiB | | %d KiB |\n' \
  "$(peak_kb "$BIN" -e 'sl.sleep(0.5)')" "$(peak_kb "$LUA" -e 'local t = os.time() + 1 while os.time() < t do end')"

graph() {   # graph <label> <footprint.lua args...>
  label=$1; shift
  kb=$(peak_kb "$BIN" bench/footprint.lua "$@" "$SECS")
  line=$(grep "^$1 " "$tmp/out" | tail -1)     # the report, not the log lines
  printf '| %s | peak %d KiB (%s) | %s | |\n' "$label" "$kb" "${line%, queues *}" "${line##*, queues }"
}
graph "PRBS -> Fifo(100,0,true) -> TCP bridge -> PRBS, 1 KiB" tcp 1024
graph "same, 16 KiB" tcp 16384
graph "same, 64 KiB" tcp 65536
graph "same, 1 MiB" tcp 1048576
graph "1,000 idle TCP bridge pairs" pairs 1000
graph "PRBS -> UdpRssiPack -> UdpRssiPack -> PRBS, 64 KiB" link 65536
