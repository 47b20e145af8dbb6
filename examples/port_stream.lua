-- port_stream.lua: a pyrogue stream script ported line by line (README,
-- "Porting guide"): a PRBS generator through a Fifo to a checker and to a
-- Lua-defined slave that counts, then a Lua-defined master that sends text.
--
--   streamlua examples/port_stream.lua
local sl = require "streamlua"

local function Counter()
  return sl.stream.Slave{frames = 0, bytes = 0,
    _acceptFrame = function(self, frame)
      local lock <close> = frame:lock()
      self.frames = self.frames + 1
      self.bytes = self.bytes + frame:getPayload()
    end}
end

local function Sender()
  local tx = sl.stream.Master()
  function tx:send(text)
    local frame = self:_reqFrame(#text, true)
    frame:write(text, 0)
    self:_sendFrame(frame)
  end
  return tx
end

local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
local fifo = sl.stream.Fifo(0, 0, false)
local count = Counter()
_ = gen >> fifo >> chk
_ = fifo >> count
for i = 1, 1000 do
  gen:genFrame(1024)
end
local deadline = sl.now() + 10
while (chk:getRxCount() < 1000 or count.frames < 1000) and sl.now() < deadline do
  sl.sleep(0.01)
end
print(("checked %d frames, %d errors"):format(chk:getRxCount(), chk:getRxErrors()))
print(("counted %d frames, %d bytes"):format(count.frames, count.bytes))

local tx = Sender()
_ = tx >> count
tx:send("hello")
print(("counted %d frames, %d bytes"):format(count.frames, count.bytes))
