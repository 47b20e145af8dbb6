#!/usr/bin/env bash
# The ARM pass (make test-arm; scripts/test.sh runs it after the x86-64
# passes): arm64 and armhf, each cross-built with Debian's cross compiler
# and multiarch libraries (cmake/toolchain-ARCH.cmake; scripts/deps.sh arm
# installs what it needs), warnings as errors. Its C tests run under
# qemu-user (ctest runs each through the toolchain's
# CMAKE_CROSSCOMPILING_EMULATOR), then the Lua specs under the ARM
# streamlua program in qemu-user, as the sanitizer passes run them under
# theirs (STREAMLUA_SANITIZED: the host's lua5.4 cannot load the ARM
# module, so the cases that load it there are left out).
# Run alone, it ends with the tally line of scripts/test.sh.
#
# ARM_SPECS=untimed (what scripts/test.sh sets, to keep make test within
# CI's time) runs every C test but only the specs below, which wait for no
# timer, peer, network or second process: what they check holds however
# slowly qemu-user runs. make test-arm runs every spec (ARM_SPECS=all).
set -u

arm_untimed_specs="spec/frame_spec.lua spec/master_slave_spec.lua
  spec/stream_modules_spec.lua spec/batcher_spec.lua spec/packetizer_spec.lua
  spec/memory_slave_queue_spec.lua spec/logging_spec.lua spec/record_replay_spec.lua
  spec/testing_spec.lua spec/pyrogue_model_spec.lua spec/pyrogue_tree_spec.lua
  spec/pyrogue_tree_block_spec.lua spec/pyrogue_arraydevice_spec.lua
  spec/pyrogue_typestr_quirks_spec.lua spec/pyrogue_yaml_spec.lua
  spec/pyrogue_yaml_text_spec.lua spec/pyrogue_yaml_trace_spec.lua
  spec/cmodule_spec.lua"

# build-ARCH/streamlua-qemu: the ARM program under qemu-user, for the specs
# that start the program (STREAMLUA_BIN); it sees its name as given, and
# finds qemu whatever PATH the spec gives it.
arm_wrapper() {   # arm_wrapper <dir> <qemu>
  local dir=$1 qemu=$2
  cat >"$dir/streamlua-qemu" <<WRAP
#!/bin/sh
exec $(command -v "$qemu") -0 "\$0" "$PWD/$dir/streamlua" "\$@"
WRAP
  chmod +x "$dir/streamlua-qemu"
}

arm_pass() {
  local arch qemu triplet dir t0 t1 t2 specs=""
  case ${ARM_SPECS:-all} in
    all) ;;
    untimed) specs=$arm_untimed_specs ;;
    *) echo "ARM_SPECS is all or untimed, not ${ARM_SPECS}" >&2; count 0 1; return ;;
  esac
  for arch in arm64 armhf; do
    case $arch in
      arm64) qemu=qemu-aarch64 triplet=aarch64-linux-gnu ;;
      armhf) qemu=qemu-arm triplet=arm-linux-gnueabihf ;;
    esac
    dir=build-$arch
    # without its tools the pass fails, it is not skipped
    if ! command -v "$triplet-gcc" >/dev/null || ! command -v "$qemu" >/dev/null ||
       [ ! -f "build-cross/$arch/.unpacked" ]; then
      echo "== $arch FAILED: $triplet-gcc, $qemu or build-cross/$arch is missing" \
           "(scripts/deps.sh arm installs them)"
      count 0 1
      note_failures "$arch" "its cross compiler, qemu-user or build-cross/$arch is missing"
      continue
    fi
    t0=$SECONDS
    build "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-$arch.cmake -DSL_BUILD_BENCH=OFF ||
      continue
    t1=$SECONDS
    run_ctest "$dir"
    t2=$SECONDS
    arm_wrapper "$dir" "$qemu"
    # the ARM Lua modules busted loads: the multiarch ones are on the ARM
    # interpreter's default path, term.core was unpacked by scripts/deps.sh
    # C modules the specs build (spec/cmodule_spec.lua) are built for ARM
    # and the installed program they run runs under qemu-user
    LUA_CPATH="$PWD/build-cross/$arch/usr/lib/$triplet/lua/5.4/?.so;;" \
      CC=$triplet-gcc STREAMLUA_EMULATOR=$(command -v "$qemu") \
      PKG_CONFIG_LIBDIR="$PWD/build-cross/$arch/usr/lib/$triplet/pkgconfig:/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig" \
      STREAMLUA_SANITIZED=1 STREAMLUA_ROCK_TEST=0 STREAMLUA_BUILD=$dir BUSTED_FILES=$specs \
      STREAMLUA_BIN=$dir/streamlua-qemu run_busted "$arch${specs:+ (untimed specs)}" "$dir/streamlua-qemu"
    echo "== $arch took: build $((t1 - t0)) s, ctest $((t2 - t1)) s, busted $((SECONDS - t2)) s"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then   # run, not sourced by scripts/test.sh
  cd "$(dirname "$0")/.."
  . scripts/test-lib.sh
  arm_pass
  finish
fi
