-- bench_tree.lua: the register tree (sl.pyrogue) per operation, beside
-- pyrogue v6.15.0's figures from Rogue's test_variable_rate_perf.py on this
-- machine kind; remote variables and ReadAll beside the raw sl.memory.Master
-- transactions they issue, over sl.memory.Emulate and over sl.srp.SrpV3 ==
-- sl.srp.SrpV3Emulation, in one process.
--
--   build-bench/streamlua bench/bench_tree.lua [seconds-per-measurement [repeats]]
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
-- [repeats] (1 by default): the least of that many measurements, which
-- the other processes of a loaded machine disturb less than one mean
local repeats = math.tointeger(tonumber(arg and arg[2])) or 1

local cputime = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/cputime.lua")

local function measure(f)
  local best = cputime(f, seconds)
  for _ = 2, repeats do best = math.min(best, cputime(f, seconds)) end
  return best
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

-- A remote operation beside the raw master doing the same transactions.
local function reportRaw(name, perOp, rawPerOp, pyrogueUs)
  local us, raw = perOp * 1e6, rawPerOp * 1e6
  print(("%-28s %8.3f us/op %12.0f ops/s   raw %7.3f us: %4.2fx%s")
        :format(name, us, 1 / perOp, raw, us / raw,
                pyrogueUs and ("   pyrogue %5.2f us: %5.1fx"):format(pyrogueUs, pyrogueUs / us)
                or ""))
end

-- A started tree: one device over memBase with `n` UInt32 RemoteVariables
-- R[i] at 4*i (each its own block).
local function remoteTree(memBase, n)
  local root = pr.Root{name = "Top", pollEn = false}
  local dev = pr.Device{name = "Dev", memBase = memBase}
  root:add(dev)
  dev:addRemoteVariables(n, 4, {name = "R", offset = 0})
  root:start()
  return root, dev
end

-- get = one Read; set = Write + Verify (the raw side: writeU32 + read);
-- set without verify = one Write.
local function remote(label, memBase)
  local root, dev = remoteTree(memBase, 1)
  local v = dev.R[0]
  local m = sl.memory.Master()
  _ = m >> memBase
  local noVerify = {verify = false}
  reportRaw(label .. " remote get", measure(function(n) for _ = 1, n do v:get() end end),
            measure(function(n) for _ = 1, n do m:readU32(0) end end), 3.95)
  reportRaw(label .. " remote set", measure(function(n) for i = 1, n do v:set(i) end end),
            measure(function(n) for i = 1, n do m:writeU32(0, i); m:read(0, 4) end end), 6.02)
  reportRaw(label .. " set no verify",
            measure(function(n) for i = 1, n do v:set(i, noVerify) end end),
            measure(function(n) for i = 1, n do m:writeU32(0, i) end end), 4.72)
  root:stop()
end

-- ReadAll of 1,000 variables: 1,000 4-byte reads (raw: m:read each).
local function readAll(label, memBase)
  local N = 1000
  local root = remoteTree(memBase, N)
  local m = sl.memory.Master()
  _ = m >> memBase
  reportRaw(label .. " ReadAll 1000", measure(function(n)
    for _ = 1, n do root.ReadAll() end
  end), measure(function(n)
    for _ = 1, n do
      for a = 0, 4 * (N - 1), 4 do m:read(a, 4) end
    end
  end))
  root:stop()
end

print(("bench_tree: %.2f s per measurement, least of %d"):format(seconds, repeats))
localAndLinked()
local srp, emu = sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
_ = srp == emu
remote("Emulate", sl.memory.Emulate(4, 0x1000))
remote("SrpV3", srp)
readAll("Emulate", sl.memory.Emulate(4, 0x1000))
readAll("SrpV3", srp)
