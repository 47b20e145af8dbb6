/*
** Fuzzes the register tree's display parsing and formatting
** (lua/streamlua/pyrogue/model.lua): the Python literal evaluator that reads
** a configuration file's values (parseDisp), and the str.format of the
** display strings. The first byte picks the case: even, the rest of the
** input is a literal; odd, it is a format string applied to one of a few
** values (picked by the byte).
**
** Invariants: a literal evaluates to a value or raises a string of its own
** (not a Lua error with a source position); a value's repr (when it holds
** no inf or nan) evaluates back to an equal value; format returns a string
** or raises a string of its own; the Lua state's memory stays within a
** bound.
*/
#include <stdint.h>

#include "fuzz_lua.h"
#include "pyrogue_model_lua.h"

/* The check, run on each input; returns nil, or what went wrong. */
static const char CHECK[] =
    "local m = ...\n"
    "local function own(e)\n"
    "  if type(e) ~= 'string' then return 'an error that is not a string' end\n"
    "  if e:find('^model:%d+:') or e:find('^check:%d+:') then\n"
    "    return 'a Lua error: ' .. e end\n"
    "  return nil\n"
    "end\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then\n"
    "    return math.type(a) == math.type(b) and a == b and (a ~= 0 or 1 / a == 1 / b)\n"
    "  end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local VALUES = {0, -7, 0x1234, 0.1, -2.5, 1e300, 0/0, true, 'ab', nil,\n"
    "                '0x80000000000000000000000000001234', {1, 2}}\n"
    "return function(s)\n"
    "  if #s == 0 then return nil end\n"
    "  local sel, text = s:byte(1), s:sub(2)\n"
    "  if sel % 2 == 0 then\n"
    "    local ok, v = pcall(m.literal, text)\n"
    "    if not ok then return own(v) end\n"
    "    local ok2, r = pcall(m.repr, v)\n"
    "    if not ok2 then return 'repr raised: ' .. tostring(r) end\n"
    "    if r:find('inf', 1, true) or r:find('nan', 1, true) then return nil end\n"
    "    local ok3, back = pcall(m.literal, r)\n"
    "    if not ok3 then return 'repr ' .. r .. ' does not evaluate: ' .. tostring(back) end\n"
    "    if not same(v, back) then return 'repr ' .. r .. ' evaluates to another value' end\n"
    "    return nil\n"
    "  end\n"
    "  local v = VALUES[(sel // 2) % 12 + 1]\n"
    "  local ok, r = pcall(m.format, text, v, sel % 4 == 1 and 'int' or nil)\n"
    "  if not ok then return own(r) end\n"
    "  if type(r) ~= 'string' then return 'format gave no string' end\n"
    "  return nil\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_input("model", pyrogue_model_lua, sizeof pyrogue_model_lua, CHECK,
                 sizeof CHECK - 1, data, size);
  return 0;
}
