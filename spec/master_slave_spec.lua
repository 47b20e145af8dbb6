local sl = require "streamlua"

-- A Lua-defined slave that records the order it was called in.
local function recorder(log, name)
  return sl.stream.Slave{acceptFrame = function(self, f)
    log[#log + 1] = name .. ":" .. f:read()
  end}
end

describe("sl.stream.Master and sl.stream.Slave", function()
  it("reqFrame comes from the primary slave's pool", function()
    local m = sl.stream.Master()
    local primary, other = sl.stream.Slave(), sl.stream.Slave()
    _ = m >> primary
    _ = m >> other
    local f = m:reqFrame(100, true)
    assert.are.equal(100, f:getSize())
    assert.are.equal(1, primary:getAllocCount())
    assert.are.equal(100, primary:getAllocBytes())
    assert.are.equal(0, other:getAllocCount())
    f = nil
    collectgarbage(); collectgarbage()
    assert.are.equal(0, primary:getAllocCount())
  end)

  it("reqFrame works with no slave attached", function()
    local f = sl.stream.Master():_reqFrame(10, false)
    assert.are.equal(10, f:getSize())
  end)

  it("sendFrame calls secondaries newest first and the primary last", function()
    local log = {}
    local m = sl.stream.Master()
    _ = m >> recorder(log, "a")
    _ = m >> recorder(log, "b")
    _ = m >> recorder(log, "c")
    local f = m:reqFrame(2)
    f:write("hi")
    m:sendFrame(f)
    assert.are.same({"c:hi", "b:hi", "a:hi"}, log)
    assert.are.equal(3, m:_slaveCount())
    assert.are.equal(3, m:slaveCount())
  end)

  it("counts frames and bytes in the base slave", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    sl.streamConnect(m, s)
    for i = 1, 5 do
      local f = m:reqFrame(10)
      f:write(string.rep("x", i))
      m:_sendFrame(f)
    end
    assert.are.equal(5, s:getFrameCount())
    assert.are.equal(15, s:getByteCount())
  end)

  it(">> returns the slave so chains read left to right", function()
    local a, b = sl.stream.Master(), sl.stream.Slave()
    assert.is_true(rawequal(b, a >> b))
  end)

  it("<< connects right to left and returns the master", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    local r = s << m
    assert.is_true(rawequal(m, r))
    m:sendFrame(m:reqFrame(4))
    assert.are.equal(1, s:getFrameCount())
  end)

  it("a plain function is a slave", function()
    local m, got = sl.stream.Master(), nil
    local s = m >> function(f) got = f:read() end
    assert.matches("^LuaSlave#%d+ rxFrames 0", tostring(s))
    local f = m:reqFrame(3); f:write("abc"); m:sendFrame(f)
    assert.are.equal("abc", got)
  end)

  it("== and streamConnectBiDir need objects that are both roles", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    assert.has_error(function() return m == s end)
    assert.has_error(function() sl.streamConnectBiDir(m, s) end)
    assert.has_error(function() sl.stream.streamConnectBiDir(s, m) end)
  end)

  it("refuses what it cannot connect", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    assert.has_error(function() return s >> m end,
      "attempt to connect a 'streamlua.Slave' to a 'streamlua.Master'")
    assert.has_error(function() return m >> 3 end,
      "attempt to connect a 'streamlua.Master' to a 'number'")
    assert.has_error(function() return 3 >> s end)
    assert.has_error(function() sl.streamConnect(s, s) end)
    assert.has_error(function() m:addSlave("x") end)
    assert.has_error(function() m:sendFrame("x") end)
    assert.has_error(function() m:reqFrame(-1) end)
    assert.has_error(function() m:reqFrame("big") end)
  end)

  it("addSlave, removeSlave and streamDisconnect", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    assert.is_true(rawequal(s, m:addSlave(s)))
    m:_addSlave(s)                            -- duplicates are allowed
    assert.are.equal(2, m:_slaveCount())
    m:sendFrame(m:reqFrame(1))
    assert.are.equal(2, s:getFrameCount())
    assert.is_true(m:removeSlave(s))          -- removes every occurrence
    assert.are.equal(0, m:_slaveCount())
    assert.is_false(m:_removeSlave(s))
    m:sendFrame(m:reqFrame(1))
    assert.are.equal(2, s:getFrameCount())
    _ = m >> s
    assert.is_true(sl.streamDisconnect(m, s))
    assert.is_false(sl.stream.streamDisconnect(m, s))
  end)

  it("a Lua-defined slave keeps its own fields on self", function()
    local s = sl.stream.Slave{count = 0, acceptFrame = function(self, f)
      self.count = self.count + 1
      self.last = #f
    end}
    local m = sl.stream.Master()
    _ = m >> s
    m:sendFrame(m:reqFrame(7)); m:sendFrame(m:reqFrame(7))
    assert.are.equal(2, s.count)
    assert.are.equal(0, s.last)
    s.extra = "kept"
    assert.are.equal("kept", s.extra)
    -- like a pyrogue subclass, an override does not run the base counters
    assert.are.equal(0, s:getFrameCount())
  end)

  it("the base acceptFrame is reachable from an override", function()
    local s = sl.stream.Slave{_acceptFrame = function(self, f)
      sl.stream.Slave.acceptFrame(self, f)
    end}
    local m = sl.stream.Master()
    _ = m >> s
    local f = m:reqFrame(5); f:write("12345"); m:sendFrame(f)
    assert.are.equal(1, s:getFrameCount())
    assert.are.equal(5, s:getByteCount())
  end)

  it("an error in acceptFrame is logged, counted by the base, and not fatal", function()
    sl.logging.setEmit(false)
    local s = sl.stream.Slave{acceptFrame = function() error("bad frame") end}
    local m = sl.stream.Master()
    _ = m >> s
    m:sendFrame(m:reqFrame(3))
    sl.logging.setEmit(true)
    local h = sl.logging.history(1)
    assert.matches("ERROR stream.Slave: .*bad frame", h[1])
    assert.matches("stack traceback", h[1])
    assert.are.equal(1, s:getFrameCount())
  end)

  it("a Slave table needs an acceptFrame function", function()
    assert.has_error(function() sl.stream.Slave{} end,
      "bad argument #1 to 'Slave' (table with an acceptFrame function expected)")
    assert.has_error(function() sl.stream.Slave(3) end,
      "bad argument #1 to 'Slave' (table or function expected)")
    assert.has_error(function() sl.stream.Master(3) end,
      "bad argument #1 to 'Master' (table or nothing expected)")
  end)

  it("the pool settings of a slave", function()
    local s = sl.stream.Slave()
    assert.are.equal(0, s:getFixedSize())
    assert.are.equal(0, s:getPoolSize())
    s:setFixedSize(256)
    s:setPoolSize(8)
    assert.are.equal(256, s:getFixedSize())
    assert.are.equal(8, s:getPoolSize())
    local m = sl.stream.Master()
    _ = m >> s
    local f = m:reqFrame(1000)
    assert.are.equal(4, s:getAllocCount())
    assert.are.equal(1024, s:getAllocBytes())
    f = nil
    collectgarbage(); collectgarbage()
    assert.are.equal(0, s:getAllocCount())
    assert.has_error(function() s:setFixedSize(-1) end)
    assert.has_error(function() s:setPoolSize("a") end)
  end)

  it("a slave's pool keeps released frames, bounded in bytes, given back when idle", function()
    local testing = require "streamlua.testing"
    local idle = sl.poolIdleMs()
    assert.are.equal(1000, idle)
    sl.setPoolIdleMs(0)                -- never, while the counts are read
    local s, m = sl.stream.Slave(), sl.stream.Master()
    _ = m >> s
    assert.are.equal(2 * 1024 * 1024, s:getCacheBytes())
    local f = m:reqFrame(1000)
    assert.are.equal(1000, s:getAllocBytes())
    assert.are.equal(0, s:getCachedBytes())
    f = nil
    collectgarbage(); collectgarbage()
    assert.are.equal(0, s:getAllocCount())
    assert.are.equal(0, s:getAllocBytes())
    assert.are.equal(1024, s:getCachedBytes())   -- 1000 in its size class
    assert.are.equal(1024, s:counters().cachedBytes)
    s:setCacheBytes(512)                         -- lowering gives back
    assert.are.equal(512, s:getCacheBytes())
    assert.are.equal(0, s:getCachedBytes())
    f = m:reqFrame(100)
    f = nil
    collectgarbage(); collectgarbage()
    assert.are.equal(112, s:getCachedBytes())
    sl.setPoolIdleMs(5)
    assert.are.equal(5, sl.poolIdleMs())
    testing.serveUntil(function() return s:getCachedBytes() == 0 end, 20)
    sl.setPoolIdleMs(idle)
    assert.are.equal(0, s:getCachedBytes())
    s:setCacheBytes(0)                           -- keeps nothing
    f = m:reqFrame(100)
    f = nil
    collectgarbage(); collectgarbage()
    assert.are.equal(0, s:getCachedBytes())
    assert.has_error(function() s:setCacheBytes(-1) end)
    assert.has_error(function() sl.setPoolIdleMs("a") end)
    assert.has_error(function() sl.setPoolIdleMs(-1) end)
  end)

  it("a frame beyond the pool's limit is refused with the limit named", function()
    local s = sl.stream.Slave()
    assert.are.equal(1 << 30, s:getMaxFrameSize())
    assert.are.equal(1 << 18, s:getMaxBuffers())
    local m = sl.stream.Master()
    _ = m >> s
    s:setFixedSize(1)        -- one-byte blocks: 2^30 would be 2^30 blocks
    assert.has_error(function() m:reqFrame(1 << 30) end,
      "reqFrame: frame of 1073741824 bytes exceeds the pool's limit of 262144")
    assert.are.equal(0, s:getAllocCount())
    s:setFixedSize(0)
    s:setMaxFrameSize(64)
    assert.are.equal(64, m:reqFrame(64):getSize())
    assert.has_error(function() m:reqFrame(65) end,
      "reqFrame: frame of 65 bytes exceeds the pool's limit of 64")
    assert.has_error(function() m:reqFrame(math.maxinteger) end,
      "bad argument #1 to 'reqFrame' (value " .. math.maxinteger ..
      " out of range [0, 4294967295])")
    assert.has_error(function() s:setMaxFrameSize(-1) end)
    assert.has_error(function() s:setMaxBuffers(0) end,
      "bad argument #1 to 'setMaxBuffers' (value 0 out of range [1, 4294967295])")
  end)

  it("setDebug logs each frame as Rogue does", function()
    sl.logging.setEmit(false)
    local s = sl.stream.Slave()
    s:setDebug(10, "dbg.spec")
    local m = sl.stream.Master()
    _ = m >> s
    local f = m:reqFrame(12)
    f:write("\0\1\2\3\4\5\6\7\8\9\10\11")
    m:sendFrame(f)
    sl.logging.setEmit(true)
    local h = sl.logging.history(3)
    assert.matches("CRITICAL dbg.spec: Got Size=12, Error=0, Data:$", h[1])
    assert.matches("dbg.spec:       0x00 0x01 0x02 0x03 0x04 0x05 0x06$", h[2])
    assert.matches("dbg.spec:       0x07 0x08 0x09$", h[3])
    assert.has_error(function() s:setDebug(-1, "x") end)
    assert.has_error(function() s:setDebug(1) end)
  end)

  it("stop and tostring on every class", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    m:stop(); m:_stop(); s:stop(); s:_stop()
    assert.matches("^Master#%d+$", tostring(m))
    assert.matches("^Slave#%d+ rxFrames 0$", tostring(s))
  end)

  it("a closed object says so", function()
    local s = sl.stream.Slave()
    getmetatable(s).__close(s)
    assert.has_error(function() s:getFrameCount() end,
      "attempt to use a closed streamlua.Slave")
    assert.matches("closed", tostring(s))
  end)

  it("keeps a pipeline alive through its source", function()
    local count = 0
    local m = sl.stream.Master()
    do
      local s = sl.stream.Slave{acceptFrame = function() count = count + 1 end}
      _ = m >> s
    end
    collectgarbage(); collectgarbage()
    m:sendFrame(m:reqFrame(1))
    assert.are.equal(1, count)
  end)
end)

describe("methods every object has", function()
  it("counters() reads the base slave's counters", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    _ = m >> s
    local f = m:reqFrame(6); f:write("abcdef"); m:sendFrame(f)
    assert.are.same({rxFrames = 1, rxBytes = 6, cachedBytes = 0}, s:counters())
    assert.are.same({}, m:counters())
  end)

  it("kind() names the class", function()
    assert.are.equal("Master", sl.stream.Master():kind())
    assert.are.equal("Slave", sl.stream.Slave():kind())
    assert.are.equal("LuaSlave", sl.stream.Slave(function() end):kind())
  end)
end)
