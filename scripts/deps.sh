#!/bin/sh
# Installs the Debian packages streamlua needs that are not there yet.
#   scripts/deps.sh            build and run
#   scripts/deps.sh test       also what the tests need
#   scripts/deps.sh fuzz       also clang and libFuzzer (make fuzz)
#   scripts/deps.sh bench      also GNU time (bench/footprint.sh)
#   scripts/deps.sh rock       also luarocks (make rock)
#   scripts/deps.sh arm        also the arm64 and armhf cross compilers, the
#                              libraries for both, the Lua modules busted
#                              loads, and qemu-user to run them (make test-arm)
set -e
arches=""
pkgs="cmake make gcc pkg-config liblua5.4-dev lua5.4 libevent-dev libedit-dev lua-yaml"
if [ "${1:-}" = test ]; then
  pkgs="$pkgs lua-busted luarocks libzmq3-dev python3-zmq graphviz"
elif [ "${1:-}" = fuzz ]; then
  pkgs="$pkgs clang libclang-rt-14-dev"
elif [ "${1:-}" = bench ]; then
  pkgs="$pkgs time"
elif [ "${1:-}" = rock ]; then
  pkgs="$pkgs luarocks"
elif [ "${1:-}" = arm ]; then
  arches="arm64 armhf"
  pkgs="$pkgs lua-busted qemu-user"
  for a in $arches; do
    pkgs="$pkgs crossbuild-essential-$a"
    for p in liblua5.4-dev libedit-dev libzmq3-dev libevent-2.1-7 libevent-core-2.1-7 \
             libevent-pthreads-2.1-7 \
             lua-yaml lua-filesystem lua-system; do
      pkgs="$pkgs $p:$a"
    done
  done
fi
# Debian 12's libevent-dev and lua-term are not Multi-Arch: same, so the
# ARM package would replace the native one. Their files are unpacked under
# build-cross/ARCH instead (by the user running this, no root needed): the
# headers (event-config.h differs per architecture), pkg-config files and
# link names pointed at that copy and at the runtime libraries installed
# for ARCH, and the Lua module term.core busted loads.
unpack_cross() {
  root=$(cd "$(dirname "$0")/.." && pwd)
  sandbox=""   # as root, apt's download user could not write the user's tree
  [ "$(id -u)" = 0 ] && sandbox="-o APT::Sandbox::User=root"
  for a in $arches; do
    case $a in
      arm64) triplet=aarch64-linux-gnu ;;
      armhf) triplet=arm-linux-gnueabihf ;;
    esac
    dir=$root/build-cross/$a
    ver=$(dpkg-query -W -f='${Version}' "libevent-core-2.1-7:$a")
    stamp="$dir libevent-dev=$ver lua-term, shared only"
    [ "$(cat "$dir/.unpacked" 2>/dev/null)" = "$stamp" ] && continue
    rm -rf "$dir"
    mkdir -p "$dir/debs"
    (cd "$dir/debs" && apt-get download -qq $sandbox "libevent-dev:$a=$ver" "lua-term:$a")
    for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir"; done
    rm -f "$dir/usr/lib/$triplet"/*.a   # linked as shared libraries only
    sed -i "s|^prefix=/usr\$|prefix=$dir/usr|" "$dir/usr/lib/$triplet"/pkgconfig/*.pc
    for so in "$dir/usr/lib/$triplet"/libevent*.so; do
      ln -sf "/usr/lib/$triplet/$(readlink "$so")" "$so"
    done
    echo "$stamp" >"$dir/.unpacked"
  done
}

new_arch=""
for a in $arches; do
  dpkg --print-foreign-architectures | grep -qx "$a" || new_arch="$new_arch $a"
done
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
if [ -z "$missing" ] && [ -z "$new_arch" ]; then unpack_cross; exit 0; fi
echo "streamlua: installing$missing"
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "streamlua: these Debian packages are missing:$missing" >&2
  echo "streamlua: install them as root (apt-get install$missing)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
for a in $new_arch; do $SUDO dpkg --add-architecture "$a"; done
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
unpack_cross
