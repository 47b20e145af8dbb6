-- tcp_echo.lua: a TcpServer that sends every frame it receives back to
-- its client, unchanged (channel, error, flags and payload), the way a
-- board-side process serves a desk-side Rogue GUI.
--
--   streamlua examples/tcp_echo.lua [port=0] [seconds=30]
--
-- Prints "listening <port>" (port 0 picks free ports), serves until a frame
-- on channel 255 arrives or the time is up, then prints what it echoed.
local sl = require "streamlua"

local port = tonumber(arg and arg[1]) or 0
local seconds = tonumber(arg and arg[2]) or 30

local srv = sl.stream.TcpServer("127.0.0.1", port)
local echoed = 0
local done = false
-- Echo through a Lua stage: it can look at each frame on the way back.
local stage = sl.stream.Slave{acceptFrame = function(self, frame)
  if frame:getChannel() == 255 then
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
end
