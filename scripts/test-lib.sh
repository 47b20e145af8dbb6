# Sourced by scripts/test.sh and scripts/test-arm.sh: the tally and the
# steps each pass is made of (a build, its ctest, a busted run). The caller
# is in the source directory; finish prints what failed and the tally line
# and returns non-zero if anything failed.
JOBS=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
log_dir=$(mktemp -d)

failures=""
count() { passed=$((passed + $1)); failed=$((failed + $2)); }
note_failures() {   # note_failures <label> <lines...>: named again at the end
  local l
  while IFS= read -r l; do
    [ -n "$l" ] && failures="$failures$1: $l"$'\n'
  done <<<"$2"
}

build() {   # build <dir> <cmake args...>
  local dir=$1; shift
  echo "== build $dir"
  if ! { cmake -S . -B "$dir" -DSL_WERROR=ON "$@" >"$log_dir/$dir.cmake" 2>&1 &&
         cmake --build "$dir" -j"$JOBS" >"$log_dir/$dir.build" 2>&1; }; then
    cat "$log_dir/$dir.cmake" "$log_dir/$dir.build" | tail -40
    echo "== build $dir FAILED"
    count 0 1
    note_failures build "$dir did not build"
    return 1
  fi
}

run_ctest() {   # run_ctest <dir>: counts the cases each C test reports
  local dir=$1 out
  echo "== ctest $dir"
  out=$(cd "$dir" && ctest -V 2>&1)
  echo "$out" | grep -E '(FAIL|Test +#|tests passed)' | tail -30
  local line total bad ok=0 nok=0
  while read -r p f; do ok=$((ok + p)); nok=$((nok + f)); done < <(
    echo "$out" | sed -nE 's/^[0-9]+: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p')
  line=$(echo "$out" | grep -E 'tests passed, [0-9]+ tests? failed out of' | tail -1)
  if [ -z "$line" ]; then count 0 1; note_failures "ctest $dir" "no tally"; return; fi
  bad=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
  # a test program that died before its tally still counts as a failure
  if [ "$bad" -gt "$nok" ]; then nok=$bad; fi
  count "$ok" "$nok"
  note_failures "ctest $dir" "$(echo "$out" | grep -E '^[0-9]+: FAIL |\((Failed|SEGFAULT|Timeout|Subprocess aborted|Child aborted|Exception)\)' | head -20)"
}

run_busted() {   # run_busted <label> <lua interpreter...>; BUSTED_FILES: these specs only
  local label=$1; shift
  echo "== busted $label"
  local out rc
  # shellcheck disable=SC2086
  out=$("$@" /usr/bin/busted -o plainTerminal ${BUSTED_FILES:-} 2>&1); rc=$?
  echo "$out" | tail -40
  # a run that died shows why: sanitizer reports and signals, wherever
  # they were in the output
  if [ "$rc" -ne 0 ]; then
    echo "busted $label exited with $rc"
    echo "$out" | grep -E -A12 'Sanitizer|runtime error|Segmentation|Killed|Aborted' | head -80
  fi
  local line ok bad err
  line=$(echo "$out" | grep -E '^[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors?' | tail -1)
  if [ -z "$line" ]; then count 0 1; note_failures "busted $label" "no tally (exit $rc)"; return; fi
  ok=$(echo "$line" | sed -E 's/^([0-9]+) success.*/\1/')
  bad=$(echo "$line" | sed -E 's/.* ([0-9]+) failures?.*/\1/')
  err=$(echo "$line" | sed -E 's/.* ([0-9]+) errors?.*/\1/')
  count "$ok" $((bad + err))
  note_failures "busted $label" "$(echo "$out" | grep -E -A1 '^(Failure|Error) -> ' | grep -v '^--$' | head -20)"
  if [ "$rc" -ne 0 ] && [ $((bad + err)) -eq 0 ]; then count 0 1; fi
}

finish() {
  rm -rf "$log_dir"
  if [ -n "$failures" ]; then printf '== what failed\n%s' "$failures"; fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
