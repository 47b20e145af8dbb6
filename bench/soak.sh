#!/usr/bin/env bash
# A soak of the stream TCP bridge (not part of `make test`):
#
#   bench/soak.sh [seconds=600 [killPeriod=60]]
#
# near process: PRBS generator -> Fifo -> TcpClient   (bench/soak_near.lua)
# far process:  TcpServer -> PRBS checker             (bench/soak_far.lua)
#
# The far side starts on port 0 and prints the port it got; every killPeriod
# seconds it is killed with SIGKILL and started again on that same port. Every
# 10 s the near process's VmRSS and open fds are sampled. At the end the near
# generator is stopped and drained, the far side stopped with SIGTERM, and a
# table is printed: RSS and fds of the first and last minute, frames checked,
# PRBS errors, and the frames lost at each kill.
#
# A new far process has a new checker, which takes its first frame whatever
# its sequence number; so a kill shows up as a gap between the last frame the
# old checker reported and the first the new one saw, never as a PRBS error.
# The old checker is killed without a last word, so its count is the one of
# its last report (every 0.05 s): a gap is an upper bound of the frames lost
# (in the old connection's socket buffers, or dropped by the Fifo while no
# server was there), plus those checked in the last 0.05 s before the kill.
# The gaps add up exactly to (frames generated - frames reported checked).
#
# Environment: STREAMLUA_BIN (default build/streamlua), SOAK_DIR (logs; default
# a new temporary directory), SOAK_SIZE (frame bytes, 2048), SOAK_PERIOD_US
# (generator period, 500), SOAK_DEPTH (Fifo depth, 4096).
set -u
cd "$(dirname "$0")/.."
dur=${1:-600}
kill_period=${2:-60}
bin=${STREAMLUA_BIN:-build/streamlua}
dir=${SOAK_DIR:-$(mktemp -d /tmp/soak.XXXXXX)}
mkdir -p "$dir"
export LUA_PATH="$PWD/lua/?.lua;${LUA_PATH:-;}"
[ -x "$bin" ] || { echo "soak.sh: $bin not found (build first, or set STREAMLUA_BIN)" >&2; exit 1; }

far_pid=
far_n=0
port=0

# start_far: starts far instance $far_n on $port and waits (up to 30 s, so a
# port still held after a kill is retried) for it to print its port.
start_far() {
  local log deadline
  deadline=$((SECONDS + 30))
  while :; do
    log="$dir/far.$far_n.log"
    "$bin" bench/soak_far.lua "$port" >"$log" 2>&1 &
    far_pid=$!
    while kill -0 "$far_pid" 2>/dev/null && ! grep -q '^port ' "$log"; do sleep 0.05; done
    if grep -q '^port ' "$log"; then
      port=$(sed -n 's/^port //p' "$log" | head -1)
      far_n=$((far_n + 1))
      return 0
    fi
    wait "$far_pid" 2>/dev/null
    echo "soak.sh: far side did not start on port $port: $(head -3 "$log")" >&2
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

sample() {   # sample <t>: t, VmRSS (kB) and open fds of the near process
  local rss fds
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$near_pid/status" 2>/dev/null)
  fds=$(ls "/proc/$near_pid/fd" 2>/dev/null | wc -l)
  echo "$1 ${rss:-0} $fds" >>"$dir/samples"
}

start_far || exit 1
"$bin" bench/soak_near.lua "$port" "${SOAK_SIZE:-2048}" "${SOAK_PERIOD_US:-500}" \
  "${SOAK_DEPTH:-4096}" >"$dir/near.log" 2>&1 &
near_pid=$!
echo "soak: ${dur} s, far side killed every ${kill_period} s, port $port, logs in $dir"
: >"$dir/samples"
: >"$dir/kills"
t0=$SECONDS
next_sample=0
next_kill=$kill_period
while :; do
  t=$((SECONDS - t0))
  [ "$t" -lt "$dur" ] || break
  kill -0 "$near_pid" 2>/dev/null || { echo "soak.sh: near process died" >&2; break; }
  if [ "$t" -ge "$next_sample" ]; then sample "$t"; next_sample=$((next_sample + 10)); fi
  if [ "$t" -ge "$next_kill" ] && [ $((dur - t)) -ge 5 ]; then
    kill -KILL "$far_pid"; wait "$far_pid" 2>/dev/null
    echo "$t $(grep '^near tick' "$dir/near.log" | tail -1)" >>"$dir/kills"
    start_far || { echo "soak.sh: far side could not restart" >&2; break; }
    next_kill=$((next_kill + kill_period))
  fi
  sleep 1
done
sample "$((SECONDS - t0))"

kill -TERM "$near_pid"; wait "$near_pid"
sleep 1   # the last frames reach the checker
kill -TERM "$far_pid"; wait "$far_pid"

# ---- the table
awk -v dur="$dur" '
  { if ($1 < 60) { fr[++nf] = $2; ff[nf] = $3 }
    if ($1 >= dur - 60) { lr[++nl] = $2; lf[nl] = $3 } }
  function mm(a, n,   i, lo, hi) { lo = hi = a[1]
    for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
    return lo "-" hi }
  END { printf "%-34s %s kB\n", "near RSS, first minute (min-max)", mm(fr, nf)
        printf "%-34s %s kB\n", "near RSS, last minute (min-max)", mm(lr, nl)
        printf "%-34s %s\n", "near fds, first minute (min-max)", mm(ff, nf)
        printf "%-34s %s\n", "near fds, last minute (min-max)", mm(lf, nl) }' "$dir/samples"

val() { sed -n "s/.* $1=\([-0-9]*\).*/\1/p" <<<"$2"; }
near_final=$(grep '^near final' "$dir/near.log" | tail -1)
[ -n "$near_final" ] || echo "soak.sh: the near process printed no final line" >&2
tx=$(val tx "$near_final")
checked=0; errors=0; lost_total=0; prev_end=
for ((i = 0; i < far_n; i++)); do
  line=$(grep -E '^far (tick|final)' "$dir/far.$i.log" | tail -1)
  rx=$(val rx "$line"); err=$(val errors "$line"); first=$(val first "$line")
  checked=$((checked + rx)); errors=$((errors + err))
  [ "$first" -ge 0 ] || continue      # an instance that saw no frame
  if [ -n "$prev_end" ]; then
    gap=$((first - prev_end))
    lost_total=$((lost_total + gap))
    printf "%-34s %d frames (seq %d..%d)\n" "lost at kill $i (upper bound)" "$gap" "$prev_end" "$((first - 1))"
  fi
  prev_end=$((first + rx))
done
printf "%-34s %s\n" "frames generated" "$tx"
printf "%-34s %s\n" "frames checked" "$checked"
printf "%-34s %s\n" "PRBS errors" "$errors"
printf "%-34s %s\n" "lost at kills, total" "$lost_total"
printf "%-34s %s\n" "lost after the last restart" "$((tx - prev_end))"
printf "%-34s %s\n" "near Fifo drops / tcp drops" \
  "$(val fifoDrops "$near_final") / $(val tcpDrops "$near_final")"
printf "%-34s %s\n" "far restarts" "$((far_n - 1))"
