-- udp_echo.lua: a udp.Server that sends every datagram it receives back to
-- whoever sent it last, unchanged, the way a board answers its host.
--
--   streamlua examples/udp_echo.lua [port=0] [seconds=30] [jumbo=0]
--
-- Prints "listening <port>" (port 0 picks a free port), serves until a
-- datagram "bye" arrives or the time is up, then prints what it echoed.
-- It listens on 127.0.0.1 only.
local sl = require "streamlua"

local port = tonumber(arg and arg[1]) or 0
local seconds = tonumber(arg and arg[2]) or 30
local jumbo = (tonumber(arg and arg[3]) or 0) ~= 0

local srv = sl.udp.Server(port, jumbo, "127.0.0.1")
srv:setRxBufferCount(1000)
local echoed = 0
local done = false
-- Echo through a Lua stage: it can look at each frame on the way back.
local stage = sl.stream.Slave{acceptFrame = function(self, frame)
  if #frame == 3 and frame:read() == "bye" then
    done = true
    return sl.stop()
  end
  echoed = echoed + 1
  self:sendFrame(frame)
end}
_ = srv >> stage >> srv

print("listening " .. srv:getPort())
io.stdout:flush()
sl.run(seconds)
print(string.format("echoed %d frames%s", echoed, done and "" or " (timed out)"))
if not sl.interactive() then      -- streamlua -i: keep echoing at the prompt
  srv:stop()
  srv:removeSlave(stage)                -- the loop srv >> stage >> srv held itself
end
