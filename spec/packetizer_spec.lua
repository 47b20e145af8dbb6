-- sl.packetizer: Core (v1) and CoreV2 from Lua, against the bytes of the
-- pack_* vectors (the C test reads the files and covers every drop rule).
local sl = require "streamlua"
local packetizer = sl.packetizer

local PACK_V1_3BYTE = unhex("00 00 00 00 00 05 00 22 a1 b2 c3 80")
local PACK_V2_3BYTE_CRC = unhex([[22 22 05 00 00 00 00 80 a1 b2 c3 00 00 00 00 00
  01 01 03 00 2c 28 5d 19]])

local function send(m, data, fu, lu, err)
  local f = m:reqFrame(#data, true)
  f:write(data)
  f:setFirstUser(fu or 0)
  f:setLastUser(lu or 0)
  if err then f:setError(err) end
  m:sendFrame(f)
end

-- A master into pack:application(dest) and a collector on the transport.
local function wire(pack, dest)
  local m, cap, got = sl.stream.Master(), collector()
  _ = m >> pack:application(dest)
  _ = pack:transport() >> cap
  return m, got
end

-- Two cores linked transport to transport; a master into a's dest and a
-- collector on b's.
local function pair(make, dest)
  local a, b = make(), make()
  _ = a:transport() == b:transport()
  local m, cap, got = sl.stream.Master(), collector()
  _ = m >> a:application(dest)
  _ = b:application(dest) >> cap
  return a, b, m, got
end

describe("sl.packetizer", function()
  it("Core(enSsi) and CoreV2(...) send Rogue's segments", function()
    local m, got = wire(packetizer.Core(true), 5)
    send(m, unhex("a1 b2 c3"), 0x20, 0x00)
    assert.are.equal(hex(PACK_V1_3BYTE), hex(got[1].data))
    m, got = wire(packetizer.CoreV2(true, true, true), 5)
    send(m, unhex("a1 b2 c3"), 0x20, 0x01)
    assert.are.equal(hex(PACK_V2_3BYTE_CRC), hex(got[1].data))
  end)

  it("reassembles Rogue's segments into frames with their metadata", function()
    local pack = packetizer.CoreV2(true, true, true)
    local cap, got = collector()
    _ = pack:application(5) >> cap
    local src = sl.stream.Master()
    _ = src >> pack:transport()
    local f = src:reqFrame(#PACK_V2_3BYTE_CRC, true)
    f:write(PACK_V2_3BYTE_CRC)
    src:sendFrame(f)
    assert.are.equal(1, #got)
    assert.are.equal(hex(unhex("a1 b2 c3")), hex(got[1].data))
    assert.are.equal(0x0122, got[1].flags)
    assert.are.equal(0x80, got[1].error)     -- enSsi: lastUser bit 0 is EOFE
    assert.are.equal(0, got[1].channel)
  end)

  it("carries frames of many sizes both ways, v1 and v2", function()
    local makers = {function() return packetizer.Core(false) end,
                    function() return packetizer.CoreV2(true, true, false) end}
    for _, make in ipairs(makers) do
      local a, b, m, got = pair(make, 7)
      local sizes = {1, 8, 9, 1000, 100000}
      for i, n in ipairs(sizes) do send(m, pattern(n, i), 0x10, 0x20) end
      assert.are.equal(#sizes, #got)
      for i, n in ipairs(sizes) do
        assert.are.equal(pattern(n, i), got[i].data)
        assert.are.equal(0x2010, got[i].flags)
      end
      assert.are.equal(0, b:getDropCount())
      assert.are.equal(#sizes, a:counters().txFrames)
      assert.are.equal(#sizes, b:counters().rxFrames)
      unlink(a:transport(), b:transport())
    end
  end)

  it("application(dest) is the same object for a dest, every call", function()
    local pack = packetizer.Core(true)
    local a = pack:application(3)
    assert.is_true(rawequal(a, pack:application(3)))
    assert.is_false(rawequal(a, pack:application(4)))
    assert.is_true(rawequal(pack:transport(), pack:transport()))
    assert.is_true(rawequal(pack:application(0), pack:application(0)))
    assert.is_true(rawequal(pack:application(255), pack:application(255)))
    assert.are.equal("packetizer.Application", a:kind())
    assert.are.equal("packetizer.Transport", pack:transport():kind())
    assert.are.equal("packetizer.Core", pack:kind())
    assert.are.equal("packetizer.CoreV2", packetizer.CoreV2(false, true, true):kind())
  end)

  it("an application keeps delivering when only the graph holds it", function()
    local a, b = packetizer.Core(false), packetizer.Core(false)
    _ = a:transport() == b:transport()
    local m, cap, got = sl.stream.Master(), collector()
    _ = m >> a:application(2)
    _ = b:application(2) >> cap
    collectgarbage()
    collectgarbage()
    send(m, "kept")
    assert.are.same({"kept"}, {got[1] and got[1].data})
    unlink(a:transport(), b:transport())
  end)

  it("counts and logs dropped segments; reset drops unfinished frames", function()
    sl.logging.setFilter("pyrogue.packetizer", sl.logging.Warning)
    local pack = packetizer.CoreV2(true, true, true)
    local cap, got = collector()
    _ = pack:application(5) >> cap
    local src = sl.stream.Master()
    _ = src >> pack:transport()
    local function seg(bytes)
      local f = src:reqFrame(#bytes, true)
      f:write(bytes)
      src:sendFrame(f)
    end
    seg(PACK_V2_3BYTE_CRC:sub(1, 16))                        -- too short
    local bad = PACK_V2_3BYTE_CRC:sub(1, 23) .. "\0"         -- CRC wrong
    seg(bad)
    assert.are.equal(2, pack:getDropCount())
    assert.truthy(logged("packetizer.Controller: Dropping frame due to contents"))
    assert.truthy(logged("packetizer.Controller: Dropping frame: gotDest=5, gotSof=1, crcErr=1"))
    -- the first segment of a frame, then the link below reopens
    local first = unhex("22 02 05 00 00 00 00 80 01 02 03 04 05 06 07 08 00 00 08 00 00 00 00 00")
    local nocrc = packetizer.CoreV2(false, true, true)
    local ncap, ngot = collector()
    _ = nocrc:application(5) >> ncap
    local nsrc = sl.stream.Master()
    _ = nsrc >> nocrc:transport()
    local f = nsrc:reqFrame(#first, true)
    f:write(first)
    nsrc:sendFrame(f)
    assert.are.equal(1, nocrc:reset())
    assert.are.equal(1, nocrc:getDropCount())
    assert.are.equal(1, nocrc:counters().dropReset)
    assert.truthy(logged("Dropping frame: dest=5, the transport was reset"))
    f = nsrc:reqFrame(#PACK_V2_3BYTE_CRC, true)
    f:write(PACK_V2_3BYTE_CRC)
    nsrc:sendFrame(f)
    assert.are.equal(1, #ngot)                               -- the next frame arrives
    assert.are.equal(0, nocrc:reset())
    assert.are.equal(0, #got)
  end)

  it("bounds the bytes of unfinished frames", function()
    local pack = packetizer.Core(false)
    assert.are.equal(64 * 1024 * 1024, pack:getMaxPending())
    pack:setMaxPending(16)
    assert.are.equal(16, pack:getMaxPending())
    local src = sl.stream.Master()
    _ = src >> pack:transport()
    local seg = "\0\0\0\0\0\1\0\0" .. string.rep("x", 20) .. "\x80"
    local f = src:reqFrame(#seg, true)
    f:write(seg)
    src:sendFrame(f)
    assert.are.equal(1, pack:counters().dropLimit)
  end)

  it("does not send errored frames", function()
    local m, got = wire(packetizer.Core(true), 1)
    send(m, "abc", 0, 0, 1)
    assert.are.equal(0, #got)
  end)

  it("raises on misuse, naming the argument", function()
    assert.has_error(function() packetizer.Core() end,
      "bad argument #1 to 'Core' (boolean expected, got no value)")
    assert.has_error(function() packetizer.CoreV2(true, true) end,
      "bad argument #3 to 'CoreV2' (boolean expected, got no value)")
    assert.has_error(function() packetizer.CoreV2(1, true, true) end)
    local pack = packetizer.Core(true)
    assert.has_error(function() pack:application(256) end,
      "bad argument #1 to 'application' (value 256 out of range [0, 255])")
    assert.has_error(function() pack:application(-1) end)
    assert.has_error(function() pack:application("x") end)
    assert.has_error(function() pack:setMaxPending(0) end)
    assert.has_error(function() packetizer.Core.getDropCount(sl.stream.Fifo(1, 0, false)) end,
      "bad argument #1 to 'getDropCount' (packetizer Core or CoreV2 expected)")
  end)

  it("shows in the graph with its kind and counters", function()
    local pack = packetizer.CoreV2(false, true, true)
    local app, t = pack:application(9), pack:transport()
    local found = {}
    for _, n in ipairs(sl.graph().nodes) do
      if rawequal(n.object, pack) then found.core = n.counters.drops end
      if rawequal(n.object, app) then found.app = n.counters.txFrames end
      if rawequal(n.object, t) then found.t = n.counters.drops end
    end
    assert.are.same({core = 0, app = 0, t = 0}, found)
  end)
end)
