-- The near side of bench/soak.sh: PRBS generator -> Fifo -> TcpClient.
-- Prints every second (flushed) the generator's count, the Fifo's drops and
-- depth and the client's counters. On SIGTERM it stops the generator, waits
-- (up to 30 s) for the Fifo and the client to hand everything on, and prints
-- a last line with "final".
--   streamlua bench/soak_near.lua port [size=2048 [periodUs=500 [depth=4096]]]
local port = assert(tonumber(arg[1]), "usage: soak_near.lua port [size [periodUs [depth]]]")
local size = tonumber(arg[2] or "2048")
local period = tonumber(arg[3] or "500")
local depth = tonumber(arg[4] or "4096")
local testing = require "streamlua.testing"

local gen = sl.utilities.Prbs()
local fifo = sl.stream.Fifo(depth)
local cli = sl.stream.TcpClient("127.0.0.1", port)
_ = gen >> fifo >> cli

local function report(tag)
  local c = cli:counters()
  io.stdout:write(string.format(
    "near %s tx=%d fifoDrops=%d fifoDepth=%d tcpTx=%d tcpDrops=%d tcpErrors=%d conns=%d\n",
    tag, gen:getTxCount(), fifo:dropCnt(), fifo:size(), c.txFrames, c.drops,
    c.errors, c.connections))
  io.stdout:flush()
end

gen:setTxPeriod(period)
gen:enable(size)
sl.every(1, function() report("tick") end)
sl.run()
gen:disable()
testing.serveUntil(function()
  return fifo:size() == 0 and cli:counters().txFrames + fifo:dropCnt() + cli:counters().drops
         >= gen:getTxCount()
end, 30)
sl.sleep(0.5)
report("final")
cli:stop()
fifo:stop()
