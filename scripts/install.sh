#!/bin/sh
# Installs a build into PREFIX (under DESTDIR if set) and removes it again.
#   scripts/install.sh install BUILD PREFIX
#   scripts/install.sh uninstall BUILD PREFIX
# DESTDIR comes from the environment, as for any `make install`.
#
# install runs `cmake --install` and keeps a record in BUILD/installed/:
# the files it wrote (from cmake's install manifest) and the directories it
# had to create. uninstall removes exactly those files, then those directories
# that are empty, and the record.
set -eu
action=$1 build=$2 prefix=$3
destdir=${DESTDIR:-}
case $prefix in
  /*) ;;
  *) prefix=$(pwd)/$prefix ;;
esac
[ -z "$destdir" ] || case $destdir in
  /*) ;;
  *) destdir=$(pwd)/$destdir ;;
esac
record=$build/installed/$(printf '%s' "$destdir$prefix" | sed 's|/|%|g')

install_tree() {
  # The directories the install will write into, found by installing into a
  # scratch tree first; those missing now are ours to remove later.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage" "$stage.dirs"' EXIT
  DESTDIR=$stage cmake --install "$build" --prefix "$prefix" >/dev/null
  mkdir -p "$build/installed"
  [ -f "$record.dirs" ] && cp "$record.dirs" "$stage.dirs" || : >"$stage.dirs"
  (cd "$stage" && find . -mindepth 1 -type d | sed 's|^\.||') | while read -r d; do
    [ -d "$destdir$d" ] || echo "$destdir$d"
  done >>"$stage.dirs"
  DESTDIR=$destdir cmake --install "$build" --prefix "$prefix"
  sort -u "$stage.dirs" >"$record.dirs"
  # cmake's manifest leaves DESTDIR out; a second install into the same
  # place adds to what the first wrote
  touch "$record.files"
  { cat "$record.files"; awk -v d="$destdir" '{ print d $0 }' "$build/install_manifest.txt"; } |
    sort -u >"$record.files.new"
  mv "$record.files.new" "$record.files"
  echo "streamlua: installed into $destdir$prefix (make uninstall removes it)"
}

uninstall_tree() {
  if [ ! -f "$record.files" ]; then
    echo "streamlua: $build has installed nothing into $destdir$prefix" >&2
    exit 1
  fi
  n=0
  while IFS= read -r f; do
    if [ -f "$f" ] || [ -L "$f" ]; then
      rm -f "$f"
      n=$((n + 1))
    fi
  done <"$record.files"
  # deepest first: a directory's children sort after it
  sort -r "$record.dirs" | while IFS= read -r d; do
    rmdir "$d" 2>/dev/null || :
  done
  rm -f "$record.files" "$record.dirs"
  rmdir "$build/installed" 2>/dev/null || :
  echo "streamlua: removed $n files from $destdir$prefix"
}

case $action in
  install) install_tree ;;
  uninstall) uninstall_tree ;;
  *) echo "usage: $0 install|uninstall BUILD PREFIX" >&2; exit 2 ;;
esac
