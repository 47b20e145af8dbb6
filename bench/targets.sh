#!/bin/sh
# The speed targets, measured round after round: each round runs the
# in-process stream, the Fifo with a waiting producer, the TCP bridge
# between two processes and the memory bridge once, one after the other,
# so every raw loop is measured in the same round as the path it is
# compared with; then UDP, whose program alternates with its raw receiver
# itself (one pair per round) and gives its own medians. A host whose
# speed drifts from minute to minute shows it as a spread here, not as one
# lucky or unlucky figure.
#
#   bench/targets.sh [rounds] [seconds-per-measurement]   (default 5, 0.3)
#
# Prints each round's figures as they come, then per target the lowest,
# median and highest figure over the rounds and in how many rounds it was
# met. Environment: BUILD_DIR (default build-bench), JOBS (default 2).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-"$root/build-bench"}
jobs=${JOBS:-2}
rounds=${1:-5}
secs=${2:-0.3}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSL_WERROR=ON >/dev/null
cmake --build "$build" -j"$jobs" --target bench_stream bench_fifo bench_tcp bench_memory bench_udp >/dev/null

figures=$(mktemp)
out=$(mktemp)
trap 'rm -f "$figures" "$out"' EXIT

# Runs a benchmark into $out; a failed check stops the whole run.
run() {
  if ! "$@" >"$out" 2>&1; then
    cat "$out" >&2
    echo "targets.sh: $* failed" >&2
    exit 1
  fi
}

# Appends "name value" lines for one round: $1 the program's output kind.
pick() {
  case $1 in
  stream)   # the defaults column of the 64 B row
    awk -F'|' '$1 ~ /^64 B / { split($3, a, " "); print "stream_64B_default", a[1]; exit }' "$out" ;;
  fifo)     # the first table (pools at their defaults); ring of the same row
    awk -F'|' '
      $1 ~ /^(64 B|1 KiB|64 KiB|1 MiB) / && !seen[$1]++ {
        split($1, l, " "); split($2, f, " "); split($3, r, " ")
        print "fifo_" l[1] l[2], f[1]; print "fifo_" l[1] l[2] "_ring", r[1] }' "$out" ;;
  tcp)      # resend frame/s, GB/s, raw GB/s and resend/raw
    awk -F'|' '
      $1 ~ /^(64 B|4 KiB|64 KiB|1 MiB) / {
        split($1, l, " "); split($3, s, " "); split($4, r, " "); split($6, x, "%")
        k = "tcp_" l[1] l[2]
        print k "_frames", s[1]; print k "_GBps", s[2]; print k "_raw_GBps", r[2]
        print k "_ratio", x[1] + 0 }' "$out" ;;
  memory)   # the two-process table's bridge row and its raw loop
    awk -F'|' '
      $1 ~ /^memory TcpClient/ && !m++ { split($4, c, " ")
        print "memory_trips", $2 + 0; print "memory_cpu_us", c[1] }
      $1 ~ /^raw TCP ping-pong, both/ { print "memory_raw_trips", $2 + 0 }' "$out" ;;
  esac >>"$figures"
}

r=1
while [ "$r" -le "$rounds" ]; do
  echo "== round $r of $rounds ($(uptime | sed 's/.*load/load/'))"
  run "$build/bench_stream" "$secs"; pick stream
  run "$build/bench_fifo" "$secs" wait; pick fifo
  run "$build/bench_tcp" --procs "$secs"; pick tcp
  run "$build/bench_memory" "$secs"; pick memory
  awk '{ v[$1] = $2 } END { for (k in v) printf "  %-22s %s\n", k, v[k] }' "$figures" | sort
  r=$((r + 1))
done

# name, what it is, the target: ">= x" or "<= x" (empty: shown, no target)
echo
echo "over $rounds rounds of ${secs} s measurements (lowest / median / highest, rounds meeting the target):"
awk '
  BEGIN {
    n = split("stream_64B_default|master -> slave 64 B, defaults, frames/s|>=|15000000;" \
      "fifo_64B|Fifo hop 64 B, waiting producer, frames/s|>=|5000000;" \
      "fifo_1KiB|Fifo hop 1 KiB, waiting producer, frames/s|>=|5000000;" \
      "fifo_64KiB|Fifo hop 64 KiB noCopy, frames/s|>=|1000000;" \
      "fifo_1MiB|Fifo hop 1 MiB noCopy, frames/s|>=|1000000;" \
      "fifo_64B_ring|ring of 64 pointers (its raw loop), items/s||;" \
      "tcp_64B_frames|TCP 64 B resend, frames/s|>=|5000000;" \
      "tcp_4KiB_ratio|TCP 4 KiB resend, % of raw|>=|85;" \
      "tcp_64KiB_ratio|TCP 64 KiB resend, % of raw|>=|85;" \
      "tcp_1MiB_ratio|TCP 1 MiB resend, % of raw|>=|100;" \
      "tcp_4KiB_GBps|TCP 4 KiB resend, GB/s||;" \
      "tcp_4KiB_raw_GBps|TCP 4 KiB raw loop, GB/s||;" \
      "tcp_64KiB_GBps|TCP 64 KiB resend, GB/s||;" \
      "tcp_64KiB_raw_GBps|TCP 64 KiB raw loop, GB/s||;" \
      "memory_trips|memory bridge round trips/s|>=|60000;" \
      "memory_cpu_us|memory bridge CPU us a round trip|<=|65;" \
      "memory_raw_trips|raw ping-pong round trips/s||", rows, ";")
  }
  function num(x) { return x + 0 >= 1000 ? sprintf("%.0f", x) : sprintf("%.2f", x) }
  { vals[$1] = vals[$1] " " $2 }
  END {
    for (i = 1; i <= n; i++) {
      split(rows[i], f, "|")
      c = split(vals[f[1]], v, " ")
      if (c == 0) continue
      for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++)
        if (v[b] + 0 < v[a] + 0) { t = v[a]; v[a] = v[b]; v[b] = t }
      med = c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
      met = 0
      for (a = 1; a <= c; a++)
        if ((f[3] == ">=" && v[a] + 0 >= f[4]) || (f[3] == "<=" && v[a] + 0 <= f[4])) met++
      goal = f[3] == "" ? "" : sprintf("%s %s: %d of %d", f[3], f[4], met, c)
      printf "%-46s %12s %12s %12s   %s\n", f[2], num(v[1]), num(med), num(v[c]), goal
    }
  }' "$figures"

pairs=$rounds
[ "$pairs" -ge 3 ] || pairs=3
echo
echo "UDP, default receive buffers (bench_udp 0.5 200000 $pairs; target: ours/raw >= 90 %, loss no more than raw's):"
run "$build/bench_udp" 0.5 200000 "$pairs"
grep -E "^size|\| default \|" "$out"
