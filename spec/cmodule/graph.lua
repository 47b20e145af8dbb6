-- Run by cmodule_spec.lua under an installed streamlua, with the ByteSwap
-- module of examples/cmodule on LUA_CPATH. Raises on the first mismatch;
-- prints "ok" at the end.
local sl = require "streamlua"
local byteswap = require "byteswap"
local testing = require "streamlua.testing"

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- One frame through one stage, caught by a Lua slave.
local function through(width, data, channel, err, flags)
  local m, swap = sl.stream.Master(), byteswap.ByteSwap(width)
  local got = {}
  _ = m >> swap >> sl.stream.Slave{acceptFrame = function(_, f)
    got[#got + 1] = {f:read(), f:getChannel(), f:getError(), f:getFlags()}
  end}
  local f = m:reqFrame(#data)
  f:write(data)
  f:setChannel(channel or 0)
  f:setError(err or 0)
  f:setFlags(flags or 0)
  m:sendFrame(f)
  check(#got == 1, "frames out:", #got)
  return got[1], swap
end

-- Words reversed; a last partial word copied as it is.
local cases = {
  {2, "0102030405", "0201040305"},
  {4, "0102030405060708090a", "0403020108070605090a"},
  {8, "000102030405060708", "070605040302010008"},
  {4, "", ""},
}
for _, c in ipairs(cases) do
  local data = c[2]:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  local got = through(c[1], data)
  check(hex(got[1]) == c[3], "width", c[1], "got", hex(got[1]), "want", c[3])
end

-- Channel, error and flags go with the bytes; counters count.
local got, swap = through(4, "abcd", 7, 3, 0x0102)
check(got[1] == "dcba" and got[2] == 7 and got[3] == 3 and got[4] == 0x0102,
      "metadata", tostring(got[2]), tostring(got[3]), tostring(got[4]))
local c = swap:counters()
check(c.rxFrames == 1 and c.txFrames == 1 and c.drops == 0, "counters")
check(swap:getWidth() == 4 and byteswap.ByteSwap():getWidth() == 4, "getWidth")
check(swap:kind() == "byteswap.ByteSwap", "kind", swap:kind())
check(tostring(swap):find("byteswap.ByteSwap", 1, true), "tostring", tostring(swap))

-- Bad arguments name the function and the argument.
local ok, msg = pcall(byteswap.ByteSwap, 3)
check(not ok and msg:find("bad argument #1", 1, true) and msg:find("2, 4 or 8", 1, true),
      "width 3:", tostring(msg))
ok, msg = pcall(swap.getWidth, sl.stream.Fifo(1))
check(not ok and msg:find("streamlua.byteswap.ByteSwap expected, got streamlua.Fifo", 1, true),
      "getWidth on a Fifo:", tostring(msg))

-- Its roles are the stream ones: << and the slave methods work, a memory
-- link does not.
local m, s = sl.stream.Master(), sl.stream.Slave()
local mid = byteswap.ByteSwap(2)
_ = s << mid << m
m:sendFrame(testing.frame("abcd"))
check(s:getFrameCount() == 1 and s:getByteCount() == 4, "<< link", s:getFrameCount())
ok, msg = pcall(function() return sl.memory.Master() >> mid end)
check(not ok and msg:find("attempt to connect", 1, true), "memory link:", tostring(msg))

-- Frames from a generator thread through two stages (swapping twice gives
-- the bytes back) to a checker: delivery is synchronous, so once the
-- generator is disabled every count is final.
local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
local a, b = byteswap.ByteSwap(4), byteswap.ByteSwap(4)
_ = gen >> a >> b >> chk
gen:enable(4096)
testing.serveUntil(function() return chk:getRxCount() + chk:getRxErrors() >= 500 end, 60)
gen:disable()
check(chk:getRxCount() >= 500 and chk:getRxErrors() == 0,
      "prbs", chk:getRxCount(), chk:getRxErrors())
check(a:counters().txFrames == chk:getRxCount() and b:counters().txFrames == chk:getRxCount(),
      "thread counts", a:counters().txFrames, b:counters().txFrames, chk:getRxCount())

-- The same with a Fifo between the stages: the second one runs in the
-- Fifo's thread.
local gen2, chk2 = sl.utilities.Prbs(), sl.utilities.Prbs()
local c1, c2 = byteswap.ByteSwap(8), byteswap.ByteSwap(8)
_ = gen2 >> c1 >> sl.stream.Fifo(0, 0, true) >> c2 >> chk2
gen2:setWidth(64)
chk2:setWidth(64)
for _ = 1, 300 do gen2:genFrame(1024) end
testing.serveUntil(function() return chk2:getRxCount() + chk2:getRxErrors() >= 300 end, 60)
check(chk2:getRxCount() == 300 and chk2:getRxErrors() == 0,
      "fifo prbs", chk2:getRxCount(), chk2:getRxErrors())

-- One core in the process: the module's libraries are the program's.
local maps = io.open("/proc/self/maps")
if maps then
  local libs = {}
  for line in maps:lines() do
    local path = line:match("(/%S*libstreamlua[%w-]*%.so%S*)$")
    if path then libs[path] = true end
  end
  maps:close()
  local n = 0
  for _ in pairs(libs) do n = n + 1 end
  check(n == 2, "libstreamlua files mapped:", n)
end

print("ok")
