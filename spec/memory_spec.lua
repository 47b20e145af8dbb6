-- sl.memory: the register bus (Master, Slave, Hub, Emulate, transactions).
local sl = require "streamlua"
local mem = sl.memory
local serve_until = require("streamlua.testing").serveUntil

local function bus(...)
  local m = mem.Master()
  local nodes = {...}
  local cur = m
  for _, n in ipairs(nodes) do
    cur:setSlave(n)
    cur = n
  end
  return m
end

describe("sl.memory", function()
  it("has Rogue's transaction types", function()
    assert.are.equal(1, mem.Read)
    assert.are.equal(2, mem.Write)
    assert.are.equal(3, mem.Post)
    assert.are.equal(4, mem.Verify)
  end)

  it("Emulate reads back what was written, and zero where nothing was", function()
    local emu = mem.Emulate(4, 0)
    local m = bus(emu)
    assert.are.equal(string.rep("\0", 8), m:read(0x123456, 8))
    assert.are.equal(0, emu:pages())
    m:write(0x1000, "hello")
    m:post(0x1005, "!")
    assert.are.equal("hello!", m:read(0x1000, 6))
    m:verify(0x1000, "hello!")
    assert.are.equal(1, emu:pages())
    -- across a page boundary
    m:write(0x2FFE, "abcd")
    assert.are.equal("abcd", m:read(0x2FFE, 4))
    assert.are.equal(3, emu:pages())
    assert.are.equal(4, emu:doMinAccess())
    assert.are.equal(0, emu:doMaxAccess())
  end)

  it("reads and writes integers little-endian", function()
    local m = bus(mem.Emulate(1, 8))
    m:writeU8(0, 0xAB)
    m:writeU16(2, 0xBEEF)
    m:writeU32(4, 0xDEADBEEF)
    m:writeU64(8, 0x0102030405060708)
    assert.are.equal(0xAB, m:readU8(0))
    assert.are.equal(0xBEEF, m:readU16(2))
    assert.are.equal(0xDEADBEEF, m:readU32(4))
    assert.are.equal(0x0102030405060708, m:readU64(8))
    assert.are.equal("\xEF\xBE\xAD\xDE", m:read(4, 4))
    assert.has_error(function() m:writeU8(0, 256) end)
    assert.has_error(function() m:writeU16(0, -1) end)
    assert.has_error(function() m:read(-1, 4) end)
  end)

  it("verify raises on a mismatch, naming the byte", function()
    local m = bus(mem.Emulate(4, 0))
    m:write(0x10, "abcd")
    local ok, err = pcall(m.verify, m, 0x10, "abcx")
    assert.is_false(ok)
    assert.matches("verify: 4 bytes at 0x00000010: mismatch at byte 3", err, 1, true)
  end)

  it("connects with >>, << and busConnect, and getSlave returns the slave", function()
    local m, hub, emu = mem.Master(), mem.Hub(0x100), mem.Emulate(4, 4)
    local r = m >> hub >> emu
    assert.is_true(rawequal(r, emu))
    assert.is_true(rawequal(m:getSlave(), hub))
    assert.is_true(rawequal(hub:getSlave(), emu))
    local m2 = mem.Master()
    _ = emu << m2
    assert.is_true(rawequal(m2:getSlave(), emu))
    local m3 = mem.Master()
    assert.is_true(rawequal(sl.busConnect(m3, hub), hub))
    assert.is_true(rawequal(mem.busConnect, sl.busConnect))
    assert.is_true(rawequal(m3:getSlave(), hub))
    assert.has_error(function() _ = m >> sl.stream.Slave() end)
    assert.has_error(function() _ = emu >> m end)
    assert.has_error(function() m:setSlave(m2) end)
    m:setSlave(nil)
    assert.is_nil(m:getSlave())
    assert.are.equal("memory.Hub", hub:kind())
    assert.matches("^memory.Master#%d+", tostring(m))
  end)

  it("an unconnected master fails with Rogue's message", function()
    local m = mem.Master()
    local ok, err = pcall(m.read, m, 0, 4)
    assert.is_false(ok)
    assert.matches("Unsupported transaction using unconnected memory bus", err, 1, true)
    -- and so does a plain Slave(min, max)
    local s = mem.Slave(4, 8)
    m:setSlave(s)
    assert.are.equal(4, m:reqMinAccess())
    assert.are.equal(8, m:reqMaxAccess())
    ok, err = pcall(m.write, m, 0, "x")
    assert.matches("write: 1 bytes at 0x00000000: Unsupported", err, 1, true)
  end)

  it("Hub adds its offset and splits to the slave's max access", function()
    local seen = {}
    local emu = mem.Emulate(4, 4)
    local spy = mem.Slave({doTransaction = function(self, t)
      seen[#seen + 1] = {t:address(), t:size(), t:type()}
      if t:type() == mem.Write then
        self.copy:write(t:address(), t:getData())
      else
        t:setData(self.copy:read(t:address(), t:size()))
      end
      t:done()
    end}, 4, 4)
    spy.copy = bus(emu)
    local m = bus(mem.Hub(0x1000), spy)
    local data = {}
    for i = 0, 63 do data[#data + 1] = string.char(i) end
    data = table.concat(data)
    m:write(0x20, data)
    assert.are.equal(16, #seen)
    for i, s in ipairs(seen) do
      assert.are.same({0x1020 + (i - 1) * 4, 4, mem.Write}, s)
    end
    seen = {}
    assert.are.equal(data, m:read(0x20, 64))
    assert.are.equal(16, #seen)
    assert.are.same({0x1020 + 60, 4, mem.Read}, seen[16])
    -- the data landed in the Emulate at the offset address
    assert.are.equal(data, spy.copy:read(0x1020, 64))
    -- an odd size: the last part is shorter
    seen = {}
    m:write(0x100, "12345")
    assert.are.same({{0x1100, 4, mem.Write}, {0x1104, 1, mem.Write}}, seen)
  end)

  it("Hub in front of Emulate(4, 4) round-trips 64 bytes", function()
    local hub = mem.Hub(0x10000)
    local emu = mem.Emulate(4, 4)
    local m = mem.Master()
    _ = m >> hub >> emu
    local data = string.rep("0123456789abcdef", 4)
    m:write(0, data)
    assert.are.equal(data, m:read(0, 64))
    assert.are.equal(data, bus(emu):read(0x10000, 64))
    assert.are.equal(1, emu:pages())
    assert.are.equal(0x10000, hub:getOffset())
    assert.are.equal(4, hub:doMinAccess())
    assert.are.equal(0xFFFFFFFF, hub:doMaxAccess())
    local root = mem.Hub(0, 8, 16)
    assert.are.equal(8, root:doMinAccess())
    assert.are.equal(16, root:doMaxAccess())
  end)

  it("an error from any part of a split reaches the caller", function()
    local n = 0
    local s = mem.Slave({doTransaction = function(_, t)
      n = n + 1
      if n == 2 then t:error("bad address") else t:done() end
    end}, 4, 4)
    local m = bus(mem.Hub(0), s)
    local ok, err = pcall(m.write, m, 0x40, string.rep("x", 16))
    assert.is_false(ok)
    assert.matches("write: 16 bytes at 0x00000040: ", err, 1, true)
    assert.matches("failed with error: bad address", err, 1, true)
    assert.are.equal(4, n)
  end)

  it("an error from a Lua slave reaches the caller with its cause", function()
    local m = bus(mem.Slave{doTransaction = function(_, t) t:error("no such register") end})
    local ok, err = pcall(m.read, m, 0x1000, 4)
    assert.is_false(ok)
    assert.are.equal("read: 4 bytes at 0x00001000: no such register", err)
    -- a Lua error in doTransaction fails the transaction too
    m:setSlave(mem.Slave{doTransaction = function() error("kaboom") end})
    ok, err = pcall(m.writeU32, m, 0x8, 1)
    assert.is_false(ok)
    assert.matches("writeU32: 4 bytes at 0x00000008: .*kaboom", err)
  end)

  it("a Lua slave keeps its fields when its box is collected and made again", function()
    local m = mem.Master()
    m:setSlave(mem.Slave{seen = 0, doTransaction = function(self, t)
      self.seen = self.seen + 1
      t:done()
    end})
    collectgarbage(); collectgarbage()   -- only the master holds the slave now
    m:writeU32(0x10, 1)
    local s = m:getSlave()
    assert.are.equal(1, s.seen)
    s.seen = 10
    s = nil
    collectgarbage(); collectgarbage()
    m:writeU32(0x10, 2)
    assert.are.equal(11, m:getSlave().seen)
  end)

  it("a Lua slave that never completes times out", function()
    local held
    local m = bus(mem.Slave{doTransaction = function(_, t) held = t end})
    m:setTimeout(100000)
    assert.are.equal(100000, m:getTimeout())   -- microseconds, as Rogue's
    m:setTimeout(0)   -- ignored, as Rogue
    assert.are.equal(100000, m:getTimeout())
    local t0 = sl.now()
    local ok, err = pcall(m.read, m, 0x1000, 4)
    assert.is_false(ok)
    assert.matches("^read: 4 bytes at 0x00001000: Timeout waiting for register transaction " ..
                   "%d+ message response%.$", err)   -- Rogue's text after ours
    assert.is_true(sl.now() - t0 >= 0.09)
    assert.is_true(held:expired())
    assert.is_false(held:done())   -- too late: already complete
  end)

  it("a Lua slave may complete later from a timer", function()
    local m = bus(mem.Slave{doTransaction = function(_, t)
      assert.is_false(t:expired())
      sl.after(0.02, function()
        t:setData("wxyz")
        t:done()
      end)
    end})
    assert.are.equal("wxyz", m:read(0x20, 4))
  end)

  it("gives the slave a transaction it can read", function()
    local got
    local m = bus(mem.Slave{doTransaction = function(_, t)
      got = {id = t:id(), address = t:address(), size = t:size(), type = t:type(),
             data = t:getData(), timeout = t:timeout(), s = tostring(t)}
      assert.has_error(function() t:setData("toolong", 0) end)
      assert.has_error(function() t:setData("x", math.maxinteger) end)
      t:done()
    end})
    m:post(0xABC, "hi")
    assert.are.equal(0xABC, got.address)
    assert.are.equal(2, got.size)
    assert.are.equal(mem.Post, got.type)
    assert.are.equal("hi", got.data)
    assert.are.equal(1, got.timeout)
    assert.is_true(got.id > 0)
    assert.matches("post 2 bytes", got.s, 1, true)
  end)

  it("reqTransaction calls back on the main thread through the loop", function()
    local m = bus(mem.Emulate(4, 0))
    m:writeU32(0x10, 0x11223344)
    local got
    local id = m:reqTransaction(0x10, 4, mem.Read, function(err, data)
      got = {err = err, data = data}
    end)
    assert.is_true(id > 0)
    assert.is_nil(got)   -- not before the loop runs
    assert.is_true(serve_until(function() return got ~= nil end, 20))
    assert.is_nil(got.err)
    assert.are.equal("\x44\x33\x22\x11", got.data)
    -- a write with data, and an error case
    local wrote
    m:reqTransaction(0x20, "abcd", mem.Write, function(err) wrote = err or "ok" end)
    assert.is_true(serve_until(function() return wrote ~= nil end, 20))
    assert.are.equal("ok", wrote)
    assert.are.equal("abcd", m:read(0x20, 4))
    local failed
    m:setSlave(mem.Slave{doTransaction = function(_, t) t:error("nope") end})
    m:reqTransaction(0x30, 4, mem.Verify, function(err) failed = err end)
    assert.is_true(serve_until(function() return failed ~= nil end, 20))
    assert.are.equal("verify: 4 bytes at 0x00000030: nope", failed)
    assert.has_error(function() m:reqTransaction(0, 4, 9, function() end) end)
    assert.has_error(function() m:reqTransaction(0, 4, mem.Read) end)
  end)

  it("reqTransaction times out when the slave never answers", function()
    local m = bus(mem.Slave{doTransaction = function() end})
    m:setTimeout(50000)
    local err
    m:reqTransaction(0, 4, mem.Read, function(e) err = e end)
    local t0 = sl.now()
    while err == nil and sl.now() - t0 < 20 do sl.sleep(0.01) end
    assert.matches("^read: 4 bytes at 0x00000000: Timeout waiting for register transaction " ..
                   "%d+ message response%.$", err)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() mem.Slave{} end)
    assert.has_error(function() mem.Hub(-1) end)
    assert.has_error(function() mem.Emulate(-1) end)
    local m = mem.Master()
    assert.has_error(function() m:setTimeout(-1) end)
    assert.has_error(function() m:setSlave(42) end)
    assert.has_error(function() mem.Master.read(mem.Emulate(), 0, 4) end)
  end)
end)
