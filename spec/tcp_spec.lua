local sl = require "streamlua"
local testing = require "streamlua.testing"
local tsrc = require "streamlua_testing"

local serve_until = testing.serveUntil

local function pair()
  local srv = sl.stream.TcpServer("127.0.0.1", 0)
  local cli = sl.stream.TcpClient("127.0.0.1", srv:getPort())
  assert(serve_until(function() return cli:ready() and srv:ready() end, 20))
  return srv, cli
end

describe("sl.stream.TcpServer / TcpClient", function()
  it("carry frames both ways with channel, error and flags", function()
    local srv, cli = pair()
    local at_srv, got_srv = collector()
    local at_cli, got_cli = collector()
    _ = srv >> at_srv
    _ = cli >> at_cli
    local up, down = sl.stream.Master(), sl.stream.Master()
    _ = up >> cli
    _ = down >> srv
    for i = 1, 20 do
      up:sendFrame(testing.frame(string.rep(string.char(i), i * 7),
        {channel = i, error = i % 3, flags = 0x100 * i + i}))
    end
    up:sendFrame(testing.frame(""))                     -- zero-length
    up:sendFrame(testing.frame(string.rep("z", 1 << 20)))   -- 1 MiB
    down:sendFrame(testing.frame("reply", {channel = 9}))
    assert.is_true(serve_until(function() return #got_srv == 22 and #got_cli == 1 end))
    for i = 1, 20 do
      local g = got_srv[i]
      assert.are.equal(string.rep(string.char(i), i * 7), g.data)
      assert.are.equal(i, g.channel)
      assert.are.equal(i % 3, g.error)
      assert.are.equal(0x100 * i + i, g.flags)
    end
    assert.are.equal("", got_srv[21].data)
    assert.are.equal(1 << 20, #got_srv[22].data)
    assert.are.equal("reply", got_cli[1].data)
    assert.are.equal(9, got_cli[1].channel)
    local c = srv:counters()
    assert.are.equal(22, c.rxFrames)
    assert.are.equal(1, c.txFrames)
    assert.are.equal(2, c.connections)
    assert.are.equal(0, c.errors)
    cli:stop(); srv:close()
  end)

  it("give a frame asked of them as Rogue's pool does: one block of its size", function()
    local srv, cli = pair()
    local m = sl.stream.Master()
    _ = m >> cli
    assert.are.equal(0, cli:getFixedSize())            -- variable mode
    local f = m:reqFrame(100, true)
    assert.are.equal(100, f:getSize())
    assert.are.equal(1, cli:getAllocCount())
    assert.are.equal(100, cli:getAllocBytes())
    local big = m:reqFrame(100000, true)
    assert.are.equal(100000, big:getSize())
    assert.are.equal(100100, cli:getAllocBytes())
    f, big = nil, nil
    collectgarbage(); collectgarbage()
    assert.are.equal(0, cli:getAllocCount())
    cli:stop(); srv:close()
  end)

  it("carries a PRBS stream end to end", function()
    local srv, cli = pair()
    local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
    _ = gen >> cli
    _ = srv >> chk
    gen:enable(4096)
    assert.is_true(serve_until(function() return chk:getRxCount() > 10 end, 20))
    gen:disable()
    assert.is_true(serve_until(function() return chk:getRxCount() == gen:getTxCount() end, 20))
    assert.are.equal(0, chk:getRxErrors())
    cli:stop(); srv:stop()
  end)

  it("a sender waits for a peer, and gives up after its timeout", function()
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    assert.is_false(srv:ready())
    srv:setTimeout(0.05)
    local m = sl.stream.Master()
    _ = m >> srv
    sl.logging.setEmit(false)
    m:sendFrame(testing.frame("nobody"))          -- returns after 50 ms
    sl.logging.setEmit(true)
    assert.are.equal(1, srv:counters().drops)
    assert.has_error(function() srv:setTimeout("x") end)
    srv:setTimeout(nil)
    srv:stop()
  end)

  it("stop() releases a sender blocked on an absent peer", function()
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local src = tsrc.source(srv, 3, 16)            -- blocks: no peer, no timeout
    os.execute("sleep 0.1")
    assert.is_false(src:done())                    -- (it cannot finish by itself)
    srv:stop()
    src:join()
    assert.is_true(src:done())
    assert.are.equal(3, srv:counters().drops)
  end)

  it("a client reconnects when its server comes back", function()
    retry_if_port_taken(function()
      local srv = sl.stream.TcpServer("127.0.0.1", 0)
      local port = srv:getPort()
      local cli = sl.stream.TcpClient("127.0.0.1", port)
      assert.is_true(serve_until(function() return cli:ready() end, 20))
      srv:stop()
      assert.is_true(serve_until(function() return not cli:ready() end, 20))
      local ok, srv2 = pcall(port_again, sl.stream.TcpServer, "127.0.0.1", port)
      if not ok then cli:stop(); error(srv2, 0) end
      local at, got = collector()
      _ = srv2 >> at
      assert.is_true(serve_until(function() return cli:ready() end, 20))
      local m = sl.stream.Master()
      _ = m >> cli
      m:sendFrame(testing.frame("again"))
      assert.is_true(serve_until(function() return #got == 1 end, 20))
      assert.are.equal("again", got[1].data)
      cli:stop(); srv2:stop()
    end)
  end)

  it("a garbage peer is closed and logged; the next good one works", function()
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local port = srv:getPort()
    sl.logging.setEmit(false)
    os.execute(string.format("timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; " ..
      "printf \"GET / HTTP/1.1\\r\\n\\r\\n%%080d\" 0 >&3; sleep 0.3' 2>/dev/null", port))
    assert.is_true(serve_until(function() return srv:counters().errors >= 1 end))
    sl.logging.setEmit(true)
    assert.is_truthy(logged("ERROR stream%.TcpCore%.127%.0%.0%.1%.Server%." .. port, 20))
    local cli = sl.stream.TcpClient("127.0.0.1", port)
    local at, got = collector()
    _ = srv >> at
    assert.is_true(serve_until(function() return cli:ready() end))
    local m = sl.stream.Master()
    _ = m >> cli
    m:sendFrame(testing.frame("fine"))
    assert.is_true(serve_until(function() return #got == 1 end))
    cli:stop(); srv:stop()
  end)

  it("refuses a port in use and bad arguments", function()
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local ok, err = pcall(sl.stream.TcpServer, "127.0.0.1", srv:getPort())
    assert.is_false(ok)
    -- the port named is the one that failed: P itself here
    assert.are.equal("TcpServer: cannot bind 127.0.0.1:" .. srv:getPort() ..
                     ": Address already in use", err)
    -- (P free and P+1 taken names P+1: spec/c/test_pair.c)
    -- a failed name lookup says what the resolver said, not an errno
    ok, err = pcall(sl.stream.TcpClient, "no-such-host.invalid", 9000)
    assert.is_false(ok)
    assert.matches("^TcpClient: cannot resolve no%-such%-host%.invalid:9000: ", err)
    assert.is_nil(err:find("No such file or directory", 1, true))
    assert.has_error(function() sl.stream.TcpServer("127.0.0.1", 70000) end)
    assert.has_error(function() sl.stream.TcpClient("127.0.0.1", 0) end)
    assert.has_error(function() sl.stream.TcpClient(5) end)
    assert.has_error(function() sl.stream.TcpServer.ready(sl.stream.Slave()) end)
    assert.has_error(function() srv:setMaxSize(0) end)
    srv:setMaxSize(1 << 20)
    assert.are.equal(0, srv:connections())
    srv:stop()
  end)

  it("many bridges share one I/O thread and the delivery threads", function()
    local first = sl.stream.TcpServer("127.0.0.1", 0)   -- the I/O thread runs now
    local list = {}
    for i = 1, 20 do list[i] = sl.stream.TcpServer("127.0.0.1", 0) end
    -- no delivery thread each: the pool's few (threads started while an
    -- earlier delivery waited end once idle)
    assert.is_true(serve_until(function()
      return testing.threads("sl-tcp-rx") <= sl.tcpDeliveryThreads() end, 20))
    assert.is_true(testing.threads("sl-tcp-rx") >= 1)
    assert.are.equal(1, sl.ioThreads())
    assert.are.equal(1, testing.threads("sl-io"))
    for _, s in ipairs(list) do s:stop() end
    first:stop()
  end)
end)

describe("sl.setTcpDeliveryThreads / sl.tcpDeliveryThreads", function()
  it("sets how many threads deliver for every bridge, checked", function()
    local was = sl.tcpDeliveryThreads()
    assert.is_true(was >= 1 and was <= 4)          -- the CPUs, at most 4
    local ok, err = pcall(sl.setTcpDeliveryThreads, 0)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '[%w%.]*setTcpDeliveryThreads' %(1 to 16 threads expected%)", err)
    assert.has_error(function() sl.setTcpDeliveryThreads(17) end)
    assert.has_error(function() sl.setTcpDeliveryThreads("x") end)
    sl.setTcpDeliveryThreads(3)
    assert.are.equal(3, sl.tcpDeliveryThreads())
    local srv, cli = pair()                        -- the pool grows to 3
    assert.is_true(serve_until(function() return testing.threads("sl-tcp-rx") >= 3 end, 20))
    sl.setTcpDeliveryThreads(1)                    -- and shrinks once idle
    assert.is_true(serve_until(function() return testing.threads("sl-tcp-rx") <= 1 end, 20))
    -- still delivering
    local got = 0
    _ = srv >> function() got = got + 1 end
    local m = sl.stream.Master()
    _ = m >> cli
    for _ = 1, 50 do m:sendFrame(testing.frame("d")) end
    assert.is_true(serve_until(function() return got == 50 end, 20))
    sl.setTcpDeliveryThreads(was)
    cli:stop(); srv:stop()
  end)

  it("a consumer that blocks holds up its own bridge only", function()
    local was = sl.tcpDeliveryThreads()
    sl.setTcpDeliveryThreads(1)                    -- one thread, made to wait
    sl.logging.setEmit(false)
    local gone = sl.stream.TcpServer("127.0.0.1", 0)
    local nowhere = gone:getPort()
    gone:stop()
    -- bridge A feeds a client whose server is absent: with no timeout its
    -- sender (the delivery under way) waits for a peer, until a stop
    local a_srv, a_cli = pair()
    local dead = sl.stream.TcpClient("127.0.0.1", nowhere)
    _ = a_srv >> dead
    local b_srv, b_cli = pair()
    local got = 0
    _ = b_srv >> function() got = got + 1 end
    local ma, mb = sl.stream.Master(), sl.stream.Master()
    _ = ma >> a_cli
    _ = mb >> b_cli
    for _ = 1, 10 do ma:sendFrame(testing.frame("to nowhere")) end
    assert.is_true(serve_until(function()
      return a_srv:counters().rxFrames == 10 end, 20))
    for _ = 1, 100 do mb:sendFrame(testing.frame("b")) end
    -- B's frames arrive while A's delivery still waits
    assert.is_true(serve_until(function() return got == 100 end, 20))
    assert.are.equal(0, dead:counters().txFrames)
    assert.is_true(a_srv:counters().rxQueueBytes > 0)  -- held, not delivered
    a_srv:stop()                                  -- returns: the wait gives up
    assert.is_true(dead:counters().drops >= 1)
    assert.are.equal(0, a_srv:counters().rxQueueBytes)
    sl.setTcpDeliveryThreads(was)
    sl.logging.setEmit(true)
    for _, o in ipairs{dead, a_cli, b_srv, b_cli} do o:stop() end
  end)
end)

describe("the TCP bridge across processes", function()
  local bin = STREAMLUA_BIN

  it("a client here talks to a tcp_echo.lua server in another process", function()
    local child = io.popen("timeout 60 " .. bin .. " examples/tcp_echo.lua 0 30 2>&1")
    local port = tonumber(child:read("l"):match("^listening (%d+)"))
    assert.is_truthy(port)
    local cli = sl.stream.TcpClient("127.0.0.1", port)
    local back, bad = 0, 0
    local prbs = sl.utilities.Prbs()          -- checks echoed PRBS frames
    _ = cli >> function(f)
      if f:getChannel() == 254 then return end   -- PRBS frames: the checker's
      local seq = string.unpack("<I4", f:read(0, 4))
      if f:getChannel() ~= seq % 200 or f:getFlags() ~= seq % 65536 or
         f:getError() ~= seq % 7 or #f ~= 4 + seq % 3000 then bad = bad + 1 end
      back = back + 1
    end
    local filter = sl.stream.Filter(false, 254)
    _ = cli >> filter >> prbs
    assert.is_true(serve_until(function() return cli:ready() end))
    local m = sl.stream.Master()
    _ = m >> cli
    for seq = 0, 999 do
      local f = m:reqFrame(4 + seq % 3000)
      f:write(string.pack("<I4", seq) .. string.rep("p", seq % 3000))
      f:setChannel(seq % 200)
      f:setFlags(seq % 65536)
      f:setError(seq % 7)
      m:sendFrame(f)
    end
    assert.is_true(serve_until(function() return back == 1000 end, 20))
    assert.are.equal(0, bad)
    -- a PRBS stream there and back, checked here
    local gen = sl.utilities.Prbs()
    local tag = sl.stream.Slave{acceptFrame = function(self, f)
      f:setChannel(254)
      self:sendFrame(f)
    end}
    _ = gen >> tag >> cli
    for _ = 1, 200 do gen:genFrame(1024) end
    assert.is_true(serve_until(function() return prbs:getRxCount() == 200 end, 20))
    assert.are.equal(0, prbs:getRxErrors())
    m:sendFrame(testing.frame("bye", {channel = 255}))
    local rest = child:read("a")
    child:close()
    assert.matches("echoed 1200 frames\n", rest)
    cli:stop()
  end)

  it("300 bridge pairs carry traffic at once on one I/O thread", function()
    local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
    local function threads()
      local n = 0
      for _ in io.popen("ls /proc/" .. pid .. "/task"):lines() do n = n + 1 end
      return n
    end
    local base = threads()
    -- 300 pairs in the plain run; fewer under the sanitizers, whose
    -- per-thread shadow memory makes 600 threads a heavy load
    local N = os.getenv("STREAMLUA_SANITIZED") and 50 or 300
    local got, list = 0, {}
    for i = 1, N do
      local s = sl.stream.TcpServer("127.0.0.1", 0)
      local c = sl.stream.TcpClient("127.0.0.1", s:getPort())
      _ = s >> function() got = got + 1 end
      local m = sl.stream.Master()
      _ = m >> c
      list[i] = {s = s, c = c, m = m}
    end
    assert.is_true(serve_until(function()
      for _, p in ipairs(list) do if not p.c:ready() then return false end end
      return true
    end, 30))
    local t = threads()
    for _ = 1, 10 do
      for _, p in ipairs(list) do p.m:sendFrame(testing.frame(string.rep("x", 100))) end
    end
    assert.is_true(serve_until(function() return got == N * 10 end, 30))
    -- a few delivery threads and one I/O thread for all their sockets
    print(string.format("\n  %d pairs: %d threads (%d before)", N, t, base))
    assert.is_true(t <= base + sl.tcpDeliveryThreads() + 2)
    for _, p in ipairs(list) do p.c:stop(); p.s:stop() end
  end)
end)

describe("the TCP bridge when its peer dies", function()
  local bin = STREAMLUA_BIN

  local function start_echo(port)
    local pidfile = os.tmpname()
    local out = os.tmpname()
    -- no `timeout` wrapper: $! must be the server itself (it ends on its own
    -- after 40 s, and the test kills it before)
    os.execute(string.format("(%s examples/tcp_echo.lua %d 40 > %s 2>&1 & echo $! > %s)",
      bin, port, out, pidfile))
    local pid = io.open(pidfile):read("l")
    os.remove(pidfile)
    local got, text
    local t0 = sl.now()
    repeat
      local f = io.open(out)
      text = f and f:read("a") or ""
      if f then f:close() end
      got = tonumber(text:match("^listening (%d+)"))
      if got or text:find("Address already in use", 1, true) then break end
      os.execute("sleep 0.01")
    until sl.now() - t0 > 30
    os.remove(out)
    return pid, got, text
  end

  it("killed mid-stream and restarted: traffic resumes, no corrupt frame", function()
   retry_if_port_taken(function()
    local pid, port = start_echo(0)
    assert.is_truthy(port)
    local cli = sl.stream.TcpClient("127.0.0.1", port)
    cli:setTimeout(0.2)                     -- frames to a dead peer are dropped
    local back, bad = 0, 0
    _ = cli >> function(f)
      local data = f:read()
      local seq = string.unpack("<I4", data)
      if data ~= string.pack("<I4", seq) .. string.rep(string.char(seq % 256), 500) then
        bad = bad + 1
      end
      back = back + 1
    end
    local m, seq = sl.stream.Master(), 0
    _ = m >> cli
    local sender = sl.every(0.002, function()
      for _ = 1, 20 do
        seq = seq + 1
        m:sendFrame(testing.frame(string.pack("<I4", seq) ..
          string.rep(string.char(seq % 256), 500)))
      end
    end)
    assert.is_true(serve_until(function() return back > 200 end, 20))
    sl.logging.setEmit(false)
    os.execute("kill -9 " .. pid)
    assert.is_true(serve_until(function() return not cli:ready() end, 20))
    local before = back
    local ok, pid2 = pcall(port_again, function(_, p)
      local pid2, got, text = start_echo(p)
      if got == nil then error(text, 0) end
      return pid2
    end, nil, port)
    if not ok then sender:cancel(); cli:stop(); sl.logging.setEmit(true); error(pid2, 0) end
    assert.is_true(serve_until(function() return back > before + 200 end, 20))
    sl.logging.setEmit(true)
    sender:cancel()
    os.execute("kill -9 " .. pid2)
    assert.are.equal(0, bad)
    cli:stop()
   end)
  end)
end)

describe("sl.setIoThreads / sl.ioThreads", function()
  -- In a fresh process: how many I/O threads run depends on every bridge
  -- this one ever made being collected.
  local bin = STREAMLUA_BIN

  it("sets the I/O threads while no bridge runs, and says how many run", function()
    local script = os.tmpname()
    local f = io.open(script, "w")
    f:write([[
      local sl = require "streamlua"
      local testing = require "streamlua.testing"
      assert(sl.ioThreads() == 0)
      sl.setIoThreads(2)
      local srv = sl.stream.TcpServer("127.0.0.1", 0)
      assert(sl.ioThreads() == 2)
      local ok, err = pcall(sl.setIoThreads, 1)
      assert(not ok and err:match("setIoThreads: the I/O threads already run"))
      local cli = sl.stream.TcpClient("127.0.0.1", srv:getPort())
      local got = 0
      local sink = srv >> function() got = got + 1 end
      local t0 = sl.now()
      while not cli:ready() and sl.now() - t0 < 10 do sl.sleep(0.01) end
      local m = sl.stream.Master()
      m:addSlave(cli)
      for _ = 1, 100 do m:sendFrame(testing.frame(string.rep("y", 5000))) end
      t0 = sl.now()
      while got < 100 and sl.now() - t0 < 10 do sl.sleep(0.01) end
      cli:stop(); srv:stop()
      cli, srv, m, sink = nil, nil, nil, nil
      collectgarbage(); collectgarbage()
      print("frames " .. got .. ", threads after " .. sl.ioThreads())
      sl.setIoThreads(1)
      ok, err = pcall(sl.setIoThreads, 0)
      print(err)
    ]])
    f:close()
    local p = io.popen("LUA_PATH='lua/?.lua;;' timeout 60 " .. bin .. " " .. script .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.matches("frames 100, threads after 0", out)
    assert.matches("bad argument #1 to '[%w%.]*setIoThreads' %(1 to 8 threads expected%)", out)
  end)
end)

describe("stopping a bridge that feeds a Lua slave", function()
  it("does not hang while the delivery thread waits on a full mailbox", function()
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local cli = sl.stream.TcpClient("127.0.0.1", srv:getPort())
    local n = 0
    local lua = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    _ = srv >> lua
    assert.is_true(serve_until(function() return cli:ready() end, 20))
    local src = tsrc.source(cli, 5000, 32)   -- floods while Lua is not served
    src:join()
    local t0 = sl.now()                       -- until the mailbox is full
    while lua:counters().waits == 0 and sl.now() - t0 < 20 do end
    assert.is_true(lua:counters().waits > 0)
    srv:stop()                                -- must return
    cli:stop()
    -- what reached the mailbox before the delivery thread gave up is served
    assert.is_true(serve_until(function() return n > 0 end))
    _ = nil
  end)
end)

describe("a TcpServer against hostile peers", function()
  it("closes a connection without a handshake in time, and one over the cap", function()
    sl.logging.setEmit(false)
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local port = srv:getPort()
    srv:setHandshakeTimeout(0.2)
    local silent = tsrc.dial(port)
    local half = tsrc.dial(port)
    assert.is_true(tsrc.send(half, "\255\0\0\0\0\0\0\0\1"))   -- a greeting begun
    assert.is_true(tsrc.closed(silent, 5))
    assert.is_true(tsrc.closed(half, 5))
    assert.equals(2, srv:counters().handshakeTimeouts)
    srv:setHandshakeTimeout(0)                 -- none: silent peers stay
    srv:setMaxConnections(1)
    local a = tsrc.dial(port)
    assert.is_true(serve_until(function() return srv:connections() == 1 end))
    local b = tsrc.dial(port + 1)
    assert.is_true(tsrc.closed(b, 5))
    assert.equals(1, srv:counters().refused)
    assert.equals(1, srv:connections())
    for _, fd in ipairs{silent, half, a, b} do tsrc.close(fd) end
    srv:stop()
    sl.logging.setEmit(true)
  end)

  it("bound their queues in bytes: setMaxQueueBytes, and frames over it pass alone", function()
    local srv, cli = pair()
    local c = srv:counters()
    assert.equals(4 << 20, c.maxQueueBytes)
    assert.equals(0, c.rxQueueBytes)
    assert.equals(0, c.txQueueBytes)
    srv:setMaxQueueBytes(1000)
    cli:setMaxQueueBytes(1000)
    assert.equals(1000, srv:counters().maxQueueBytes)
    assert.has_error(function() srv:setMaxQueueBytes(0) end,
      "bad argument #1 to 'setMaxQueueBytes' (positive number of bytes expected)")
    local at_srv, got = collector()
    _ = srv >> at_srv
    local up = sl.stream.Master()
    _ = up >> cli
    for i = 1, 5 do up:sendFrame(testing.frame(string.rep(string.char(i), 70000))) end
    assert.is_true(serve_until(function() return #got == 5 end, 30))
    for i = 1, 5 do assert.equals(string.rep(string.char(i), 70000), got[i].data) end
    assert.equals(0, srv:counters().drops)
    assert.equals(0, cli:counters().drops)
    assert.is_true(serve_until(function() return srv:counters().rxQueueBytes == 0 end, 30))
    cli:stop()
    srv:stop()
  end)

  it("counts what unfinished messages hold, and checks its settings", function()
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local c = srv:counters()
    assert.equals(0, c.pendingBytes)
    assert.equals(0, c.pendingCloses)
    assert.equals(0, c.acceptErrors)
    srv:setMaxPending(1 << 20)
    assert.has_error(function() srv:setMaxPending(0) end,
      "bad argument #1 to 'setMaxPending' (positive number of bytes expected)")
    assert.has_error(function() srv:setMaxConnections(-1) end,
      "bad argument #1 to 'setMaxConnections' (number of connections expected)")
    assert.has_error(function() srv:setHandshakeTimeout(-1) end,
      "bad argument #1 to 'setHandshakeTimeout' (non-negative number of seconds expected)")
    srv:stop()
  end)
end)
