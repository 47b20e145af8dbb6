/*
** Fuzzes the register tree's YAML configuration loader
** (lua/streamlua/pyrogue/yamltext.lua on lua-yaml's libyaml event parser):
** the input is the text of a configuration file.
**
** Invariants: the load returns a document or raises a string that names
** the file and a line ("f.yml:<line>: ..."); the string keys and values of
** a loaded mapping, emitted again as quoted-or-plain strings, load back to
** the same strings; the Lua state's memory stays within a bound.
*/
#include <stdint.h>

#include "fuzz_lua.h"
#include "pyrogue_yamltext_lua.h"

/* The check, run on each input; returns nil, or what went wrong. */
static const char CHECK[] =
    "local yt = ...\n"
    "return function(s)\n"
    "  local ok, doc = pcall(yt.load, s, 'f.yml')\n"
    "  if not ok then\n"
    "    if type(doc) ~= 'string' then return 'an error that is not a string' end\n"
    "    if not doc:match('^f%.yml:[%d?]+: ') then return 'no file and line: ' .. doc end\n"
    "    return nil\n"
    "  end\n"
    "  if not yt.isMap(doc) then return nil end\n"
    "  local m, want = yt.map(), {}\n"
    "  for k, v in doc:pairs() do\n"
    "    if type(k) == 'string' and type(v) == 'string' and #k > 0 and #k < 100 then\n"
    "      m:put(k, yt.scalar('str', v)); want[k] = v\n"
    "    end\n"
    "  end\n"
    "  if m:len() == 0 then return nil end\n"
    "  local text = yt.emit(m)\n"
    "  local ok2, back = pcall(yt.load, text, 'e.yml')\n"
    "  if not ok2 then return 'emitted text does not load: ' .. tostring(back) end\n"
    "  for k, v in pairs(want) do\n"
    "    if back:get(k) ~= v then return 'round trip changed ' .. k end\n"
    "  end\n"
    "  return nil\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_input("yamltext", pyrogue_yamltext_lua, sizeof pyrogue_yamltext_lua, CHECK,
                 sizeof CHECK - 1, data, size);
  return 0;
}
