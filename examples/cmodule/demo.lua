-- The C stage of byteswap.c between a generator and a checker:
--   LUA_CPATH='examples/cmodule/?.so;;' streamlua examples/cmodule/demo.lua [frames] [size]
-- A Prbs sends frames from its thread through two ByteSwaps (swapping twice
-- gives back the bytes sent) to a Prbs that checks them; a Lua slave shows
-- what one ByteSwap makes of a frame.
local sl = require "streamlua"
local byteswap = require "byteswap"

local frames = tonumber(arg[1]) or 1000
local size = tonumber(arg[2]) or 1024

-- One frame through one stage: each 4-byte word reversed.
local swap = byteswap.ByteSwap(4)
local got
local m = sl.stream.Master()
_ = m >> swap >> function(f) got = f:read() end
local f = m:reqFrame(10)
f:write("\1\2\3\4\5\6\7\8\9\10")
m:sendFrame(f)
print("swapped", (got:gsub(".", function(c) return string.format("%02x", c:byte()) end)))

-- Many frames from a generator thread through two stages.
local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
local a, b = byteswap.ByteSwap(4), byteswap.ByteSwap(4)
_ = gen >> a >> b >> chk
gen:enable(size)
local deadline = sl.now() + 60
while chk:getRxCount() + chk:getRxErrors() < frames and sl.now() < deadline do
  sl.sleep(0.01)
end
gen:disable()
local c = a:counters()
print("checked", chk:getRxCount() >= frames, "errors", chk:getRxErrors(),
      "drops", c.drops, "passed", c.rxFrames == c.txFrames)
