-- Per-call cost of the pyrogue models and display helpers (pure Lua, one
-- thread):
--
--   build-bench/streamlua bench/bench_model.lua [seconds-per-measurement]
--   lua5.4 bench/bench_model.lua [seconds-per-measurement]   (from the root)
--
-- Each measurement repeats the calls in batches until `seconds` (0.5 by
-- default) of this process's CPU time (os.clock) have passed and prints the
-- CPU time per call; the empty loop is printed for reference.
package.path = "lua/?.lua;" .. package.path
pcall(require, "streamlua")          -- the embedded files, when there is a module
local model = require "streamlua.pyrogue.model"

local seconds = tonumber(arg and arg[1]) or 0.5

local measure = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/cputime.lua")

local function run(name, f)
  print(string.format("%-34s %8.1f ns/call", name, measure(f, seconds) * 1e9))
end

local u = model.UInt(32)
local max = u.maxValue
run("empty loop", function(n) for _ = 1, n do end end)
run("UInt32 m:check(v, 0, max, name)", function(n)
  for i = 1, n do u:check(i, 0, max, "V") end
end)
run("UInt32 m:toRaw(v, 32)", function(n)
  local r
  for i = 1, n do r = u:toRaw(i, 32) end
  return r
end)
run("UInt32 m:fromRaw(raw, 32)", function(n)
  local r
  for i = 1, n do r = u:fromRaw(i, 32) end
  return r
end)
run("UInt32 check + toRaw + fromRaw", function(n)
  local r
  for i = 1, n do
    u:check(i, 0, max, "V")
    r = u:fromRaw(u:toRaw(i, 32), 32)
  end
  return r
end)
run("UInt32 m:encode(v, 0, max, name)", function(n)
  local r
  for i = 1, n do r = u:encode(i, 0, max, "V", 32) end
  return r
end)
local f = model.Float(32)
run("Float32 m:toRaw + m:fromRaw", function(n)
  local r
  for i = 1, n do r = f:fromRaw(f:toRaw(i * 0.5, 32), 32) end
  return r
end)
local var = {disp = "{:#x}", model = u, path = "Bench.V", name = "V"}
for _, c in ipairs{{"{:#x}", 0x1234}, {"{:#08x}", 0x1234}, {"{:d}", 1234}, {"{}", 0.1},
                   {"{:.3f} V", 1.25}} do
  run(("format(%q, %s)"):format(c[1], tostring(c[2])), function(n)
    for _ = 1, n do model.format(c[1], c[2]) end
  end)
end
run("genDisp {:#x}", function(n) for i = 1, n do model.genDisp(var, i) end end)
run("parseDisp '0x10'", function(n) for _ = 1, n do model.parseDisp(var, "0x10") end end)
run("literal '[1, 2, 3]'", function(n) for _ = 1, n do model.literal("[1, 2, 3]") end end)
