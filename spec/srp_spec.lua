-- sl.srp: SRPv3 (SrpV3, SrpV3Emulation), frames checked byte for byte
-- against rogue-reference 6.1, transactions end to end, and error
-- injection between the two ends. Every wait is short and bounded.
local sl = require "streamlua"
local mem, srpmod = sl.memory, sl.srp

local function u32(v) return string.pack("<I4", v) end

-- Serves the loop until cond() holds or `limit` seconds pass.
local function wait_for(cond, limit)
  local t0 = sl.now()
  while not cond() and sl.now() - t0 < (limit or 20) do sl.sleep(0.005) end
  return cond()
end

-- Sends the bytes as one frame from master `src`.
local function send(src, bytes, err)
  local f = src:reqFrame(#bytes, true)
  f:write(bytes)
  if err then f:setError(err) end
  src:sendFrame(f)
end

-- A non-blocking request whose result lands in the returned table.
local function request(m, addr, size_or_data, type)
  local r = {}
  r.id = m:reqTransaction(addr, size_or_data, type, function(err, data)
    r.err, r.data, r.done = err, data, true
  end)
  return r
end

-- The example of 6.1: address 0x1_2345_6780, data 11..88.
local ADDR = 0x123456780
local ADDR_HEX = "80 67 45 23  01 00 00 00"
local DATA8 = unhex("11 22 33 44 55 66 77 88")

describe("sl.srp.SrpV3", function()
  it("encodes requests exactly as 6.1", function()
    local m, srp = mem.Master(), srpmod.SrpV3()
    local cap, got = collector("data")
    _ = m >> srp
    _ = srp >> cap
    m:setTimeout(50000)
    assert.are.equal(0x0A, srp:getHardwareTimeout())
    assert.are.equal(4, srp:doMinAccess())
    assert.are.equal(4096, srp:doMaxAccess())
    assert.are.equal(4096, m:reqMaxAccess())
    local w = request(m, ADDR, DATA8, mem.Write)
    local r = request(m, ADDR, 8, mem.Read)
    local v = request(m, ADDR, 4, mem.Verify)
    local p = request(m, ADDR + 4, DATA8:sub(1, 4), mem.Post)
    local big = request(m, 0, 4096, mem.Read)
    srp:setHardwareTimeout(0x80)
    local w80 = request(m, ADDR, DATA8, mem.Write)
    assert.is_true(wait_for(function() return #got == 6 end))
    assert.are.equal(unhex("03 01 00 0A") .. u32(w.id) .. unhex(ADDR_HEX .. "07 00 00 00") .. DATA8, got[1])
    assert.are.equal(28, #got[1])
    assert.are.equal(unhex("03 00 00 0A") .. u32(r.id) .. unhex(ADDR_HEX .. "07 00 00 00"), got[2])
    assert.are.equal(unhex("03 00 00 0A") .. u32(v.id) .. unhex(ADDR_HEX .. "03 00 00 00"), got[3])
    assert.are.equal(unhex("03 02 00 0A") .. u32(p.id) .. unhex("84 67 45 23  01 00 00 00  03 00 00 00  11 22 33 44"), got[4])
    assert.are.equal(unhex("03 00 00 0A") .. u32(big.id) .. unhex("00 00 00 00  00 00 00 00  FF 0F 00 00"), got[5])
    assert.are.equal(unhex("03 01 00 80"), got[6]:sub(1, 4))
    assert.are.equal(u32(w80.id), got[6]:sub(5, 8))
    -- a post completes at once; the others time out (nobody answers)
    assert.is_true(wait_for(function() return w.done and r.done and v.done and big.done and w80.done end))
    assert.is_true(p.done)
    assert.is_nil(p.err)
    assert.matches("Timeout waiting for register transaction", r.err, 1, true)
    assert.has_error(function() srp:setHardwareTimeout(256) end)
  end)

  it("refuses what SRPv3 cannot carry and sends nothing", function()
    local m, srp = mem.Master(), srpmod.SrpV3()
    local cap, got = collector("data")
    _ = m >> srp
    _ = srp >> cap
    local function err_of(f, ...)
      local ok, e = pcall(f, m, ...)
      assert.is_false(ok)
      return e
    end
    assert.matches("Transaction address 0x2 is not aligned to min size 4", err_of(m.read, 2, 4), 1, true)
    assert.matches("Transaction size 0x6 is not aligned to min size 4", err_of(m.read, 0, 6), 1, true)
    assert.matches("Transaction size 0x0 is not aligned to min size 4", err_of(m.read, 0, 0), 1, true)
    assert.matches("Transaction size 4100 exceeds max size 4096", err_of(m.write, 0, string.rep("x", 4100)), 1, true)
    assert.matches("Transaction size 0x2 is not aligned to min size 4", err_of(m.writeU16, 0, 1), 1, true)
    sl.sleep(0.01)
    assert.are.equal(0, #got)
    assert.are.equal(0, srp:counters().txFrames)
    assert.are.equal(5, srp:counters().refused)
  end)

  it("judges hand-made responses to an 8-byte read as Rogue does", function()
    local m, srp = mem.Master(), srpmod.SrpV3()
    local cap, got = collector("data")
    local src = sl.stream.Master()
    _ = m >> srp
    _ = srp >> cap
    _ = src >> srp
    m:setTimeout(20e6)                   -- each is answered, however late
    -- answer(fn): make a read, build its response with fn(header, data), send it
    local function answer(fn, addr)
      addr = addr or 0x100
      local n = #got
      local r = request(m, addr, 8, mem.Read)
      assert.is_true(wait_for(function() return #got == n + 1 end))
      local req = got[n + 1]
      send(src, fn(req, "ABCDEFGH"))
      assert.is_true(wait_for(function() return r.done end))
      return r
    end
    local function ok_resp(req, d) return req .. d .. u32(0) end
    local r = answer(ok_resp)
    assert.is_nil(r.err)
    assert.are.equal("ABCDEFGH", r.data)
    -- W0 bits 13:10 (capability flags) are ignored
    r = answer(function(req, d)
      return string.char(req:byte(1), req:byte(2) | 0x3C) .. req:sub(3) .. d .. u32(0)
    end)
    assert.is_nil(r.err)
    -- bit 14 set, or W4 changed: not the protocol expected
    r = answer(function(req, d)
      return string.char(req:byte(1), req:byte(2) | 0x40) .. req:sub(3) .. d .. u32(0)
    end)
    assert.matches("Received SRPV3 message did not match expected protocol. id=" .. r.id ..
                   ", addr=0x0000000000000100", r.err, 1, true)
    r = answer(function(req, d) return req:sub(1, 16) .. u32(3) .. d .. u32(0) end)
    assert.matches("did not match expected protocol", r.err, 1, true)
    -- footer bits
    local function footer(v) return function(req, d) return req .. d .. u32(v) end end
    assert.matches("FPGA register bus timeout detected in hardware", answer(footer(0x100)).err, 1, true)
    assert.matches("FPGA register bus lockup detected in hardware. Power cycle required.",
                   answer(footer(0x2000)).err, 1, true)
    assert.matches("lockup", answer(footer(0x2100)).err, 1, true)
    assert.matches("Non zero status message returned on fpga register bus in hardware: 0x2",
                   answer(footer(0x2)).err, 1, true)
    -- a short error response: the footer's meaning wins
    assert.matches("in hardware: 0x400", answer(function(req) return req .. u32(0x400) end).err, 1, true)
    r = answer(function(req) return req .. u32(0) end)
    assert.matches("header size mismatch. id=" .. r.id .. ", frameSize=24, expectedSize=32, " ..
                   "tranSize=8, headerSize=8", r.err, 1, true)
    assert.matches("header size mismatch", answer(function(req, d)
      return req .. d .. "XXXX" .. u32(0) end).err, 1, true)
    -- a 23-byte frame is dropped: the transaction times out
    m:setTimeout(100000)
    r = answer(function(req) return (req .. u32(0)):sub(1, 23) end)
    assert.matches("Timeout waiting for register transaction", r.err, 1, true)
    local c = srp:counters()
    assert.are.equal(1, c.short)
    assert.are.equal(9, c.errors)
    assert.are.equal(1, srp:pending())   -- the dropped one, until swept
  end)

  it("matches responses by id in any order and drops unknown ones", function()
    local m, srp = mem.Master(), srpmod.SrpV3()
    local cap, got = collector("data")
    local src = sl.stream.Master()
    _ = m >> srp
    _ = srp >> cap
    _ = src >> srp
    m:setTimeout(20e6)
    local a = request(m, 0x10, 4, mem.Read)
    local b = request(m, 0x20, 4, mem.Read)
    assert.is_true(wait_for(function() return #got == 2 end))
    assert.are.equal(2, srp:pending())
    send(src, got[2] .. "bbbb" .. u32(0))
    send(src, got[1] .. "aaaa" .. u32(0))
    assert.is_true(wait_for(function() return a.done and b.done end))
    assert.are.equal("aaaa", a.data)
    assert.are.equal("bbbb", b.data)
    -- the same response again, and one with an id nobody asked for
    send(src, got[1] .. "aaaa" .. u32(0))
    send(src, got[1]:sub(1, 4) .. u32(0x7FFFFFF0) .. got[1]:sub(9) .. "zzzz" .. u32(0))
    -- and a frame with its error byte set
    send(src, got[1] .. "aaaa" .. u32(0), 1)
    assert.is_true(wait_for(function()
      local c = srp:counters()
      return c.unknown == 2 and c.drops == 3
    end))
    assert.are.equal(0, srp:pending())
  end)
end)

describe("sl.srp.SrpV3Emulation", function()
  it("answers the 6.1 requests with the 6.1 responses", function()
    local emu = srpmod.SrpV3Emulation()
    local src = sl.stream.Master()
    local cap, got = collector("data")
    _ = src >> emu
    _ = emu >> cap
    send(src, unhex("03 01 00 0A  01 00 00 00  80 67 45 23  01 00 00 00  07 00 00 00  11 22 33 44  55 66 77 88"))
    send(src, unhex("03 00 00 0A  02 00 00 00  80 67 45 23  01 00 00 00  07 00 00 00"))
    assert.is_true(wait_for(function() return #got == 2 end))
    assert.are.equal(unhex("03 01 00 0A  01 00 00 00  80 67 45 23  01 00 00 00  07 00 00 00  " ..
                         "11 22 33 44  55 66 77 88  00 00 00 00"), got[1])
    assert.are.equal(unhex("03 00 00 0A  02 00 00 00  80 67 45 23  01 00 00 00  07 00 00 00  " ..
                         "11 22 33 44  55 66 77 88  00 00 00 00"), got[2])
    -- unwritten memory reads 0; W0 echoed verbatim; trailing bytes ignored
    send(src, unhex("03 40 3C FF  03 00 00 00  00 20 00 00  00 00 00 00  03 00 00 00  AA BB CC DD"))
    -- a post: stored, no response
    send(src, unhex("03 02 00 0A  04 00 00 00  02 10 00 00  00 00 00 00  03 00 00 00  01 02 03 04"))
    send(src, unhex("03 00 00 0A  05 00 00 00  02 10 00 00  00 00 00 00  03 00 00 00"))
    assert.is_true(wait_for(function() return #got == 4 end))
    assert.are.equal(unhex("03 40 3C FF  03 00 00 00  00 20 00 00  00 00 00 00  03 00 00 00  " ..
                         "00 00 00 00  00 00 00 00"), got[3])
    assert.are.equal(unhex("03 00 00 0A  05 00 00 00  02 10 00 00  00 00 00 00  03 00 00 00  " ..
                         "01 02 03 04  00 00 00 00"), got[4])
    -- dropped without a response: opcode 3, version 2, size 6, size 4100,
    -- a write with too little data, a 19-byte frame, an errored frame
    local drops0 = emu:counters().drops
    send(src, unhex("03 03 00 0A  06 00 00 00  00 00 00 00  00 00 00 00  03 00 00 00"))
    send(src, unhex("02 00 00 0A  07 00 00 00  00 00 00 00  00 00 00 00  03 00 00 00"))
    send(src, unhex("03 00 00 0A  08 00 00 00  00 00 00 00  00 00 00 00  05 00 00 00"))
    send(src, unhex("03 00 00 0A  09 00 00 00  00 00 00 00  00 00 00 00  03 10 00 00"))
    send(src, unhex("03 01 00 0A  0A 00 00 00  00 00 00 00  00 00 00 00  07 00 00 00  11 22 33 44"))
    send(src, unhex("03 00 00 0A  0B 00 00 00  00 00 00 00  00 00 00 00  03 00 00"))
    send(src, unhex("03 00 00 0A  0C 00 00 00  00 00 00 00  00 00 00 00  03 00 00 00"), 1)
    assert.is_true(wait_for(function() return emu:counters().drops == drops0 + 7 end))
    sl.sleep(0.02)
    assert.are.equal(4, #got)
    emu:stop()
  end)
end)

describe("SrpV3 with SrpV3Emulation", function()
  it("writes, reads and verifies at several sizes and alignments", function()
    local m, srp, emu = mem.Master(), srpmod.SrpV3(), srpmod.SrpV3Emulation()
    _ = m >> srp
    _ = srp == emu
    m:setTimeout(20e6)
    m:writeU32(0x100, 0xDEADBEEF)
    assert.are.equal(0xDEADBEEF, m:readU32(0x100))
    assert.are.equal(0, m:readU32(0x5000))
    m:writeU64(0x108, 0x0102030405060708)
    assert.are.equal(0x0102030405060708, m:readU64(0x108))
    local seed = 0
    for _, size in ipairs{4, 8, 12, 64, 256, 1020, 4096} do
      for _, addr in ipairs{0x0, 0x4, 0xFFC, 0x1FF8, 0x100000004} do
        seed = seed + 1
        local d = pattern(size, seed)
        m:write(addr, d)
        assert.are.equal(d, m:read(addr, size))
        m:verify(addr, d)
        m:post(addr, d:reverse())
        m:verify(addr, d:reverse())
      end
    end
    local ok, err = pcall(m.verify, m, 0x100, "\1\2\3\4")
    assert.is_false(ok)
    assert.matches("mismatch at byte 0", err, 1, true)
    -- through a Hub, larger transactions are split to 4096-byte requests
    local hm = mem.Master()
    _ = hm >> mem.Hub(0x20000) >> srp
    local d = pattern(3 * 4096 + 8, 99)
    hm:write(0, d)
    assert.are.equal(d, hm:read(0, #d))
    assert.are.equal(d:sub(1, 8), m:read(0x20000, 8))
    local c = srp:counters()
    assert.are.equal(0, c.drops)
    assert.are.equal(0, c.errors)
    assert.are.equal(0, srp:pending())
    emu:stop()
  end)

  -- srp >> emu >> stage >> srp: the stage does mode(bytes) -> list of frames
  local function rig(timeout)
    local m, srp, emu = mem.Master(), srpmod.SrpV3(), srpmod.SrpV3Emulation()
    local out = sl.stream.Master()
    local st = {mode = function(b) return {b} end, held = {}}
    local stage = sl.stream.Slave{acceptFrame = function(_, f)
      for _, b in ipairs(st.mode(f:read())) do send(out, b, st.err) end
    end}
    _ = m >> srp
    _ = srp >> emu
    _ = emu >> stage
    _ = out >> srp
    m:setTimeout(timeout)
    st.m, st.srp, st.emu, st.out = m, srp, emu, out
    return st
  end

  local function fails(st, fn, ...)
    local t0 = sl.now()
    local ok, err = pcall(fn, st.m, ...)
    assert.is_false(ok)
    assert.is_true(sl.now() - t0 < 30)          -- a bound on a hang
    return err
  end

  it("turns corrupted responses into clear transaction errors", function()
    local st = rig(20)                 -- every step gets a response
    st.m:write(0x40, "abcdefgh")
    assert.are.equal("abcdefgh", st.m:read(0x40, 8))
    -- footer corrupted
    st.mode = function(b) return {b:sub(1, -5) .. u32(0x100)} end
    assert.matches("read: 8 bytes at 0x00000040: FPGA register bus timeout detected in hardware",
                   fails(st, st.m.read, 0x40, 8), 1, true)
    st.mode = function(b) return {b:sub(1, -5) .. u32(0x2000)} end
    assert.matches("lockup", fails(st, st.m.write, 0x40, "abcd"), 1, true)
    -- cut short to header + footer
    st.mode = function(b) return {b:sub(1, 20) .. u32(0)} end
    assert.matches("header size mismatch", fails(st, st.m.read, 0x40, 8), 1, true)
    -- the address echoed wrongly
    st.mode = function(b) return {b:sub(1, 8) .. u32(0x44) .. b:sub(13)} end
    assert.matches("did not match expected protocol", fails(st, st.m.verify, 0x40, "abcd"), 1, true)
    -- data corrupted: a verify sees it
    st.mode = function(b) return {b:sub(1, 20) .. "X" .. b:sub(22)} end
    assert.matches("mismatch at byte 0", fails(st, st.m.verify, 0x40, "abcd"), 1, true)
    st.mode = function(b) return {b} end
    assert.are.equal("abcdefgh", st.m:read(0x40, 8))
    assert.are.equal(4, st.srp:counters().errors)   -- the corrupted data is verify's to see
    st.emu:stop()
  end)

  it("ignores short, duplicated, unknown, errored and late responses", function()
    -- a step that gets its response waits up to 20 s; one whose response
    -- is dropped times out after 0.1 s, and a dropped response may still be
    -- on its way then: its count is waited for
    local st = rig(20)
    local function counted(name, n)
      return wait_for(function() return st.srp:counters()[name] == n end)
    end
    st.m:writeU32(0x80, 7)
    -- duplicated: the first completes, the copy is dropped as unknown
    st.mode = function(b) return {b, b} end
    assert.are.equal(7, st.m:readU32(0x80))
    assert.is_true(counted("unknown", 1))
    st.m:setTimeout(100000)
    -- short: dropped, the transaction times out
    st.mode = function(b) return {b:sub(1, 10)} end
    assert.matches("Timeout waiting for register transaction", fails(st, st.m.readU32, 0x80), 1, true)
    assert.is_true(counted("short", 1))
    -- unknown id
    st.mode = function(b) return {b:sub(1, 4) .. u32(0x7FFFFF00) .. b:sub(9)} end
    assert.matches("Timeout waiting for register transaction", fails(st, st.m.readU32, 0x80), 1, true)
    assert.is_true(counted("unknown", 2))
    -- errored frame
    st.mode = function(b) return {b} end
    st.err = 3
    assert.matches("Timeout waiting for register transaction", fails(st, st.m.readU32, 0x80), 1, true)
    assert.is_true(counted("short", 2))
    st.err = nil
    -- dropped, then delivered after the timeout: late
    st.mode = function(b) st.held[#st.held + 1] = b return {} end
    assert.matches("Timeout waiting for register transaction", fails(st, st.m.readU32, 0x80), 1, true)
    assert.is_true(wait_for(function() return #st.held == 1 end))
    send(st.out, st.held[1])
    assert.is_true(counted("late", 1))
    -- still works afterwards
    st.m:setTimeout(20e6)
    st.mode = function(b) return {b} end
    assert.are.equal(7, st.m:readU32(0x80))
    st.emu:stop()
  end)

  it("fails what is in flight when stopped", function()
    local st = rig(5)
    st.mode = function() return {} end
    local r = request(st.m, 0x0, 4, mem.Read)
    assert.is_true(wait_for(function() return st.srp:pending() == 1 end))
    st.srp:stop()
    assert.is_true(wait_for(function() return r.done end, 20))
    assert.matches("SrpV3: stopped", r.err, 1, true)
    local ok, err = pcall(st.m.readU32, st.m, 0)
    assert.is_false(ok)
    assert.matches("SrpV3: stopped", err, 1, true)
    st.emu:stop()
  end)
end)
