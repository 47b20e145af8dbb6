-- One graph of bench/footprint.sh, run for a while so its queues fill:
--   streamlua bench/footprint.lua tcp <size> [seconds=2]
--     PRBS -> Fifo(100, 0, true) -> TcpClient -> TcpServer -> PRBS, one process
--   streamlua bench/footprint.lua pairs <n> [seconds=2]
--     n idle TCP bridge pairs (client and server) in one process
--   streamlua bench/footprint.lua link <size> [seconds=2]
--     PRBS -> UdpRssiPack client -> UdpRssiPack server -> PRBS, one process
-- Prints one line: what moved, the thread and descriptor counts, and the
-- bytes the graph's queues may hold, computed from their limits.
local what = assert(arg[1], "usage: footprint.lua tcp|pairs|link N [seconds]")
local n = assert(tonumber(arg[2]), "footprint.lua: N must be a number")
local secs = tonumber(arg[3] or "2")

local pid = io.open("/proc/self/stat"):read("a"):match("^(%d+)")

local function count(dir)
  local p = io.popen("ls /proc/" .. pid .. "/" .. dir .. " 2>/dev/null | wc -l")
  local c = tonumber(p:read("a"))
  p:close()
  return c
end

local function report(moved, queues)
  print(string.format("%s %d: %s, threads %d, fds %d, queues %s", what, n, moved,
    count("task"), count("fd"), queues and string.format("%d KiB", queues // 1024) or "-"))
end

local min, max = math.min, math.max
local READ = 256 * 1024         -- what one read may add past the delivery limit
local HEAD = 19                 -- a message's headers on the send queue

-- What a bridge's two queues may hold for frames of `size` bytes: the send
-- queue (1,000 messages, or its byte limit but at least one message) and
-- the delivery queue (1,024 frames, or its byte limit, plus one read).
local function bridge_bytes(tx_end, rx_end, size)
  return min(1000 * (size + HEAD), max(tx_end:counters().maxQueueBytes, size + HEAD)) +
         min(1024 * size, rx_end:counters().maxQueueBytes) + max(size, READ)
end

if what == "tcp" then
  local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
  local srv = sl.stream.TcpServer("127.0.0.1", 0)
  local cli = sl.stream.TcpClient("127.0.0.1", srv:getPort())
  local fifo = sl.stream.Fifo(100, 0, true)
  _ = gen >> fifo >> cli
  _ = srv >> chk
  gen:enable(n)
  sl.sleep(secs)
  gen:disable()
  -- the Fifo: its depth queued and as much again taken by its thread, or
  -- its byte limit (a frame alone passes it)
  local fifo_b = min(200 * n, max(fifo:maxQueueBytes(), n))
  report(string.format("%d frames in, %d dropped by the Fifo, %d received", gen:getTxCount(),
    fifo:dropCnt(), chk:getRxCount()), fifo_b + bridge_bytes(cli, srv, n))
  cli:stop(); srv:stop(); fifo:stop()
elseif what == "pairs" then
  local keep = {}
  for i = 1, n do
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local cli = sl.stream.TcpClient("127.0.0.1", srv:getPort())
    keep[i] = {srv, cli}
  end
  sl.sleep(secs)
  -- each pair's two bridges, either direction, frames of the byte limit
  local p = keep[1]
  report(string.format("%d pairs", n),
    n * 2 * bridge_bytes(p[2], p[1], p[1]:counters().maxQueueBytes))
  for _, p in ipairs(keep) do p[2]:stop(); p[1]:stop() end
elseif what == "link" then
  local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
  local srv = sl.protocols.UdpRssiPack{host = "127.0.0.1", port = 0, server = true,
                                        jumbo = true, packVer = 2}
  local cli = sl.protocols.UdpRssiPack{host = "127.0.0.1", port = srv:getPort(),
                                        jumbo = true, packVer = 2, wait = true}
  _ = gen >> cli:application(0)
  _ = srv:application(0) >> chk
  gen:enable(n)
  sl.sleep(secs)
  gen:disable()
  for _ = 1, 1000 do                  -- up to 10 s for the link to drain
    if chk:getRxCount() >= gen:getTxCount() then break end
    sl.sleep(0.01)
  end
  report(string.format("%d frames in, %d checked, %d errors", gen:getTxCount(),
    chk:getRxCount(), chk:getRxErrors()))
  cli:stop(); srv:stop()
else
  error("footprint.lua: unknown graph " .. what)
end
