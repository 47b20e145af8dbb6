#!/usr/bin/env bash
# Every test, in three x86-64 builds: plain (ctest, then busted under lua5.4
# with the module), AddressSanitizer+UndefinedBehaviorSanitizer and
# ThreadSanitizer (ctest, then busted under the sanitized streamlua binary);
# then the ARM pass (scripts/test-arm.sh: arm64 and armhf cross builds, their
# ctest and the untimed specs under qemu-user). Ends with one tally line, "N passed, N
# failed", and a non-zero exit if anything failed.
set -u
cd "$(dirname "$0")/.."
. scripts/test-lib.sh

if build build; then
  run_ctest build
  STREAMLUA_BUILD=build STREAMLUA_BIN=build/streamlua run_busted plain lua5.4
fi

if build build-asan -DSL_SANITIZE=address,undefined -DSL_BUILD_BENCH=OFF; then
  export ASAN_OPTIONS=detect_leaks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_ctest build-asan
  STREAMLUA_SANITIZED=1 STREAMLUA_ROCK_TEST=0 STREAMLUA_BUILD=build-asan STREAMLUA_BIN=build-asan/streamlua \
    run_busted asan build-asan/streamlua
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if build build-tsan -DSL_SANITIZE=thread -DSL_BUILD_BENCH=OFF; then
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  run_ctest build-tsan
  STREAMLUA_SANITIZED=1 STREAMLUA_ROCK_TEST=0 STREAMLUA_BUILD=build-tsan STREAMLUA_BIN=build-tsan/streamlua \
    run_busted tsan build-tsan/streamlua
  unset TSAN_OPTIONS
fi

# arm64 and armhf under qemu-user (scripts/test-arm.sh): every C test, and
# the specs that need no timing (ARM_SPECS=all runs every spec)
. scripts/test-arm.sh
ARM_SPECS=${ARM_SPECS:-untimed} arm_pass

finish
