-- Porting from Rogue: Rogue's units for Rogue's names, the names a pyrogue
-- script uses (getBa, the memory master's and slave's asynchronous calls,
-- tran:lock), pyrogue's wrapper hooks on every connect path, and Rogue's
-- error wording.
local sl = require "streamlua"
local mem = sl.memory
local testing = require "streamlua.testing"

local TIMEOUT = "^Timeout waiting for register transaction (%d+) message response%."

local function counting_sink()
  local sink = {n = 0}
  sink.slave = sl.stream.Slave{acceptFrame = function(_, f) sink.n = sink.n + 1; sink.last = f:read() end}
  return sink
end

local function send(m, s)
  local f = m:reqFrame(#s)
  f:write(s)
  m:sendFrame(f)
end

describe("Rogue's units", function()
  it("a memory master's timeout is in microseconds, as Rogue's _setTimeout", function()
    local m = mem.Master()
    assert.are.equal(1000000, m:getTimeout())          -- Rogue's default, 1 s
    m:_setTimeout(250000)
    assert.are.equal(250000, m:getTimeout())
    m:setTimeout(0)                                     -- kept, as Rogue
    assert.are.equal(250000, m:getTimeout())
    m:setTimeout(0.4)                                   -- under 1 us: 1 us, never 0
    assert.are.equal(1, m:getTimeout())
    assert.has_error(function() m:setTimeout(-1) end,
      "bad argument #1 to 'setTimeout' (non-negative number of microseconds expected)")
    for _, other in ipairs{mem.Hub(0), mem.Block(0, 4)} do
      other:setTimeout(3000000)
      assert.are.equal(3000000, other:getTimeout())
    end
  end)

  it("waitFrameCount's timeout is in microseconds, as Rogue's", function()
    local dir = temp_dir()
    local w = sl.utilities.StreamWriter()
    w:open(dir .. "/u.dat")
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    send(m, "abcd")
    assert.is_true(w:waitFrameCount(1, 1000000))
    assert.is_false(w:waitFrameCount(2, 1))            -- 1 us: gives up at once
    assert.is_false(w:getChannel(0):waitFrameCount(2, 1000))
    assert.has_error(function() w:waitFrameCount(2, -5) end,
      "bad argument #2 to 'waitFrameCount' (non-negative number of microseconds expected)")
    w:close()
    remove_dir(dir)
  end)

  it("a memory TcpServer's timeout is its master's, in microseconds", function()
    local srv = mem.TcpServer("127.0.0.1", 0)
    assert.are.equal(1000000, srv:getTimeout())
    srv:_setTimeout(20000)
    assert.are.equal(20000, srv:getTimeout())
    srv:stop()
  end)
end)

describe("frame:getBa", function()
  it("copies the payload, Rogue's count 0 meaning the rest", function()
    local m = sl.stream.Master()
    local f = m:reqFrame(10)
    f:write("0123456789")
    assert.are.equal("0123456789", f:getBa())
    assert.are.equal("23456789", f:getBa(2))
    assert.are.equal("234", f:getBa(2, 3))
    assert.are.equal("23456789", f:getBa(2, 0))
    assert.are.equal("", f:getBa(10))
    assert.has_error(function() f:getBa(11) end,
      "bad argument #1 to 'getBa' (value 11 out of range [0, 10])")
    assert.has_error(function() f:getBa(8, 3) end)
  end)
end)

describe("the memory master's Rogue names", function()
  local function bus(slave)
    local m = mem.Master()
    m:_setSlave(slave)
    return m
  end

  it("_reqTransaction, _waitTransaction: the bytes come back from the wait", function()
    local emu = mem.Emulate(4, 0)
    local m = bus(emu)
    assert.is_true(rawequal(emu, m:_getSlave()))
    assert.are.equal(4, m:_reqMinAccess())
    assert.are.equal(0, m:_reqMaxAccess())
    local w = m:_reqTransaction(0x100, "ABCDEFGH", mem.Write)
    assert.are.equal("ABCDEFGH", m:_waitTransaction(w))
    local r = m:_reqTransaction(0x102, 4, mem.Read)
    assert.is_true(r > w)
    assert.are.equal("CDEF", m:_waitTransaction(r))
    assert.is_nil(m:_waitTransaction(r))               -- no longer outstanding
    assert.is_nil(m:_waitTransaction(123456789))
    assert.are.equal("", m:_getError())
  end)

  it("takes Rogue's (address, buffer, size, offset, type) form too", function()
    local m = bus(mem.Emulate(4, 0))
    m:_waitTransaction(m:_reqTransaction(0x10, "xxWXYZyy", 4, 2, mem.Write))
    assert.are.equal("WXYZ", m:read(0x10, 4))
    m:_waitTransaction(m:_reqTransaction(0x20, "xxPQRS", 0, 2, mem.Write))   -- 0: the rest
    assert.are.equal("PQRS", m:read(0x20, 4))
    assert.are.equal("WXYZ", m:_waitTransaction(m:_reqTransaction(0x10, "....", 0, 0, mem.Read)))
    assert.has_error(function() m:_reqTransaction(0x10, "abcd", 4, 2, mem.Write) end)
    assert.has_error(function() m:_reqTransaction(0x10, 4, 9) end,
      "bad argument #3 to '_reqTransaction' (transaction type expected (Read, Write, Post or Verify))")
  end)

  it("_waitTransaction(0) waits for every outstanding one", function()
    local held = {}
    local m = bus(mem.Slave{_doTransaction = function(_, t) held[#held + 1] = t end})
    local a = m:_reqTransaction(0, 4, mem.Read)
    local b = m:_reqTransaction(4, 4, mem.Read)
    sl.after(0.01, function()
      for i, t in ipairs(held) do t:setData(("%4d"):format(i)); t:done() end
    end)
    local got = m:_waitTransaction(0)
    assert.are.same({[a] = "   1", [b] = "   2"}, got)
    assert.are.same({}, m:_waitTransaction(0))
  end)

  it("keeps a failure's text until _clearError, as Rogue's sticky error", function()
    local fail = true
    local m = bus(mem.Slave{doTransaction = function(_, t)
      if fail then t:error("bus error") else t:done() end
    end})
    m:_waitTransaction(m:_reqTransaction(0, 4, mem.Read))
    assert.are.equal("bus error", m:_getError())
    fail = false
    m:_waitTransaction(m:_reqTransaction(0, 4, mem.Read))
    assert.are.equal("bus error", m:_getError())        -- a success does not clear it
    m:_clearError()
    assert.are.equal("", m:_getError())
  end)

  it("a transaction nobody answers fails with Rogue's timeout text", function()
    local m = bus(mem.Slave{doTransaction = function() end})
    m:setTimeout(20000)
    local id = m:_reqTransaction(0, 4, mem.Read)
    assert.are.equal("\0\0\0\0", m:_waitTransaction(id))
    assert.are.equal(tostring(id), m:_getError():match(TIMEOUT))
  end)

  it("works on every memory master (a Hub)", function()
    local hub = mem.Hub(0x1000)
    hub:setSlave(mem.Emulate(4, 0))
    hub:_waitTransaction(hub:_reqTransaction(0, "hi!!", mem.Write))
    assert.are.equal("hi!!", hub:_waitTransaction(hub:_reqTransaction(0, 4, mem.Read)))
  end)
end)

describe("a Lua memory slave's Rogue names", function()
  it("_doTransaction is the override's name too", function()
    local m = mem.Master()
    m:setSlave(mem.Slave{_doTransaction = function(_, t) t:setData("ok!!"); t:done() end})
    assert.are.equal("ok!!", m:read(0, 4))
    assert.has_error(function() mem.Slave{} end,
      "bad argument #1 to 'Slave' (table with a doTransaction (or _doTransaction) function expected)")
  end)

  it("_addTransaction and _getTransaction complete later, by id", function()
    local s
    s = mem.Slave{doTransaction = function(self, t) self:_addTransaction(t) end}
    local m = mem.Master()
    _ = m >> s
    m:setTimeout(30e6)
    local ids = {}
    for i = 1, 3 do ids[i] = m:_reqTransaction(4 * i, 4, mem.Read) end
    assert.is_nil(s:_getTransaction(999999999))
    local t2 = s:_getTransaction(ids[2])
    assert.are.equal(ids[2], t2:id())
    assert.is_nil(s:_getTransaction(ids[2]))           -- taken out
    do
      local lk <close> = t2:lock()
      if not t2:expired() then t2:setData("two!"); t2:done() end
    end
    assert.are.equal("two!", m:_waitTransaction(ids[2]))
    for _, i in ipairs{1, 3} do
      local t = s:_getTransaction(ids[i])
      t:setData("abcd")
      t:done()
    end
    assert.are.same({[ids[1]] = "abcd", [ids[3]] = "abcd"}, m:_waitTransaction(0))
    assert.has_error(function() mem.Slave(4, 4):_getTransaction(1) end,
      "calling '_getTransaction' on bad self (Lua-defined memory slave expected " ..
      "(Slave{doTransaction = ...}))")
  end)

  it("drops the expired transactions it holds when one is taken", function()
    local s = mem.Slave{doTransaction = function(self, t) self:_addTransaction(t) end}
    local m = mem.Master()
    _ = m >> s
    m:setTimeout(1000)
    local late = m:_reqTransaction(0, 4, mem.Read)
    m:_waitTransaction(late)                            -- times out: expired
    assert.matches(TIMEOUT, m:_getError())
    m:setTimeout(30e6)
    local live = m:_reqTransaction(4, 4, mem.Read)
    s:_getTransaction(live):done()
    assert.is_nil(s:_getTransaction(late))              -- dropped on the way
  end)

  it("tran:lock() holds off the waiter's timeout until it is released", function()
    local held
    local s = mem.Slave{doTransaction = function(_, t) held = t end}
    local m = mem.Master()
    _ = m >> s
    m:setTimeout(1000)                                  -- 1 ms
    local id = m:_reqTransaction(0, 4, mem.Read)
    local lk = held:lock()
    assert.matches("TransactionLock%(held%)", tostring(lk))
    local t0 = sl.now()
    testing.serveUntil(function() return sl.now() > t0 + 0.01 end)   -- past the deadline
    sl.after(0.01, function()
      held:setData("late")
      held:done()
      lk:unlock()
    end)
    assert.are.equal("late", m:_waitTransaction(id))   -- answered, not timed out
    assert.are.equal("", m:_getError())
    lk:unlock()                                         -- idempotent
    assert.matches("released", tostring(lk))
    -- released: the deadline fails it at the next look
    id = m:_reqTransaction(0, 4, mem.Read)
    local lk2 = held:lock()
    lk2:unlock()
    lk2:lock()                                          -- taken again...
    lk2:unlock()                                        -- ...and let go
    m:_waitTransaction(id)
    assert.are.equal(tostring(id), m:_getError():match(TIMEOUT))
  end)
end)

describe("pyrogue's wrapper hooks", function()
  local function wrap(fields)
    local calls = {}
    local w = {calls = calls}
    for hook, target in pairs(fields) do
      w[hook] = function(self)
        assert.is_true(rawequal(self, w))
        calls[#calls + 1] = hook
        return target
      end
    end
    return w
  end

  it("are honoured by >> and << on both sides", function()
    local m, sink = sl.stream.Master(), counting_sink()
    local wm, ws = wrap{_getStreamMaster = m}, wrap{_getStreamSlave = sink.slave}
    assert.is_true(rawequal(sink.slave, wm >> sink.slave))
    send(m, "one")
    assert.are.equal(1, sink.n)
    assert.is_true(rawequal(ws, m >> ws))               -- the wrapper as given
    send(m, "two")
    assert.are.equal(3, sink.n)                         -- two links now
    assert.is_true(rawequal(wm, sink.slave << wm))
    assert.are.same({"_getStreamMaster", "_getStreamMaster"}, wm.calls)
    assert.are.same({"_getStreamSlave"}, ws.calls)
    assert.are.equal(3, m:slaveCount())
  end)

  it("are honoured by the stream helpers", function()
    local m, sink = sl.stream.Master(), counting_sink()
    local wm, ws = wrap{_getStreamMaster = m}, wrap{_getStreamSlave = sink.slave}
    assert.is_true(rawequal(ws, sl.streamConnect(wm, ws)))
    assert.is_true(rawequal(ws, m:addSlave(ws)))
    assert.is_true(rawequal(ws, m:_addSlave(ws)))
    assert.are.equal(3, m:slaveCount())
    assert.is_true(sl.streamDisconnect(wm, ws))
    assert.are.equal(0, m:slaveCount())
    local a, b = sl.stream.Fifo(0), sl.stream.Fifo(0)
    local wa = wrap{_getStreamMaster = a, _getStreamSlave = a}
    local wb = wrap{_getStreamMaster = b, _getStreamSlave = b}
    sl.streamConnectBiDir(wa, wb)
    assert.is_true(rawequal(b, a:getSlaves()[1]))
    assert.is_true(rawequal(a, b:getSlaves()[1]))
    unlink(a, b)
    a:stop(); b:stop()
  end)

  it("make == link two wrappers whose metatable's __eq is sl.streamConnectBiDir", function()
    local a, b = sl.stream.Fifo(0), sl.stream.Fifo(0)
    local mt = {__eq = sl.streamConnectBiDir}
    local wa = setmetatable({_getStreamMaster = function() return a end,
                             _getStreamSlave = function() return a end}, mt)
    local wb = setmetatable({_getStreamMaster = function() return b end,
                             _getStreamSlave = function() return b end}, mt)
    assert.is_false(wa == wb)
    assert.is_true(rawequal(b, a:getSlaves()[1]))
    assert.is_true(rawequal(a, b:getSlaves()[1]))
    unlink(a, b)
    a:stop(); b:stop()
  end)

  it("are honoured on a Lua-defined object's own fields", function()
    local m, sink = sl.stream.Master(), counting_sink()
    local front = sl.stream.Slave{acceptFrame = function() end,
                                  _getStreamSlave = function() return sink.slave end}
    _ = m >> front
    send(m, "x")
    assert.are.equal(1, sink.n)
  end)

  it("are honoured by the memory paths", function()
    local emu = mem.Emulate(4, 0)
    local m = mem.Master()
    local ws = wrap{_getMemorySlave = emu}
    local wm = wrap{_getMemoryMaster = m}
    assert.is_true(rawequal(ws, m >> ws))
    assert.is_true(rawequal(emu, m:getSlave()))
    m:setSlave(nil)
    m:setSlave(ws)
    assert.is_true(rawequal(emu, m:getSlave()))
    m:_setSlave(nil)
    assert.is_true(rawequal(ws, sl.busConnect(wm, ws)))
    assert.is_true(rawequal(emu, m:getSlave()))
    m:_setSlave(nil)
    assert.is_true(rawequal(m, ws << m))
    assert.is_true(rawequal(emu, m:getSlave()))
    m:writeU32(0, 7)
    assert.are.equal(7, m:readU32(0))
    assert.are.equal(4, emu:_doMinAccess())
    assert.are.equal(0, emu:_doMaxAccess())
  end)

  it("make a register tree Device stand for its hub; pyrogue's helpers are in sl.pyrogue", function()
    local pr = sl.pyrogue
    assert.are.equal(sl.streamConnect, pr.streamConnect)
    assert.are.equal(sl.streamConnectBiDir, pr.streamConnectBiDir)
    assert.are.equal(sl.busConnect, pr.busConnect)
    local dev = pr.Device{name = "Dev", offset = 0x100}
    assert.is_true(rawequal(dev._hub, dev:_getMemorySlave()))
    assert.is_true(rawequal(dev._hub, dev:_getMemoryMaster()))
    local emu = mem.Emulate(4, 0)
    local m = mem.Master()
    assert.is_true(rawequal(dev, m >> dev))
    assert.is_true(rawequal(dev._hub, m:getSlave()))
    pr.busConnect(dev, emu)
    m:writeU32(0x4, 5)
    local peek = mem.Master()
    _ = peek >> emu
    assert.are.equal(5, peek:readU32(0x104))            -- through the device's offset
  end)

  it("raise what the hook raises, and refuse what still cannot connect", function()
    local m = sl.stream.Master()
    assert.has_error(function() return m >> {_getStreamSlave = function() error("no slave") end} end)
    assert.has_error(function() return m >> {} end, "attempt to connect a 'streamlua.Master' to a 'table'")
    assert.has_error(function() sl.streamConnect({}, sl.stream.Slave()) end,
      "bad argument #1 to 'streamConnect' (stream master expected, got table)")
    assert.has_error(function() sl.busConnect(mem.Master(), {_getMemorySlave = function() return 1 end}) end)
  end)
end)

describe("Rogue's error wording", function()
  it("a memory TcpClient's timeout starts with Rogue's text", function()
    local cli = mem.TcpClient("127.0.0.1", 1)          -- nobody there
    local m = mem.Master()
    _ = m >> cli
    m:setTimeout(50000)
    local ok, err = pcall(m.readU32, m, 0)
    assert.is_false(ok)
    assert.matches("^readU32: 4 bytes at 0x00000000: Timeout waiting for register transaction %d+ " ..
                   "message response%.", err)
    cli:stop()
  end)
end)

describe("readU64", function()
  it("returns all ones as -1; string.format('%u') and math.ult read it unsigned", function()
    local m = mem.Master()
    _ = m >> mem.Emulate(4, 0)
    m:writeU64(0, -1)
    local v = m:readU64(0)
    assert.are.equal(-1, v)
    assert.are.equal("18446744073709551615", ("%u"):format(v))
    assert.is_true(math.ult(1, v))
  end)
end)
