-- udp_echo_client.lua: a client for udp_echo.lua. It sends datagrams with
-- a udp.Client, checks that each comes back unchanged, and prints a
-- summary.
--
--   streamlua examples/udp_echo_client.lua PORT [datagrams=1000] [size=1400] [bye=1]
--
-- Datagrams go out in windows of 32, each window echoed before the next;
-- UDP may lose one, so a window not echoed within a second is sent again
-- (up to 3 times) and the resends are counted. With `bye` 1 it ends by
-- sending "bye", which stops the server. Exits 0 when every datagram came
-- back right, 1 otherwise.
local sl = require "streamlua"

local port = tonumber(arg and arg[1])
if not port then
  io.stderr:write("usage: udp_echo_client.lua PORT [datagrams] [size] [bye]\n")
  os.exit(2)
end
local count = tonumber(arg[2]) or 1000
local size = math.max(4, math.min(1472, tonumber(arg[3]) or 1400))
local bye = (tonumber(arg[4]) or 1) ~= 0

-- Serves the loop until cond() holds or `seconds` pass; whether it held.
local function waitFor(cond, seconds)
  local deadline = sl.now() + seconds
  while not cond() and sl.now() < deadline do sl.sleep(0.002) end
  return cond()
end

-- Datagram seq: its number, then bytes that differ from one to the next.
local function payload(seq)
  local fill = string.char(48 + seq % 10, 65 + seq % 26)
  return string.pack("<I4", seq) .. fill:rep(size):sub(1, size - 4)
end

local cli = sl.udp.Client("127.0.0.1", port)
cli.name = "udp.Client"
cli:setRxBufferCount(64)
local got, bad = {}, 0
local check = sl.stream.Slave{name = "check", acceptFrame = function(_, f)
  local s = f:read()
  local seq = #s >= 4 and string.unpack("<I4", s) or -1
  if s ~= payload(seq) then bad = bad + 1 else got[seq] = true end
end}
local src = sl.stream.Master()
src.name = "src"
_ = src >> cli >> check

local function send(data)
  local f = src:reqFrame(#data)
  f:write(data)
  src:sendFrame(f)
end

-- Whether every datagram first..last came back.
local function echoed(first, last)
  for seq = first, last do if not got[seq] then return false end end
  return true
end

local t0 = sl.now()
local resends, first = 0, 0
while first < count do
  local last = math.min(first + 31, count - 1)
  local tries = 0
  repeat
    for seq = first, last do
      if not got[seq] then send(payload(seq)); if tries > 0 then resends = resends + 1 end end
    end
    tries = tries + 1
  until waitFor(function() return echoed(first, last) end, 1) or tries > 3
  if not echoed(first, last) then break end
  first = last + 1
end
local dt = sl.now() - t0
local back = 0
for _ in pairs(got) do back = back + 1 end
print(("sent %d datagrams of %d bytes, %d echoed, %d wrong, %d sent again, %.1f MB/s both ways"):format(
  count, size, back, bad, resends, 2 * back * size / dt / 1e6))

if bye then send("bye") end
if sl.interactive and sl.interactive() then   -- streamlua -i: keep them at the prompt
  _G.cli, _G.src, _G.check = cli, src, check
else
  cli:stop()
  if back ~= count or bad > 0 then os.exit(1) end
end
