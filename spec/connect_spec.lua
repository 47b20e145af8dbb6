-- One set of operators for every class: `a >> b` links a master to a slave
-- by whichever roles they play (stream or memory), `b << a` makes the same
-- link, and `a == b` links both ways. Each pair of roles is shown in both
-- directions.
local sl = require "streamlua"
local mem = sl.memory

-- The stream slaves of master m, as a list of boxes.
local function slaves(m)
  return m:getSlaves()
end

describe("connecting with >>, << and ==", function()
  it("a stream master and slave, either way round", function()
    local m1, f1, s1 = sl.stream.Master(), sl.stream.Fifo(0), sl.stream.Slave()
    assert.is_true(rawequal(s1, m1 >> f1 >> s1))
    local m2, f2, s2 = sl.stream.Master(), sl.stream.Fifo(0), sl.stream.Slave()
    assert.is_true(rawequal(m2, s2 << f2 << m2))
    for _, chain in ipairs{{m1, f1, s1}, {m2, f2, s2}} do
      local m, f, s = chain[1], chain[2], chain[3]
      assert.is_true(rawequal(f, slaves(m)[1]))
      assert.is_true(rawequal(s, slaves(f)[1]))
    end
  end)

  it("a memory master and slave, either way round", function()
    local m1, hub1, emu1 = mem.Master(), mem.Hub(0x100), mem.Emulate(4, 4)
    assert.is_true(rawequal(emu1, m1 >> hub1 >> emu1))
    local m2, hub2, emu2 = mem.Master(), mem.Hub(0x100), mem.Emulate(4, 4)
    assert.is_true(rawequal(m2, emu2 << hub2 << m2))
    for _, chain in ipairs{{m1, hub1, emu1}, {m2, hub2, emu2}} do
      local m, hub, emu = chain[1], chain[2], chain[3]
      assert.is_true(rawequal(hub, m:getSlave()))
      assert.is_true(rawequal(emu, hub:getSlave()))
      m:writeU32(0x10, 0x1234)
      assert.are.equal(0x1234, m:readU32(0x10))
      assert.are.equal(1, emu:pages())
    end
  end)

  it("srp << hub << master works like master >> hub >> srp", function()
    local function path(build)
      local m, hub, srp = mem.Master(), mem.Hub(0x1000), sl.srp.SrpV3()
      local emu = sl.srp.SrpV3Emulation()
      build(m, hub, srp)
      _ = srp == emu
      m:writeU32(0x20, 0xCAFE)
      local v, a, b = m:readU32(0x20), rawequal(m:getSlave(), hub), rawequal(hub:getSlave(), srp)
      -- srp == emu is a cycle of references: unlink it so the graph can be freed
      unlink(srp, emu)
      return v, a, b
    end
    local v1, a1, b1 = path(function(m, hub, srp) _ = m >> hub >> srp end)
    local v2, a2, b2 = path(function(m, hub, srp) _ = srp << hub << m end)
    assert.are.same({0xCAFE, true, true}, {v1, a1, b1})
    assert.are.same({v1, a1, b1}, {v2, a2, b2})
  end)

  it("a stream slave may be on the left of << with a stream master on the right", function()
    local emu, srp = sl.srp.SrpV3Emulation(), sl.srp.SrpV3()
    assert.is_true(rawequal(srp, emu << srp))      -- srp >> emu
    assert.is_true(rawequal(emu, srp << emu))      -- emu >> srp
    assert.is_true(rawequal(emu, slaves(srp)[1]))
    assert.is_true(rawequal(srp, slaves(emu)[1]))
    local m = mem.Master()
    _ = srp << m
    m:writeU32(0x40, 7)
    assert.are.equal(7, m:readU32(0x40))
    unlink(srp, emu)   -- a cycle: unlink so it can be freed
  end)

  it("memory bridges link with >> and << like any memory node", function()
    local srv = mem.TcpServer("127.0.0.1", 0)
    local emu = mem.Emulate(4, 4096)
    assert.is_true(rawequal(srv, emu << srv))
    assert.is_true(rawequal(emu, srv:getSlave()))
    local cli = mem.TcpClient("127.0.0.1", srv:getPort(), true)
    local m = mem.Master()
    assert.is_true(rawequal(m, cli << m))
    m:writeU32(0x8, 99)
    assert.are.equal(99, m:readU32(0x8))
    cli:stop()
    srv:stop()
  end)

  it("== links both ways for a stream pair and for a memory pair", function()
    local a, b = sl.stream.Fifo(0), sl.stream.Fifo(0)
    assert.is_false(a == b)
    assert.is_true(rawequal(b, slaves(a)[1]))
    assert.is_true(rawequal(a, slaves(b)[1]))
    unlink(a, b)
    a:stop(); b:stop()
    local h1, h2 = mem.Hub(0), mem.Hub(0)
    assert.is_false(h1 == h2)
    assert.is_true(rawequal(h2, h1:getSlave()))
    assert.is_true(rawequal(h1, h2:getSlave()))
    h1:setSlave(nil); h2:setSlave(nil)
  end)

  it("refuses a link no role makes, in either direction", function()
    local m, emu, s = mem.Master(), mem.Emulate(4, 4), sl.stream.Slave()
    assert.has_error(function() return emu >> m end,
      "attempt to connect a 'streamlua.memory.Emulate' to a 'streamlua.memory.Master'")
    assert.has_error(function() return m << emu end,
      "attempt to connect a 'streamlua.memory.Emulate' to a 'streamlua.memory.Master'")
    assert.has_error(function() return m >> s end,
      "attempt to connect a 'streamlua.memory.Master' to a 'streamlua.Slave'")
    assert.has_error(function() return s << m end,
      "attempt to connect a 'streamlua.memory.Master' to a 'streamlua.Slave'")
    assert.has_error(function() return sl.srp.SrpV3() >> mem.Hub() end)
    assert.has_error(function() return mem.Hub() == sl.stream.Fifo(0) end)
    assert.has_error(function() return m == emu end)
  end)

  it("the role checks name the role they wanted", function()
    local ok, err = pcall(mem.Master().setSlave, mem.Master(), sl.stream.Slave())
    assert.is_false(ok)
    assert.matches("memory slave expected, got streamlua.Slave", err, 1, true)
    ok, err = pcall(sl.stream.Master().addSlave, sl.stream.Master(), mem.Emulate())
    assert.is_false(ok)
    assert.matches("stream slave expected, got streamlua.memory.Emulate", err, 1, true)
    ok, err = pcall(mem.Master().read, sl.stream.Fifo(0), 0, 4)
    assert.is_false(ok)
    assert.matches("memory master expected, got streamlua.Fifo", err, 1, true)
  end)
end)
