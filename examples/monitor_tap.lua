-- monitor_tap.lua: a full-rate path with a sampled debug branch.
--
--   gen (Prbs generator thread)
--     >> main (Fifo, zero copy)  >> check (Prbs checker)      full rate
--     >> tap (Fifo, 100 deep, copies the first 64 bytes)
--          >> rate (RateDrop, one frame per 0.1 s)
--          >> debug (Lua slave: prints a few frames)          sampled
--
-- The main path is the primary (first connected), so frames are allocated
-- from it and it sees each frame last. The tap copies, so the debug branch
-- never holds the full-rate buffers; what it cannot take, it drops and
-- counts.
--
-- Run: streamlua examples/monitor_tap.lua [seconds] [frameSize]
local sl = require "streamlua"

local seconds = tonumber(arg and arg[1]) or 1
local size = tonumber(arg and arg[2]) or 65536

local gen, check = sl.utilities.Prbs(), sl.utilities.Prbs()
local main = sl.stream.Fifo(0, 0, true)
local tap = sl.stream.Fifo(100, 64, false)
local rate = sl.stream.RateDrop(true, 0.1)
local debug = sl.stream.Slave{
  name = "debug", seen = 0,
  acceptFrame = function(self, frame)
    self.seen = self.seen + 1
    if self.seen <= 3 then
      local seq, words = string.unpack("<I4I4", frame:read(0, 8))
      print(string.format("debug: seq %d, %d bytes kept of a %d-byte frame",
        seq, #frame, (words + 1) * 4))
    end
  end,
}
gen.name, check.name, main.name, tap.name = "gen", "check", "main", "tap"

_ = gen >> main >> check
_ = gen >> tap >> rate >> debug

gen:setTxPeriod(20)                 -- a rate limit: about 50k frames/s at most
gen:enable(size)
local mon = sl.monitor(0.5, {check, debug})
sl.run(seconds)
mon:cancel()
gen:disable()
-- let the Fifos and the tap drain (serving the loop, 10 s at most)
local t0 = sl.now()
while (check:getRxCount() + check:getRxErrors() < gen:getTxCount() or tap:size() > 0
       or debug:counters().queued > 0) and sl.now() - t0 < 10 do
  sl.sleep(0.01)
end

print(string.format("generated %d frames, %.1f MB", gen:getTxCount(),
  gen:getTxBytes() / 1e6))
print(string.format("checked   %d frames, %d errors", check:getRxCount(),
  check:getRxErrors()))
print(string.format("main fifo %d dropped; tap fifo %d dropped; rate dropped %d",
  main:dropCnt(), tap:dropCnt(), rate:counters().drops))
print(string.format("debug     %d frames sampled", debug.seen))
print(sl.graph())
if check:getRxErrors() > 0 or check:getRxCount() ~= gen:getTxCount() then
  os.exit(1)
end
if sl.interactive() then            -- streamlua -i: the graph runs on at the prompt
  gen:enable(size)
  _G.gen, _G.check, _G.main, _G.tap, _G.rate = gen, check, main, tap, rate
end
