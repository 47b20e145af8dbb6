-- bench_block.lua: a register block's per-call cost against Emulate, next
-- to the plain master's readU32/writeU32, and the shadow calls alone:
--   blk:start(Read, 0, 4); blk:wait(); blk:getUInt(0, 32)   vs   m:readU32(a)
--
--   build-bench/streamlua bench/bench_block.lua [seconds-per-measurement]
--
-- Each measurement repeats the operation in batches until `seconds` (0.5
-- by default) of this process's CPU time (os.clock) have passed and prints
-- the CPU time per call (single-threaded, never waits: CPU time is not
-- inflated by the other processes of a shared machine).
local sl = require "streamlua"
local mem = sl.memory

local seconds = tonumber(arg and arg[1]) or 0.5

local emu = mem.Emulate(4, 4096)
local hub = mem.Hub(0x1000)
_ = hub >> emu
local blk = mem.Block(0x8, 8)
_ = blk >> hub
local m = mem.Master()
_ = m >> hub

local measure = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/cputime.lua")

local function timed(name, f)
  print(string.format("%-46s %8.3f us/call", name, measure(f, seconds) * 1e6))
end

local Read, Write = mem.Read, mem.Write
timed("blk:start(Read,0,4); blk:wait(); getUInt", function(n)
  local s = 0
  for _ = 1, n do
    blk:start(Read, 0, 4); blk:wait(); s = s + blk:getUInt(0, 32)
  end
  return s
end)
timed("m:readU32(0x8)", function(n)
  local s = 0
  for _ = 1, n do s = s + m:readU32(0x8) end
  return s
end)
timed("blk:setUInt; blk:start(Write,0,4); blk:wait()", function(n)
  for i = 1, n do
    blk:setUInt(0, 32, i); blk:start(Write, 0, 4); blk:wait()
  end
end)
timed("m:writeU32(0x8, v)", function(n)
  for i = 1, n do m:writeU32(0x8, i & 0xffffffff) end
end)
timed("blk:getUInt(4, 12)", function(n)
  local s = 0
  for _ = 1, n do s = s + blk:getUInt(4, 12) end
  return s
end)
timed("blk:setUInt(4, 12, v)", function(n)
  for i = 1, n do blk:setUInt(4, 12, i) end
end)
