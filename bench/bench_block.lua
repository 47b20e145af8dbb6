-- Per-call cost of a register block's read against Emulate, next to the
-- plain master's readU32:
--   blk:start(Read, 0, 4); blk:wait(); blk:getUInt(0, 32)   vs   m:readU32(a)
-- and of the shadow calls alone. Run: build/streamlua bench/bench_block.lua [n]
local sl = require "streamlua"
local mem = sl.memory
local N = tonumber(arg and arg[1]) or 1000000

local emu = mem.Emulate(4, 4096)
local hub = mem.Hub(0x1000)
_ = hub >> emu
local blk = mem.Block(0x8, 8)
_ = blk >> hub
local m = mem.Master()
_ = m >> hub

local function timed(name, f)
  f(N // 10)   -- warm up
  collectgarbage()
  local t0 = os.clock()
  f(N)
  local us = (os.clock() - t0) / N * 1e6
  print(string.format("%-44s %8.3f us/call", name, us))
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
