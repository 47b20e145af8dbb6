-- demo.lua: a source, a tap and a sink moving real frames.
--
--   source (Lua master, driven by a timer)
--     >> checker  (Lua slave: checks each frame's sequence number)
--     >> sink     (plain slave: counts frames and bytes; primary, so
--                  reqFrame allocates from its pool)
--
-- Run: streamlua examples/demo.lua [frames] [size]
local sl = require "streamlua"

local frames = tonumber(arg and arg[1]) or 1000
local size = tonumber(arg and arg[2]) or 256

local sink = sl.stream.Slave()
sink:setFixedSize(size)          -- pooled buffers of one size, reused
sink:setPoolSize(16)

local checker = sl.stream.Slave{
  seen = 0, bad = 0,
  acceptFrame = function(self, frame)
    local n = string.unpack("<I4", frame:read(0, 4))
    if n ~= self.seen or #frame ~= size then self.bad = self.bad + 1 end
    self.seen = self.seen + 1
  end,
}

local source = sl.stream.Master()
_ = source >> sink               -- first slave: the primary
_ = source >> checker

local pad = string.rep("\xa5", size - 4)
local sent = 0
local t0 = os.clock()

-- Send a burst of 100 frames every millisecond until done.
sl.every(0.001, function()
  for _ = 1, 100 do
    if sent == frames then return sl.stop() end
    local f = source:reqFrame(size, true)
    f:write(string.pack("<I4", sent) .. pad)
    f:setChannel(1)
    source:sendFrame(f)
    sent = sent + 1
  end
end)

sl.run(10)

collectgarbage()                 -- frames Lua dropped go back to the pool
print(string.format("sent     %d frames of %d bytes", sent, size))
print(string.format("sink     %d frames, %d bytes (pool: %d buffers live)",
  sink:getFrameCount(), sink:getByteCount(), sink:getAllocCount()))
print(string.format("checker  %d frames, %d out of order or wrong size",
  checker.seen, checker.bad))
print(string.format("cpu      %.3f s", os.clock() - t0))
if checker.bad > 0 or sink:getFrameCount() ~= frames then os.exit(1) end
