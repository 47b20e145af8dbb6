-- bench_tree.lua: the register tree (sl.pyrogue) per operation, beside
-- pyrogue v6.15.0's figures from Rogue's test_variable_rate_perf.py on this
-- machine kind.
--
--   build-bench/streamlua bench/bench_tree.lua [seconds-per-measurement]
--
-- Each measurement repeats the operation in batches until `seconds` (0.5
-- by default) of this process's CPU time (os.clock) have passed and prints
-- the CPU time per operation, operations per second and the ratio to
-- pyrogue's time. CPU time, not wall time: the work is single-threaded and
-- never waits, and the machine is shared with builds (wall time then
-- counts the other processes' turns too).
local sl = require "streamlua"
local pr = sl.pyrogue

local seconds = tonumber(arg and arg[1]) or 0.5

-- Runs f(n) (n operations) until `seconds` of CPU time passed; returns
-- seconds per operation.
local function measure(f)
  local n, total, count = 1000, 0, 0
  f(n)                                   -- warm up
  while total < seconds do
    local t0 = os.clock()
    f(n)
    total = total + (os.clock() - t0)
    count = count + n
    if n < 1000000 then n = n * 2 end
  end
  return total / count
end

local function report(name, perOp, pyrogueUs)
  local us = perOp * 1e6
  print(("%-28s %8.3f us/op %12.0f ops/s   pyrogue %5.2f us: %5.1fx")
        :format(name, us, 1 / perOp, pyrogueUs, pyrogueUs / us))
end

-- Local and linked variables (a tree of its own; no bus).
local function localAndLinked()
  local root = pr.Root{name = "Top", pollEn = false}
  local dev = pr.Device{name = "Dev"}
  root:add(dev)
  dev:add(pr.LocalVariable{name = "Local", value = 0})
  dev:add(pr.LocalVariable{name = "Target", value = 0})
  dev:add(pr.LinkVariable{name = "Linked", variable = dev.Target})
  root:start()
  local lv, lk = dev.Local, dev.Linked
  report("local get", measure(function(n) for _ = 1, n do lv:get() end end), 1.39)
  report("local set", measure(function(n) for i = 1, n do lv:set(i) end end), 1.73)
  report("linked get", measure(function(n) for _ = 1, n do lk:get() end end), 4.53)
  report("linked set", measure(function(n) for i = 1, n do lk:set(i) end end), 6.30)
  root:stop()
end

print(("bench_tree: %.2f s per measurement"):format(seconds))
localAndLinked()
