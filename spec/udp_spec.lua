local sl = require "streamlua"
local testing = require "streamlua.testing"

local serve_until = testing.serveUntil

-- The client says hello so the server learns it; what the client gets
-- next goes to the list returned, with a master feeding the server.
local function introduce(srv, cli)
  local at, got = collector()
  _ = cli >> at
  local heard = 0
  _ = srv >> function() heard = heard + 1 end
  local mc, ms = sl.stream.Master(), sl.stream.Master()
  _ = mc >> cli
  _ = ms >> srv
  mc:sendFrame(testing.frame("hello"))
  assert.is_true(serve_until(function() return heard == 1 end))
  return got, ms
end

-- A server on 127.0.0.1 and a client to it, with room for bursts.
local function pair(jumbo)
  local srv = sl.udp.Server(0, jumbo, "127.0.0.1")
  local cli = sl.udp.Client("127.0.0.1", srv:getPort(), jumbo)
  srv:setRxBufferCount(200)
  cli:setRxBufferCount(200)
  return srv, cli
end

describe("sl.udp.Server / sl.udp.Client", function()
  it("are built with Rogue's sizes, pool and defaults", function()
    local srv = sl.udp.Server(0, false, "127.0.0.1")
    local port = srv:getPort()
    assert.is_true(port > 0 and port < 65536)          -- port 0 picked one
    assert.are.equal(1472, srv:maxPayload())
    assert.are.equal("UdpServer", srv:kind())
    assert.are.equal(1472, srv:getFixedSize())
    assert.are.equal(10000, srv:getPoolSize())
    assert.are.equal(0, srv:_slaveCount())
    assert.is_nil(srv:peer())                          -- heard from no one
    local j = sl.udp.Server(0, true, "127.0.0.1")
    assert.are.equal(8972, j:maxPayload())
    assert.are.equal(8972, j:getFixedSize())
    local cli = sl.udp.Client("127.0.0.1", port, true)
    assert.are.equal("UdpClient", cli:kind())
    assert.are.equal(8972, cli:maxPayload())
    assert.are.equal(port, cli:getPort())              -- where it sends
    local ip, p = cli:peer()
    assert.are.equal("127.0.0.1", ip)
    assert.are.equal(port, p)
    local c = srv:counters()
    for _, k in ipairs{"txFrames", "txBytes", "rxFrames", "rxBytes", "drops",
                       "rxDrops", "rxOversize", "oversize", "txDrops", "noPeer",
                       "rxForeign", "errors"} do
      assert.are.equal(0, c[k], k)
    end
    -- a frame asked of the endpoint comes from its pool: maxPayload blocks
    local m = sl.stream.Master()
    _ = m >> srv
    assert.are.equal(1, m:_slaveCount())
    _ = srv >> sl.stream.Slave()
    assert.are.equal(1, srv:_slaveCount())
    local f = m:reqFrame(3000)
    assert.are.equal(3 * 1472, f:getSize())           -- three pool blocks
    srv:stop(); j:stop(); cli:stop()
  end)

  it("check their arguments and report a port in use", function()
    assert.has_error(function() sl.udp.Server(-1) end)
    assert.has_error(function() sl.udp.Server(70000) end)
    assert.has_error(function() sl.udp.Client("127.0.0.1", 0) end)
    local ok, err = pcall(sl.udp.Client, "no.such.host.invalid", 9)
    assert.is_false(ok)
    assert.matches("^udp.Client: cannot resolve no.such.host.invalid:9: ", err)
    assert.is_nil(err:find("No such file or directory", 1, true))
    local srv = sl.udp.Server(0, false, "127.0.0.1")
    ok, err = pcall(sl.udp.Server, srv:getPort(), false, "127.0.0.1")
    assert.is_false(ok)
    assert.matches("udp.Server: cannot bind 127.0.0.1:%d+: Address already in use", err)
    assert.has_error(function() srv:setTimeout(0) end)
    assert.has_error(function() srv:setRxBufferCount(0) end)
    assert.has_error(function() sl.udp.Server.getPort(sl.stream.Fifo(1)) end)
    srv:setTimeout(5000)
    srv:stop()
  end)

  it("setRxBufferCount says whether the buffer holds n datagrams, and warns once", function()
    local srv = sl.udp.Server(0, false, "127.0.0.1")
    assert.is_true(srv:setRxBufferCount(20))
    assert.is_true(srv:rxBufferSize() >= 20 * 1500)
    sl.logging.setEmit(false)
    assert.is_false(srv:setRxBufferCount(1000000))      -- 1.5 GB: over rmem_max
    assert.is_false(srv:setRxBufferCount(900000))
    sl.logging.setEmit(true)
    -- an error line, so the default level (Error) shows it
    assert.are.equal(1, select(2, logged(
      "ERROR udp%.Server: receive buffer too small: .*net%.core%.rmem_max", 10)))
    srv:stop()
  end)

  it("setRxBufferCount never makes the buffer smaller than the kernel's default", function()
    local srv = sl.udp.Server(0, true, "127.0.0.1")
    local default = srv:rxBufferSize()
    assert.is_true(default > 0)
    -- Rogue's 32 datagrams would be less than the default: nothing changes
    assert.is_true(srv:setRxBufferCount(1))
    assert.is_true(srv:setRxBufferCount(32 * 1500 // 9000))
    assert.are.equal(default, srv:rxBufferSize())
    -- more than the default grows it; a smaller ask later keeps it
    local n = default // 9000 + 40
    assert.is_true(srv:setRxBufferCount(n))
    local grown = srv:rxBufferSize()
    assert.is_true(grown >= n * 9000)
    assert.is_true(srv:setRxBufferCount(2))
    assert.are.equal(grown, srv:rxBufferSize())
    srv:stop()
  end)

  it("carry datagrams both ways, byte for byte, one frame each", function()
    local srv, cli = pair(false)
    local at_srv, got_srv = collector()
    local at_cli, got_cli = collector()
    _ = srv >> at_srv
    _ = cli >> at_cli
    local up, down = sl.stream.Master(), sl.stream.Master()
    _ = up >> cli
    _ = down >> srv
    local sizes = {1, 2, 255, 256, 1000, 1471, 1472}
    for i, n in ipairs(sizes) do
      up:sendFrame(testing.frame(pattern(n, i), {channel = 3, flags = 0x101}))
    end
    assert.is_true(serve_until(function() return #got_srv == #sizes end))
    -- UDP keeps no order (a sender that moves between CPUs can see its
    -- datagrams overtake each other even on loopback): match by size
    local by_size = {}
    for _, g in ipairs(got_srv) do by_size[#g.data] = g end
    for i, n in ipairs(sizes) do
      local g = by_size[n]
      assert.is_not_nil(g, "no datagram of " .. n .. " bytes")
      assert.are.equal(pattern(n, i), g.data)
      -- channel, error and flags are not carried: 0 on arrival, as Rogue
      assert.are.equal(0, g.channel)
      assert.are.equal(0, g.flags)
      assert.are.equal(0, g.error)
    end
    down:sendFrame(testing.frame("reply"))              -- to the last sender
    assert.is_true(serve_until(function() return #got_cli == 1 end))
    assert.are.equal("reply", got_cli[1].data)
    local c = srv:counters()
    assert.are.equal(#sizes, c.rxFrames)
    assert.are.equal(1 + 2 + 255 + 256 + 1000 + 1471 + 1472, c.rxBytes)
    assert.are.equal(1, c.txFrames)
    assert.are.equal(5, c.txBytes)
    assert.are.equal(#sizes, cli:counters().txFrames)
    cli:stop(); srv:stop()
  end)

  it("carry a jumbo datagram of 8972 bytes, and a PRBS stream", function()
    local srv, cli = pair(true)
    local at, got = collector()
    _ = srv >> at
    local m = sl.stream.Master()
    _ = m >> cli
    m:sendFrame(testing.frame(pattern(8972, 5)))
    assert.is_true(serve_until(function() return #got == 1 end))
    assert.are.equal(pattern(8972, 5), got[1].data)
    local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
    _ = gen >> cli
    _ = srv >> chk
    -- one at a time: a burst may be reordered on loopback, which a PRBS
    -- checker rightly counts as errors
    for i = 1, 100 do
      gen:genFrame(4096)
      assert.is_true(serve_until(function() return chk:getRxCount() == i end))
    end
    assert.are.equal(0, chk:getRxErrors())
    cli:stop(); srv:stop()
  end)

  -- A client fed by a master, after a flush: no window is left open.
  local function oversize_rig()
    local _, cli = pair(false)
    local m = sl.stream.Master()
    _ = m >> cli
    sl.logging.flush()
    return cli, m
  end

  it("200 oversize frames of different sizes log one line, then the count", function()
    local cli, m = oversize_rig()
    local L = sl.logging
    L.setRepeatWindow(3600)      -- every frame inside one window
    L.setEmit(false)
    for i = 1, 200 do m:sendFrame(testing.frame(string.rep("z", 1472 + i))) end
    L.flush()
    L.setEmit(true)
    L.setRepeatWindow(1)
    local first, n = logged("udp%.Client: frame of %d+ bytes refused", 256)
    assert.are.equal(2, n)
    assert.matches("ERROR udp%.Client: frame of 1473 bytes refused", first)
    local last = L.history(1)[1]
    assert.matches("ERROR udp%.Client: frame of 1672 bytes refused: over maxPayload 1472 "
                   .. "%(never truncated%) %(repeated 199 times in the last [%d.]+ s%)$", last)
    assert.are.equal(200, cli:counters().oversize)
  end)

  it("a flood at the default window: a line a second at most, every frame told", function()
    local cli, m = oversize_rig()
    local L = sl.logging
    assert.are.equal(1, L.getRepeatWindow())
    L.setEmit(false)
    local mark = "udp flood mark " .. tostring(cli)
    L.log("spec.mark", L.Critical, mark)
    local t0 = os.time()
    for i = 1, 200 do m:sendFrame(testing.frame(string.rep("z", 1472 + i))) end
    local seconds = os.time() - t0 + 1
    L.flush()
    L.setEmit(true)
    local told, lines, after = 0, 0, false
    for _, l in ipairs(L.history(256)) do
      if l:find(mark, 1, true) then after = true end
      if after and l:match("udp%.Client: frame of %d+ bytes refused") then
        lines = lines + 1
        told = told + (tonumber(l:match("%(repeated (%d+) times?")) or 1)
      end
    end
    assert.are.equal(200, told)
    assert.is_true(lines <= 2 * (seconds + 1), lines)
  end)

  it("refuse a frame over maxPayload: counted, logged, never truncated", function()
    local srv, cli = pair(false)
    local at, got = collector()
    _ = srv >> at
    local m = sl.stream.Master()
    _ = m >> cli
    sl.logging.setEmit(false)
    m:sendFrame(testing.frame(string.rep("x", 1473)))
    local f = m:reqFrame(3000)                           -- 3 pool buffers
    f:write(string.rep("y", 3000))
    m:sendFrame(f)
    sl.logging.flush()           -- the second, alike, is counted until now
    sl.logging.setEmit(true)
    assert.truthy(logged("ERROR udp%.Client: frame of 1473 bytes refused"))
    assert.truthy(logged("ERROR udp%.Client: frame of 3000 bytes refused.*%(repeated 1 time"))
    local c = cli:counters()
    assert.are.equal(2, c.oversize)
    assert.are.equal(2, c.drops)
    assert.are.equal(0, c.txFrames)
    m:sendFrame(testing.frame("after"))
    assert.is_true(serve_until(function() return #got == 1 end))
    assert.are.equal("after", got[1].data)              -- nothing else came
    cli:stop(); srv:stop()
  end)

  it("a server that has heard from no one drops, counts and logs", function()
    local srv = sl.udp.Server(0, false, "127.0.0.1")
    local m = sl.stream.Master()
    _ = m >> srv
    sl.logging.setFilter("udp.Server", sl.logging.Warning)
    sl.logging.setEmit(false)
    for _ = 1, 5 do m:sendFrame(testing.frame("lost")) end
    sl.logging.setEmit(true)
    sl.logging.setFilter("udp.Server", sl.logging.Error)
    local c = srv:counters()
    assert.are.equal(5, c.noPeer)
    assert.are.equal(5, c.txDrops)
    assert.are.equal(0, c.txFrames)
    local n = select(2, logged("ERROR udp%.Server: %d+ frame%(s%) dropped: no peer yet .*%(%d+ in all%)$", 10))
    assert.are.equal(1, n)                               -- at most once a second
    srv:stop()
  end)

  it("the server answers the most recent sender", function()
    local srv = sl.udp.Server(0, false, "127.0.0.1")
    local a = sl.udp.Client("127.0.0.1", srv:getPort())
    local b = sl.udp.Client("127.0.0.1", srv:getPort())
    local at_a, got_a = collector()
    local at_b, got_b = collector()
    _ = a >> at_a
    _ = b >> at_b
    local heard = 0
    _ = srv >> function() heard = heard + 1 end
    local ma, mb, ms = sl.stream.Master(), sl.stream.Master(), sl.stream.Master()
    _ = ma >> a
    _ = mb >> b
    _ = ms >> srv
    ma:sendFrame(testing.frame("from a"))
    assert.is_true(serve_until(function() return heard == 1 end))
    ms:sendFrame(testing.frame("to a"))
    assert.is_true(serve_until(function() return #got_a == 1 end))
    mb:sendFrame(testing.frame("from b"))
    assert.is_true(serve_until(function() return heard == 2 end))
    ms:sendFrame(testing.frame("to b"))
    assert.is_true(serve_until(function() return #got_b == 1 end))
    ma:sendFrame(testing.frame("a again"))
    assert.is_true(serve_until(function() return heard == 3 end))
    ms:sendFrame(testing.frame("to a again"))
    assert.is_true(serve_until(function() return #got_a == 2 end))
    assert.are.same({"to a", "to a again"}, {got_a[1].data, got_a[2].data})
    assert.are.equal(1, #got_b)
    assert.are.equal("to b", got_b[1].data)
    assert.are.equal("127.0.0.1", (srv:peer()))
    a:stop(); b:stop(); srv:stop()
  end)

  it("a client takes datagrams from its server's port only: others are counted, logged, dropped",
    function()
      local srv = sl.udp.Server(0, false, "127.0.0.1")
      local cli = sl.udp.Client("127.0.0.1", srv:getPort())
      local got, ms = introduce(srv, cli)
      local _, cport = srv:peer()                      -- the client's port
      -- a stranger sends to the client's port from a port of its own
      local stranger = sl.udp.Client("127.0.0.1", cport)
      local mx = sl.stream.Master()
      _ = mx >> stranger
      local level = sl.logging.getLevel()
      sl.logging.setLevel(sl.logging.Warning)
      sl.logging.setEmit(false)
      mx:sendFrame(testing.frame("not yours"))
      mx:sendFrame(testing.frame("nor this"))
      local settled = serve_until(function() return cli:counters().rxForeign == 2 end)
      sl.logging.setEmit(true)
      sl.logging.setLevel(level)
      assert.is_true(settled)
      ms:sendFrame(testing.frame("from the server"))
      assert.is_true(serve_until(function() return #got == 1 end))
      assert.are.equal("from the server", got[1].data)
      local c = cli:counters()
      assert.are.equal(1, c.rxFrames)
      assert.are.equal(0, c.drops)                       -- not a loss of its own traffic
      local line, n = logged("ERROR udp%.Client: %d datagram%(s%) not from the server's port " ..
        srv:getPort() .. " dropped %(the last from 127%.0%.0%.1:%d+; %d+ in all%)", 10)
      assert.truthy(line)
      assert.are.equal(1, n)                             -- at most once a second
      stranger:stop(); cli:stop(); srv:stop()
    end)

  it("a client hears its server answer from another of the server's addresses", function()
    -- sent to 127.0.0.2, a server on every interface answers from 127.0.0.1
    local srv = sl.udp.Server(0, false)
    local cli = sl.udp.Client("127.0.0.2", srv:getPort())
    local got, ms = introduce(srv, cli)
    ms:sendFrame(testing.frame("back"))
    assert.is_true(serve_until(function() return #got == 1 end))
    assert.are.equal("back", got[1].data)
    assert.are.equal(0, cli:counters().rxForeign)
    cli:stop(); srv:stop()
  end)

  it("echo straight back (srv >> srv): batches go out in sendmmsg", function()
    local srv, cli = pair(false)
    _ = srv >> srv
    local at, got = collector()
    _ = cli >> at
    local m = sl.stream.Master()
    _ = m >> cli
    for i = 1, 100 do m:sendFrame(testing.frame(pattern(100 + i, i))) end
    assert.is_true(serve_until(function() return #got == 100 end))
    local by_size = {}                                  -- UDP keeps no order
    for _, g in ipairs(got) do by_size[#g.data] = g.data end
    for i = 1, 100 do assert.are.equal(pattern(100 + i, i), by_size[100 + i]) end
    assert.are.equal(100, srv:counters().txFrames)
    cli:stop(); srv:stop()
    srv:removeSlave(srv)                                -- the loop holds itself
  end)

  it("stop() returns promptly when nothing ever arrived", function()
    local list = {}
    for i = 1, 10 do
      list[i] = sl.udp.Server(0, i % 2 == 0, "127.0.0.1")
      list[i + 10] = sl.udp.Client("127.0.0.1", list[i]:getPort())
    end
    local t0 = sl.now()
    for _, u in ipairs(list) do u:stop() end
    assert.is_true(sl.now() - t0 < 30)                 -- a bound on a hang
    list[1]:stop()                                      -- twice is fine
  end)

  it("count and log what the kernel drops when the receiver falls behind, at the default level", function()
    local srv, cli = pair(false)
    local got = 0
    _ = srv >> function() got = got + 1 end             -- served by the loop only
    local m = sl.stream.Master()
    _ = m >> cli
    assert.are.equal(sl.logging.Error, sl.logging.getLevel())
    sl.logging.setEmit(false)
    for _ = 1, 8000 do m:sendFrame(testing.frame("d")) end
    os.execute("sleep 0.5")     -- the loop does not run: the mailbox fills,
                                -- the receive thread waits, the kernel drops
    local done = serve_until(function()
      return got + srv:counters().rxDrops == 8000
        and logged("dropped by the kernel") ~= nil end)
    sl.logging.setEmit(true)
    assert.is_true(done)                                -- nothing lost unseen
    local c = srv:counters()
    assert.is_true(c.rxDrops > 0)
    assert.are.equal(got, c.rxFrames)
    -- at Error, the default level: seen without any filter
    assert.truthy(logged("ERROR udp%.Server: %d+ datagram%(s%) dropped by the kernel: its receive buffer"))
    cli:stop(); srv:stop()
  end)

  it("take a datagram from a plain socket as a frame", function()
    local srv = sl.udp.Server(0, false, "127.0.0.1")
    local at, got = collector()
    _ = srv >> at
    os.execute(string.format(
      "timeout 5 bash -c 'printf \"plain\\001bytes\" > /dev/udp/127.0.0.1/%d'",
      srv:getPort()))
    assert.is_true(serve_until(function() return #got == 1 end))
    assert.are.equal("plain\1bytes", got[1].data)
    assert.are.equal("127.0.0.1", (srv:peer()))
    srv:stop()
  end)
end)

describe("UDP across processes", function()
  local bin = STREAMLUA_BIN

  it("a client here talks to a udp_echo.lua server in another process", function()
    local child = io.popen("timeout 60 " .. bin .. " examples/udp_echo.lua 0 30 2>&1")
    local port = tonumber(child:read("l"):match("^listening (%d+)"))
    assert.is_truthy(port)
    local cli = sl.udp.Client("127.0.0.1", port)
    cli:setRxBufferCount(500)
    local back, bad = 0, 0
    _ = cli >> function(f)
      local s = f:read()
      local seq = string.unpack("<I4", s)
      if s ~= string.pack("<I4", seq) .. pattern(seq % 1400, seq) then bad = bad + 1 end
      back = back + 1
    end
    local m = sl.stream.Master()
    _ = m >> cli
    -- in groups, each answered before the next: no loss to blame on UDP
    for g = 0, 9 do
      for seq = g * 50, g * 50 + 49 do
        m:sendFrame(testing.frame(string.pack("<I4", seq) .. pattern(seq % 1400, seq)))
      end
      assert.is_true(serve_until(function() return back == g * 50 + 50 end, 20))
    end
    assert.are.equal(0, bad)
    m:sendFrame(testing.frame("bye"))
    local rest = child:read("a")
    child:close()
    assert.matches("echoed 500 frames\n", rest)
    cli:stop()
  end)
end)
