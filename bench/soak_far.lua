-- The far side of bench/soak.sh: TcpServer -> PRBS checker. Prints its base
-- port once, then every 0.05 s (flushed) the checker's counters and the
-- first and last sequence numbers it has seen, so the soak can account for
-- the frames lost when this process is killed. On SIGTERM it prints a last
-- line with "final".
--   streamlua bench/soak_far.lua [port=0]
local port = tonumber(arg[1] or "0")
local srv = sl.stream.TcpServer("127.0.0.1", port)
local chk = sl.utilities.Prbs()
local first, last, seen = -1, -1, 0
local tap = sl.stream.Slave{acceptFrame = function(_, f)
  local s = string.unpack("<I4", f:read(0, 4))
  if first < 0 then first = s end
  last, seen = s, seen + 1
end}
_ = srv >> chk
_ = srv >> tap

local function report(tag)
  io.stdout:write(string.format("far %s rx=%d errors=%d first=%d last=%d seen=%d\n",
    tag, chk:getRxCount(), chk:getRxErrors(), first, last, seen))
  io.stdout:flush()
end

io.stdout:write(string.format("port %d\n", srv:getPort()))
io.stdout:flush()
sl.every(0.05, function() report("tick") end)
sl.run()
report("final")
srv:stop()
