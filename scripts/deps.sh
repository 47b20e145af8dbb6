#!/bin/sh
# Installs the Debian packages streamlua needs that are not there yet.
#   scripts/deps.sh            build and run
#   scripts/deps.sh test       also what the tests need
#   scripts/deps.sh fuzz       also clang and libFuzzer (make fuzz)
#   scripts/deps.sh bench      also GNU time (bench/footprint.sh)
#   scripts/deps.sh rock       also luarocks (make rock)
set -e
pkgs="cmake make gcc pkg-config liblua5.4-dev lua5.4 libevent-dev libedit-dev lua-yaml"
if [ "${1:-}" = test ]; then
  pkgs="$pkgs lua-busted luarocks libzmq3-dev python3-zmq graphviz"
elif [ "${1:-}" = fuzz ]; then
  pkgs="$pkgs clang libclang-rt-14-dev"
elif [ "${1:-}" = bench ]; then
  pkgs="$pkgs time"
elif [ "${1:-}" = rock ]; then
  pkgs="$pkgs luarocks"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
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
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
