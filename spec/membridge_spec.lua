-- sl.memory.TcpServer / TcpClient: Rogue's memory TCP bridge, both ends in
-- one process (Master -> TcpClient -> TCP -> TcpServer -> slave).
local sl = require "streamlua"
local testing = require "streamlua.testing"
local mem = sl.memory

local function wall()
  local f = io.popen("date +%s.%N")
  local s = tonumber(f:read("l"))
  f:close()
  return s
end

local serve_until = testing.serveUntil

local function pair(slave)
  local srv = mem.TcpServer("127.0.0.1", 0)
  local cli = mem.TcpClient("127.0.0.1", srv:getPort())
  _ = srv >> slave
  local m = mem.Master()
  _ = m >> cli
  assert.is_true(cli:waitReady(20, 0.1))
  assert.is_true(serve_until(function() return cli:ready() and srv:ready() end))
  return m, cli, srv
end

describe("sl.memory.TcpServer / TcpClient", function()
  it("are memory nodes with Rogue's access limits", function()
    local srv = mem.TcpServer("127.0.0.1", 0)
    local cli = mem.TcpClient("127.0.0.1", srv:getPort())
    assert.are.equal(4, cli:doMinAccess())
    assert.are.equal(0xFFFFFFFF, cli:doMaxAccess())
    assert.are.equal(1000000, srv:getTimeout())   -- microseconds, as Rogue's
    srv:setTimeout(500000)
    assert.are.equal(500000, srv:getTimeout())
    assert.has_error(function() mem.TcpClient("127.0.0.1", 0) end)
    assert.has_error(function() _ = cli >> srv end)
    srv:stop(); cli:stop()
  end)

  it("carry writes, reads and verifies of patterns at several sizes", function()
    local emu = mem.Emulate(4, 4096)
    local m, cli, srv = pair(emu)
    local sizes = {4, 8, 12, 252, 256, 260, 1024, 4096, 65536}
    for i, n in ipairs(sizes) do
      local addr = 0x10000 * i + 0x40
      local data = pattern(n, i)
      m:write(addr, data)
      assert.are.equal(data, m:read(addr, n))
      m:verify(addr, data)
    end
    m:writeU32(0x100, 0xDEADBEEF)
    assert.are.equal(0xDEADBEEF, m:readU32(0x100))
    m:post(0x104, "\1\2\3\4")
    assert.are.equal("\1\2\3\4", m:read(0x104, 4))
    -- many in flight at once
    local got, n = {}, 50
    for i = 1, n do
      m:reqTransaction(0x8000 + 4 * i, string.pack("<I4", i), mem.Write, function(err)
        got[#got + 1] = err or "ok"
      end)
    end
    assert.is_true(serve_until(function() return #got == n end))
    for i = 1, n do assert.are.equal("ok", got[i]) end
    for i = 1, n do assert.are.equal(i, m:readU32(0x8000 + 4 * i)) end
    assert.are.equal(0, cli:pending())
    srv:stop(); cli:stop()
  end)

  it("bring an error from the far slave to the caller with its cause", function()
    local m, cli, srv = pair(mem.Slave{doTransaction = function(_, t)
      if t:address() == 0x40 then error("kaboom at 0x40") end
      t:error("no such register")
    end})
    local ok, err = pcall(m.read, m, 0x10, 4)
    assert.is_false(ok)
    assert.matches("no such register", err, 1, true)
    ok, err = pcall(m.write, m, 0x40, "abcd")
    assert.is_false(ok)
    assert.matches("kaboom at 0x40", err, 1, true)
    srv:stop(); cli:stop()
  end)

  it("fail a transaction by timeout when there is no server, clearly", function()
    retry_if_port_taken(function()
      local probe = mem.TcpServer("127.0.0.1", 0)   -- two free ports...
      local port = probe:getPort()
      probe:stop()
      probe = nil
      collectgarbage()
      local cli = mem.TcpClient("127.0.0.1", port)  -- ...nobody listens there
      local m = mem.Master()
      _ = m >> cli
      m:setTimeout(300000)
      local ok, err = pcall(m.read, m, 0, 4)
      assert.is_false(ok)
      assert.matches("not connected to the server", err, 1, true)
      assert.matches("TcpClient 127.0.0.1:" .. port, err, 1, true)
      assert.are.equal(0, cli:pending())
      ok, err = pcall(m.post, m, 0, "abcd")
      assert.is_false(ok)
      assert.matches("not connected", err, 1, true)
      assert.is_false(cli:waitReady(0.2, 0.05))
      -- the server comes later: the client connects and works
      local made, srv = pcall(port_again, mem.TcpServer, "127.0.0.1", port)
      if not made then cli:stop(); error(srv, 0) end
      _ = srv >> mem.Emulate(4, 4096)
      m:setTimeout(20e6)
      m:writeU32(0, 7)             -- waits for the connection within its timeout
      assert.are.equal(7, m:readU32(0))
      srv:stop(); cli:stop()
    end)
  end)

  it("fail a transaction whose response never comes", function()
    local held = {}
    local m, cli, srv = pair(mem.Slave{doTransaction = function(_, t) held[#held + 1] = t end})
    m:setTimeout(300000)
    local ok, err = pcall(m.read, m, 0, 4)
    assert.is_false(ok)
    assert.matches("no response within", err, 1, true)
    srv:stop(); cli:stop()
  end)

  it("stop() promptly, failing what waits", function()
    local m, cli, srv = pair(mem.Slave{doTransaction = function() end})
    m:setTimeout(30e6)
    local got
    m:reqTransaction(0, 4, mem.Read, function(err) got = err end)
    serve_until(function() return false end, 0.1)
    local t0 = wall()
    cli:stop()
    srv:stop()
    assert.is_true(wall() - t0 < 30)           -- a bound on a hang
    assert.is_true(serve_until(function() return got ~= nil end, 20))
    assert.matches("stopped", got, 1, true)
    local ok, err = pcall(m.read, m, 0, 4)
    assert.is_false(ok)
    assert.matches("stopped", err, 1, true)
    cli:stop()   -- twice is fine
    cli:close()
  end)

  it("log under Rogue's names", function()
    local L = sl.logging
    L.setEmit(false)
    L.setFilter("pyrogue.memory.TcpServer", L.Debug)
    L.setFilter("pyrogue.memory.TcpClient", L.Debug)
    local srv = mem.TcpServer("127.0.0.1", 0)
    local cli = mem.TcpClient("127.0.0.1", srv:getPort())
    assert.is_true(cli:waitReady(20, 0.1))
    local text = table.concat(L.history(), "\n")
    cli:stop(); srv:stop()
    L.setEmit(true)
    assert.matches("memory.TcpServer.127.0.0.1." .. srv:getPort(), text, 1, true)
    assert.matches("memory.TcpClient.127.0.0.1." .. srv:getPort(), text, 1, true)
  end)
end)

describe("a memory TcpServer with several clients and hostile peers", function()
  local tsrc = require "streamlua_testing"
  local greeting = "\255" .. ("\0"):rep(7) .. "\1\127\3\1NULL" .. ("\0"):rep(16)
    .. "\0" .. ("\0"):rep(31)
  local ready_pull = "\4\26\5READY\11Socket-Type\0\0\0\4PULL"

  it("answers each client only, not a listener on port P+1 connected last", function()
    sl.logging.setEmit(false)
    local srv = mem.TcpServer("127.0.0.1", 0)
    _ = srv >> mem.Emulate(4, 0)
    local port = srv:getPort()
    local ma, ca = mem.Master(), mem.TcpClient("127.0.0.1", port)
    local mb, cb = mem.Master(), mem.TcpClient("127.0.0.1", port)
    _ = ma >> ca
    _ = mb >> cb
    assert.is_true(ca:waitReady(10, 0.1))
    assert.is_true(cb:waitReady(10, 0.1))
    local snoop = tsrc.dial(port + 1)
    assert.is_true(tsrc.send(snoop, greeting .. ready_pull))
    assert.is_true(serve_until(function() return srv:counters().connections == 5 end))
    for i = 1, 10 do
      ma:writeU32(0x100, 1000 + i)
      mb:writeU32(0x200, 2000 + i)
      assert.equals(1000 + i, ma:readU32(0x100))
      assert.equals(2000 + i, mb:readU32(0x200))
    end
    assert.equals(0, srv:counters().unrouted)
    tsrc.close(snoop)
    ca:stop(); cb:stop(); srv:stop()
    sl.logging.setEmit(true)
  end)

  it("closes a connection without a handshake in time; checks its settings", function()
    sl.logging.setEmit(false)
    local srv = mem.TcpServer("127.0.0.1", 0)
    srv:setHandshakeTimeout(0.2)
    local fd = tsrc.dial(srv:getPort())
    assert.is_true(tsrc.closed(fd, 5))
    assert.equals(1, srv:counters().handshakeTimeouts)
    tsrc.close(fd)
    srv:setMaxRequests(8)
    srv:setMaxRequestBytes(1 << 20)
    srv:setMaxResponseBytes(1 << 20)
    srv:setMaxConnections(4)
    srv:setMaxPending(1 << 20)
    assert.equals(0, srv:counters().requests)
    assert.has_error(function() srv:setMaxRequests(0) end,
      "bad argument #1 to 'setMaxRequests' (positive number of requests expected)")
    assert.has_error(function() srv:setMaxResponseBytes(-5) end,
      "bad argument #1 to 'setMaxResponseBytes' (positive number of bytes expected)")
    srv:stop()
    sl.logging.setEmit(true)
  end)
end)
