#!/bin/sh
# The shared libraries export their public API and nothing else:
#   libstreamlua.so      the functions and data src/include/streamlua/*.h
#                        declare (lua.h aside)
#   libstreamlua-lua.so  those src/include/streamlua/lua.h and
#                        src/lua/sl_lua.h declare
#   streamlua.so         luaopen_streamlua
# Every name must be exported, and no other. Run by ctest:
#   exports.sh <libstreamlua.so> <libstreamlua-lua.so> <streamlua.so> <source dir>
set -eu
core=$1 lua=$2 module=$3 src=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# Names a library defines in its dynamic symbol table, less those every
# shared object has and the sanitizers' companions of exported data.
exported() {
  nm -D --defined-only "$1" | awk '{print $NF}' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start|__odr_asan(_gen_|\.)sl_.*)$' | sort -u
}

# The names headers declare: functions and extern data, comments removed,
# static inline definitions left out.
declared() {
  for h in "$@"; do
    [ -e "$h" ] || continue
    ${CC:-cc} -fpreprocessed -dD -E -P -x c "$h" 2>/dev/null
  done | tr '\n' ' ' | awk '
    { out = ""; s = $0
      while ((i = index(s, "static inline")) > 0) {   # drop each definition
        out = out substr(s, 1, i - 1); s = substr(s, i)
        j = index(s, "{"); if (j == 0) { s = ""; break }
        depth = 0
        for (k = j; k <= length(s); k++) {
          c = substr(s, k, 1)
          if (c == "{") depth++
          else if (c == "}" && --depth == 0) break
        }
        s = substr(s, k + 1)
      }
      print out s }' | tr ';' '\n' >"$tmp/decl"
  {
    grep -oE '\bsl_[A-Za-z0-9_]+[[:space:]]*\(' "$tmp/decl" | sed -E 's/[[:space:]]*\($//'
    grep -E '\bextern ' "$tmp/decl" | sed -E 's/(\[[^]]*\])?[[:space:]]*$//' |
      grep -oE '\bsl_[A-Za-z0-9_]+$'
  } | sort -u
}

compare() {   # compare <label> <library> <expected file>
  exported "$2" >"$tmp/got"
  if ! diff -u "$3" "$tmp/got" >"$tmp/diff"; then
    echo "$1: exports differ from the public API (- declared, not exported; + exported, not declared)"
    grep -E '^[-+][^-+]' "$tmp/diff"
    status=1
  else
    echo "$1: $(wc -l <"$tmp/got") names, all public"
  fi
}

inc=$src/src/include/streamlua
declared $(ls "$inc"/*.h | grep -v '/lua\.h$') >"$tmp/core"
compare libstreamlua "$core" "$tmp/core"
declared "$inc/lua.h" "$src/src/lua/sl_lua.h" >"$tmp/lua"
compare libstreamlua-lua "$lua" "$tmp/lua"
echo luaopen_streamlua >"$tmp/module"
compare streamlua.so "$module" "$tmp/module"
exit $status
