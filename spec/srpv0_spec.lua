-- sl.srp.SrpV0: requests byte for byte as the srpv0_* vectors (the C test
-- reads the files), and end to end against a small SRPv0 responder written
-- here: round trips, status errors, mismatched and missing answers. Every
-- wait is short and bounded.
local sl = require "streamlua"
local mem = sl.memory

local wait_for = require("streamlua.testing").serveUntil

local function u32(v) return string.pack("<I4", v) end

-- A firmware-like SRPv0 end: a sparse memory of 32-bit words. `mode`
-- bends its answers: "status" (sets status to r.status), "silent" (no
-- answer), "long" (a word too many), "header" (W1 changed),
-- then a right answer after each bent one when r.retry is set.
local function responder()
  local r = {words = {}, seen = 0}
  local out = sl.stream.Master()
  local function answer(bytes)
    local f = out:reqFrame(#bytes, true)
    f:write(bytes)
    out:sendFrame(f)
  end
  r.slave = sl.stream.Slave{acceptFrame = function(_, f)
    local req = f:read()
    r.seen = r.seen + 1
    local id, w1 = string.unpack("<I4I4", req)
    local word = w1 & 0x3FFFFFFF
    local data
    if w1 & 0x40000000 ~= 0 then              -- write: id, W1, data, 0
      data = req:sub(9, -5)
      for i = 0, #data // 4 - 1 do r.words[word + i] = data:sub(4 * i + 1, 4 * i + 4) end
    else                                       -- read: id, W1, count - 1, 0
      local t = {}
      for i = 0, string.unpack("<I4", req, 9) do t[#t + 1] = r.words[word + i] or u32(0) end
      data = table.concat(t)
    end
    local good = u32(id) .. u32(w1) .. data .. u32(0)
    if r.mode == "silent" then return end
    if r.mode == "status" then
      answer(u32(id) .. u32(w1) .. data .. u32(r.status))
    elseif r.mode == "long" then
      answer(good .. u32(0))
    elseif r.mode == "header" then
      answer(u32(id) .. u32(w1 ~ 1) .. data .. u32(0))
    end
    if r.mode == nil or r.retry then answer(good) end
  end}
  r.out = out
  return r
end

-- memory master >> SrpV0, and SrpV0 wired both ways to a responder.
local function rig()
  local m, srp, fw = mem.Master(), sl.srp.SrpV0(), responder()
  _ = m >> srp
  _ = srp >> fw.slave
  _ = fw.out >> srp
  m:setTimeout(5e6)
  return m, srp, fw
end

describe("sl.srp.SrpV0", function()
  it("sends the vectors' requests and is a memory slave of 4 to 2048 bytes", function()
    local m, srp = mem.Master(), sl.srp.SrpV0()
    local cap, got = collector()
    _ = m >> srp
    _ = srp >> cap
    m:setTimeout(50000)
    assert.are.equal("srp.SrpV0", srp:kind())
    assert.are.equal(4, srp:doMinAccess())
    assert.are.equal(2048, srp:doMaxAccess())
    local w = m:reqTransaction(0x1000, unhex("11 22 33 44 55 66 77 88"), mem.Write, function() end)
    local r = m:reqTransaction(0x1000, 8, mem.Read, function() end)
    local p = m:reqTransaction(0x100001000, unhex("11 22 33 44"), mem.Post, function() end)
    assert.is_true(wait_for(function() return #got == 3 end))
    assert.are.equal(hex(u32(w) .. unhex("00 04 00 40 11 22 33 44 55 66 77 88 00 00 00 00")),
                     hex(got[1].data))
    assert.are.equal(hex(u32(r) .. unhex("00 04 00 00 01 00 00 00 00 00 00 00")), hex(got[2].data))
    -- address bits above 31 are lost, as Rogue loses them
    assert.are.equal(hex(u32(p) .. unhex("00 04 00 40 11 22 33 44 00 00 00 00")), hex(got[3].data))
    for i = 1, 3 do
      assert.are.equal(0, got[i].channel)
      assert.are.equal(0, got[i].flags)
    end
    assert.is_true(wait_for(function() return srp:pending() == 0 or srp:counters().txFrames == 3 end))
  end)

  it("writes and reads back through a responder, at every size up to 2048", function()
    local m, srp, fw = rig()
    m:writeU32(0x100, 0xDEADBEEF)
    assert.are.equal(0xDEADBEEF, m:readU32(0x100))
    assert.are.equal(0, m:readU32(0x5000))
    for _, size in ipairs{4, 8, 12, 64, 1020, 2048} do
      local data = pattern(size, size)
      m:write(0x2000 + size, data)
      assert.are.equal(hex(data), hex(m:read(0x2000 + size, size)))
    end
    m:post(0x300, unhex("01 02 03 04"))
    assert.are.equal(0x04030201, m:readU32(0x300))
    -- the responder answers the post too, as firmware does: an unknown id
    local c = srp:counters()
    assert.are.equal(1, c.drops)
    assert.are.equal(1, c.unknown)
    assert.are.equal(c.txFrames, fw.seen)
    assert.are.equal(0, srp:pending())
  end)

  it("refuses what SRPv0 cannot carry and sends nothing", function()
    local m, srp, fw = rig()
    local function err_of(f, ...)
      local ok, e = pcall(f, m, ...)
      assert.is_false(ok)
      return e
    end
    assert.matches("Transaction size 2052 exceeds max size 2048", err_of(m.read, 0, 2052), 1, true)
    assert.matches("Transaction address 0x2 is not aligned to min size 4", err_of(m.read, 2, 4), 1, true)
    assert.matches("Transaction size 0x2 is not aligned to min size 4", err_of(m.writeU16, 0, 1), 1, true)
    assert.are.equal(0, fw.seen)
    assert.are.equal(3, srp:counters().refused)
  end)

  it("fails a transaction on a non-zero status with Rogue's text", function()
    sl.logging.setFilter("pyrogue.SrpV0", sl.logging.Warning)
    local m, srp, fw = rig()
    fw.mode, fw.status = "status", 0x20000
    local ok, e = pcall(m.readU32, m, 0x10)
    assert.is_false(ok)
    assert.matches("Axi bus timeout detected in hardware", e, 1, true)
    fw.status = 0x10000
    ok, e = pcall(m.writeU32, m, 0x10, 1)
    assert.matches("Axi bus returned fail status in hardware", e, 1, true)
    fw.status = 0x1F
    ok, e = pcall(m.readU32, m, 0x10)
    assert.matches("Non zero status message returned on axi bus in hardware: 0x1f", e, 1, true)
    assert.are.equal(3, srp:counters().errors)
    sl.logging.flush()           -- the alike lines after the first are counted
    assert.truthy(logged("SrpV0: Error detected for ID id=%d+, tail=0x0000001f"))
  end)

  it("drops a mismatched answer and takes the right one after it", function()
    local m, srp, fw = rig()
    fw.retry = true
    for _, mode in ipairs{"long", "header"} do
      fw.mode = mode
      m:writeU32(0x40, 7)
      assert.are.equal(7, m:readU32(0x40))
    end
    local c = srp:counters()
    assert.are.equal(4, c.mismatch)
    assert.are.equal(4, c.drops)
    assert.are.equal(0, c.errors)
  end)

  it("times out when nothing or only mismatches come back, and drops what comes late", function()
    local m, srp, fw = rig()
    m:setTimeout(50000)
    for _, mode in ipairs{"silent", "long", "header"} do
      fw.mode = mode
      local ok, e = pcall(m.readU32, m, 0x80)
      assert.is_false(ok)
      assert.matches("Timeout waiting for register transaction", e, 1, true)
    end
    assert.are.equal(2, srp:counters().mismatch)
    -- an answer to a request that has timed out is late, not unknown
    local cap, got = collector("data")
    _ = srp >> cap
    fw.mode = "silent"
    pcall(m.readU32, m, 0x80)
    assert.is_true(wait_for(function() return #got == 1 end))
    fw.out:sendFrame((function()
      local bytes = got[1]:sub(1, 8) .. u32(0) .. u32(0)
      local f = fw.out:reqFrame(#bytes, true)
      f:write(bytes)
      return f
    end)())
    assert.are.equal(1, srp:counters().late)
    assert.truthy(logged("SrpV0: Transaction expired. Id=%d+"))
  end)

  it("fails what is in flight on stop, and everything after", function()
    local m, srp, fw = rig()
    fw.mode = "silent"
    local r = {}
    m:reqTransaction(0x10, 4, mem.Read, function(err) r.err = err end)
    assert.is_true(wait_for(function() return srp:pending() == 1 end))
    srp:stop()
    assert.is_true(wait_for(function() return r.err ~= nil end))
    assert.matches("SrpV0: stopped", r.err, 1, true)
    local ok, e = pcall(m.readU32, m, 0x10)
    assert.is_false(ok)
    assert.matches("SrpV0: stopped", e, 1, true)
  end)

  it("shows in the graph with its kind, links and counters", function()
    local m, srp, fw = rig()
    m:writeU32(0, 1)
    local node
    for _, n in ipairs(sl.graph().nodes) do
      if rawequal(n.object, srp) then node = n end
    end
    assert.are.equal("srp.SrpV0", node.kind)
    assert.are.equal(1, node.counters.txFrames)
    assert.are.equal(0, node.counters.mismatch)
    assert.matches("srp.SrpV0#%d+ %-> LuaSlave", tostring(sl.graph()))
  end)
end)
