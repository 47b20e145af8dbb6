-- tcp_echo_client.lua: a client for tcp_echo.lua. It sends frames over a
-- stream TcpClient, checks that each comes back unchanged (payload,
-- channel, flags, error) and in order, and prints a summary.
--
--   streamlua examples/tcp_echo_client.lua PORT [frames=1000] [size=4096] [bye=1]
--
-- Frames go out in windows of 64, each window echoed before the next
-- (the loop serves the echoes until the last of the window is back).
-- With `bye` 1 it ends by sending a frame on channel 255, which stops the
-- server. Exits 0 when every frame came back right, 1 otherwise.
local sl = require "streamlua"

local port = tonumber(arg and arg[1])
if not port then
  io.stderr:write("usage: tcp_echo_client.lua PORT [frames] [size] [bye]\n")
  os.exit(2)
end
local frames = tonumber(arg[2]) or 1000
local size = math.max(4, tonumber(arg[3]) or 4096)
local bye = (tonumber(arg[4]) or 1) ~= 0

-- Frame seq: its number, then bytes that differ from frame to frame.
local function payload(seq)
  local fill = string.char(65 + seq % 26, 97 + seq % 26)
  return string.pack("<I4", seq) .. fill:rep(size):sub(1, size - 4)
end

local cli = sl.stream.TcpClient("127.0.0.1", port)
cli.name = "TcpClient"
local sent, back, bad = 0, 0, 0
local check = sl.stream.Slave{name = "check", acceptFrame = function(_, f)
  local seq = back
  if f:read() ~= payload(seq) or f:getChannel() ~= seq % 200 or
     f:getFlags() ~= seq % 65536 or f:getError() ~= seq % 7 then
    bad = bad + 1
  end
  back = back + 1
  if back == sent then sl.stop() end      -- the window is back: end sl.run
end}
local src = sl.stream.Master()
src.name = "src"
_ = src >> cli >> check

local deadline = sl.now() + 10
while not cli:ready() and sl.now() < deadline do sl.sleep(0.01) end
if not cli:ready() then
  io.stderr:write("no server on port " .. port .. "\n")
  os.exit(1)
end
local t0 = sl.now()
while sent < frames do
  for _ = 1, math.min(64, frames - sent) do
    local f = src:reqFrame(size)
    f:write(payload(sent))
    f:setChannel(sent % 200)
    f:setFlags(sent % 65536)
    f:setError(sent % 7)
    src:sendFrame(f)
    sent = sent + 1
  end
  if back < sent then sl.run(10) end       -- until the check has them all
  if back < sent then break end
end
local dt = sl.now() - t0
print(("sent %d frames of %d bytes, %d echoed, %d wrong, %.1f MB/s both ways"):format(
  sent, size, back, bad, 2 * back * size / dt / 1e6))

if bye then
  local f = src:reqFrame(0)
  f:setChannel(255)
  src:sendFrame(f)
  -- queued for the wire: wait until the server, stopping, closes the link
  deadline = sl.now() + 5
  while cli:ready() and sl.now() < deadline do sl.sleep(0.01) end
end
if sl.interactive and sl.interactive() then   -- streamlua -i: keep them at the prompt
  _G.cli, _G.src, _G.check = cli, src, check
else
  cli:stop()
  if back ~= frames or bad > 0 then os.exit(1) end
end
