-- Per-call cost of the pyrogue models and display helpers (pure Lua, one
-- thread). Run from the project root:
--
--   lua5.4 bench/bench_model.lua [calls-per-run]      (default 2000000)
--
-- Each figure is the best of 5 runs of a loop of that many calls, in CPU
-- time (os.clock), minus nothing: the empty loop is printed for reference.
package.path = "lua/?.lua;" .. package.path
local model = require "streamlua.pyrogue.model"

local N = tonumber(arg and arg[1]) or 2000000

local function run(name, n, f)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = os.clock()
    f(n)
    local dt = os.clock() - t0
    if dt < best then best = dt end
  end
  print(string.format("%-34s %8.1f ns/call", name, best / n * 1e9))
end

local u = model.UInt(32)
local max = u.maxValue
run("empty loop", N, function(n) for _ = 1, n do end end)
run("UInt32 m:check(v, 0, max, name)", N, function(n)
  for i = 1, n do u:check(i, 0, max, "V") end
end)
run("UInt32 m:toRaw(v, 32)", N, function(n)
  local r
  for i = 1, n do r = u:toRaw(i, 32) end
  return r
end)
run("UInt32 m:fromRaw(raw, 32)", N, function(n)
  local r
  for i = 1, n do r = u:fromRaw(i, 32) end
  return r
end)
run("UInt32 check + toRaw + fromRaw", N, function(n)
  local r
  for i = 1, n do
    u:check(i, 0, max, "V")
    r = u:fromRaw(u:toRaw(i, 32), 32)
  end
  return r
end)
run("UInt32 m:encode(v, 0, max, name)", N, function(n)
  local r
  for i = 1, n do r = u:encode(i, 0, max, "V", 32) end
  return r
end)
local f = model.Float(32)
run("Float32 m:toRaw + m:fromRaw", N, function(n)
  local r
  for i = 1, n do r = f:fromRaw(f:toRaw(i * 0.5, 32), 32) end
  return r
end)
local M = N // 10
local var = {disp = "{:#x}", model = u, path = "Bench.V", name = "V"}
for _, c in ipairs{{"{:#x}", 0x1234}, {"{:#08x}", 0x1234}, {"{:d}", 1234}, {"{}", 0.1},
                   {"{:.3f} V", 1.25}} do
  run(("format(%q, %s)"):format(c[1], tostring(c[2])), M, function(n)
    for _ = 1, n do model.format(c[1], c[2]) end
  end)
end
run("genDisp {:#x}", M, function(n) for i = 1, n do model.genDisp(var, i) end end)
run("parseDisp '0x10'", M, function(n) for _ = 1, n do model.parseDisp(var, "0x10") end end)
run("literal '[1, 2, 3]'", M, function(n) for _ = 1, n do model.literal("[1, 2, 3]") end end)
