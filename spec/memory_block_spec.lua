-- sl.memory.Block: a register block (shadow, bit fields, one transaction
-- at a time, verify) and sl.memory.bitCopy.
local sl = require "streamlua"
local mem = sl.memory

local FF8 = string.rep("\255", 8)

-- A block at `off` of a device Hub at 0x1000 over `below` (an Emulate,
-- min 4, by default), and a master straight onto `direct` (or `below`).
local function setup(off, size, below, direct)
  below = below or mem.Emulate(4, 4096)
  local hub = mem.Hub(0x1000)
  _ = hub >> below
  local blk = mem.Block(off, size)
  _ = blk >> hub
  local m = mem.Master()
  _ = m >> (direct or below)
  return blk, m, hub, below
end

describe("sl.memory.Block", function()
  it("is a memory master with a zeroed shadow of its size", function()
    local blk, _, hub = setup(0x8, 12)
    assert.are.equal("memory.Block", blk:kind())
    assert.are.equal(0x8, blk:offset())
    assert.are.equal(12, blk:size())
    assert.are.equal(string.rep("\0", 12), blk:shadow())
    assert.is_true(rawequal(hub, blk:getSlave()))
    assert.are.equal(4, blk:reqMinAccess())
    blk:setTimeout(250000)   -- microseconds, as Rogue's
    assert.are.equal(250000, blk:getTimeout())
    assert.are.equal(0, blk:read(0, 4):byte(1))   -- the master's own calls work
  end)

  it("packs integer fields as the reference's bus bytes", function()
    local blk = mem.Block(0, 4)
    blk:setUInt(4, 3, 2)         -- enum bits 6:4
    blk:setUInt(12, 8, -3)       -- Int8 at bits 19:12, two's complement
    assert.are.equal("\x20\xd0\x0f\x00", blk:shadow())
    assert.are.equal(2, blk:getUInt(4, 3))
    assert.are.equal(-3, blk:getInt(12, 8))
    assert.are.equal(0xfd, blk:getUInt(12, 8))
    blk:setShadow(0, "\xff\x0f\x00\x00")
    assert.are.equal(-1, blk:getInt(0, 12))
    assert.are.equal(0xfff, blk:getUInt(0, 12))
    local b8 = mem.Block(0, 8)
    b8:setUInt(8, 48, 0xABCDEF012345)   -- spans two words
    assert.are.equal("\x00\x45\x23\x01\xef\xcd\xab\x00", b8:shadow())
    assert.are.equal(0xABCDEF012345, b8:getUInt(8, 48))
    b8:setUInt(0, 64, -2)
    assert.are.equal(-2, b8:getUInt(0, 64))   -- 64 bits wrap into Lua's integer
    assert.are.equal(-2, b8:getInt(0, 64))
    b8:setUInt(56, 8, 0x1FE)                  -- truncated to bitSize
    b8:setUInt(0, 8, 0x1FF)
    assert.are.equal(0xFF, b8:getUInt(0, 8))
    assert.are.equal(0xFF, b8:getUInt(8, 8))
    assert.are.equal(0xFE, b8:getUInt(0, 64) >> 56)
  end)

  it("sets and gets fields wider than 64 bits as strings", function()
    local blk = mem.Block(0x10, 16)
    local v = "\x34\x12" .. string.rep("\0", 13) .. "\x80"   -- 2^127 + 0x1234
    blk:setBits(0, 128, v)
    assert.are.equal(v, blk:shadow())
    assert.are.equal(v, blk:getBits(0, 128))
    local b8 = mem.Block(0, 8)
    b8:setBits(8, 48, "\x45\x23\x01\xef\xcd\xab")
    assert.are.equal("\x00\x45\x23\x01\xef\xcd\xab\x00", b8:shadow())
    assert.are.equal("\x45\x23\x01\xef\xcd\xab", b8:getBits(8, 48))
    assert.are.equal("\x04", b8:getBits(12, 4))   -- ceil(bitSize/8) bytes
    -- from a bit offset of the source
    b8:setShadow(0, string.rep("\0", 8))
    b8:setBits(3, 12, "\xf0\xff\x0f", 4)
    assert.are.equal(0xfff, b8:getUInt(3, 12))
    assert.are.equal(0, b8:getUInt(0, 3))
    assert.are.equal(0, b8:getUInt(15, 8))
  end)

  it("reads and writes shadow bytes", function()
    local blk = mem.Block(0, 8)
    blk:setShadow(2, "abc")
    assert.are.equal("\0\0abc\0\0\0", blk:shadow())
    assert.are.equal("abc\0\0\0", blk:shadow(2))
    assert.are.equal("bc", blk:shadow(3, 2))
    assert.are.equal("", blk:shadow(8, 0))
  end)

  it("writes the shadow's bytes and reads into the shadow", function()
    local blk, m = setup(0x8, 8)
    blk:setUInt(0, 32, 0x12345678)
    blk:start(mem.Write, 0, 4)
    assert.is_nil(blk:wait())
    assert.are.equal(0x12345678, m:readU32(0x1008))
    assert.are.equal(0, m:readU32(0x100c))
    blk:setUInt(32, 32, 0xCAFE)
    blk:start(mem.Post, 4, 4)
    assert.is_nil(blk:wait())
    assert.are.equal(0xCAFE, m:readU32(0x100c))
    m:writeU32(0x100c, 0xdeadbeef)
    m:writeU32(0x1008, 0x01020304)
    blk:start(mem.Read, 4, 4)
    assert.is_nil(blk:wait())
    assert.are.equal(0xdeadbeef, blk:getUInt(32, 32))
    assert.are.equal(0x12345678, blk:getUInt(0, 32))   -- outside the range: kept
    assert.is_nil(blk:wait())   -- nothing outstanding
  end)

  it("verifies the last write's range against a mask", function()
    local blk, m = setup(0x8, 8)
    assert.are.same({0, 0}, {blk:verifyRange()})
    blk:setShadow(0, "\x10\x20\x30\x40\x50\x60\x70\x80")
    blk:start(mem.Write, 4, 4)
    assert.is_nil(blk:wait())
    assert.are.same({4, 4}, {blk:verifyRange()})
    blk:start(mem.Verify, blk:verifyRange())
    assert.is_nil(blk:wait())
    assert.is_nil(blk:verifyCheck(FF8))
    m:writeU8(0x100d, 0x61)
    blk:setShadow(0, string.rep("\0", 8))   -- the expected data is the write's
    blk:start(mem.Verify, 4, 4)
    assert.is_nil(blk:wait())
    assert.are.same({5, 0x61, 0x60, 0xff}, {blk:verifyCheck(FF8)})
    assert.is_nil(blk:verifyCheck("\255\255\255\255\255\254\255\255"))
    assert.are.equal(string.rep("\0", 8), blk:shadow())   -- verify data stays out
  end)

  it("reports a failed transaction's error text", function()
    local blk = mem.Block(0, 4)
    blk:start(mem.Read, 0, 4)
    assert.are.equal("Unsupported transaction using unconnected memory bus", blk:wait())
    assert.is_nil(blk:wait())
    _ = blk >> mem.Slave{doTransaction = function(_, t) t:error("boom") end}
    blk:start(mem.Write, 0, 4)
    assert.are.equal("boom", blk:wait())
  end)

  it("start drops the error of a transaction nobody waited for", function()
    local fail = true
    local blk = mem.Block(0, 4)
    _ = blk >> mem.Slave{doTransaction = function(_, t)
      if fail then t:error("first") else t:done() end
    end}
    blk:start(mem.Write, 0, 4)
    fail = false
    blk:start(mem.Verify, 0, 4)
    assert.is_nil(blk:wait())
  end)

  it("serves the loop while a Lua slave completes later", function()
    local blk = mem.Block(0x20, 4)
    local seen = {}
    _ = blk >> mem.Slave{doTransaction = function(_, t)
      seen[#seen + 1] = t:size()
      local data = #seen == 2 and "WXYZ" or "wxyz"
      sl.after(0.02, function()
        t:setData(data:sub(1, t:size()))
        t:done()
      end)
    end}
    blk:start(mem.Read, 0, 4)
    assert.is_nil(blk:wait())
    assert.are.equal("wxyz", blk:shadow())
    -- a start first waits for the outstanding one, which lands
    blk:start(mem.Read, 0, 4)
    blk:setShadow(0, "....")
    blk:start(mem.Read, 2, 2)
    assert.are.same({4, 4, 2}, seen)
    assert.are.equal("WXYZ", blk:shadow())
    assert.is_nil(blk:wait())
    assert.are.equal("WXwx", blk:shadow())
  end)

  -- A Lua slave over an 8-byte memory that answers from a timer (or at
  -- once, or with an error from `fail`), logging every transaction.
  local function laterSlave(fail)
    local memory, log = {string.rep("\0", 8)}, {}
    local slave = mem.Slave{doTransaction = function(_, t)
      local a, n, ty = t:address(), t:size(), t:type()
      log[#log + 1] = {ty, a, n}
      sl.after(0, function()
        local e = fail and fail(ty, a)
        if e then return t:error(e) end
        local m = memory[1]
        if ty == mem.Write or ty == mem.Post then
          m = m:sub(1, a) .. t:getData() .. m:sub(a + n + 1)
          memory[1] = m
        else
          t:setData(m:sub(a + 1, a + n))
        end
        t:done()
      end)
    end}
    return slave, memory, log
  end

  it("readUInt and writeUInt issue the calls they stand for in one", function()
    local blk = mem.Block(0, 8)
    local slave, memory, log = laterSlave()
    _ = blk >> slave
    memory[1] = "\1\2\3\4\5\6\7\8"
    assert.are.equal(0x0605, blk:readUInt(4, 4, 32, 16))
    assert.are.same({{mem.Read, 4, 4}}, log)
    assert.are.equal("\0\0\0\0\5\6\7\8", blk:shadow())
    assert.is_nil(blk:wait())   -- taken off already
    -- a Write without a mask; with one, its Verify of the same bytes
    assert.are.equal(0, select("#", blk:writeUInt(8, 8, 0x1AB, 0, 4)))
    assert.are.equal("\0\171\0\0\5\6\7\8", memory[1])
    assert.are.same({0, 4}, {blk:verifyRange()})
    assert.are.equal(0, select("#", blk:writeUInt(0, 8, 0x11, 0, 2, FF8)))
    assert.are.same({{mem.Read, 4, 4}, {mem.Write, 0, 4}, {mem.Write, 0, 2},
                     {mem.Verify, 0, 2}}, log)
    -- a verify mismatch as verifyCheck gives it
    local stuck = mem.Block(0, 4)
    local hold = mem.Slave{doTransaction = function(_, t)
      if t:type() == mem.Verify then t:setData("\0\0\0\0") end
      t:done()
    end}
    _ = stuck >> hold
    assert.are.same({1, 0, 0x42, 0xff},
                    {stuck:writeUInt(8, 8, 0x42, 0, 4, string.rep("\255", 4))})
  end)

  it("readUInt and writeUInt give the error of the transaction waited for", function()
    local blk = mem.Block(0, 8)
    local slave, _, log = laterSlave(function(ty)
      return ty == mem.Read and "no read" or ty == mem.Write and "no write" or nil
    end)
    _ = blk >> slave
    blk:setShadow(0, "abcdefgh")
    assert.are.same({nil, "no read"}, {blk:readUInt(0, 4, 0, 8)})
    assert.are.equal("abcdefgh", blk:shadow())   -- a failed Read lands nothing
    assert.are.equal("no write", blk:writeUInt(0, 8, 1, 0, 4))
    -- the Verify's start drops the Write's error; the Verify's mismatch
    assert.are.same({0, 0, 1, 0xff}, {blk:writeUInt(0, 8, 1, 0, 4, FF8)})
    assert.are.equal(4, #log)   -- Read, Write, Write, Verify
    local ok, e = pcall(function() blk:writeUInt(0, 8, 1, 0, 4, "\255") end)
    assert.is_false(ok)
    assert.matches("'writeUInt'.*mask of 8 bytes", e)
    ok, e = pcall(function() blk:readUInt(0, 9, 0, 8) end)
    assert.is_false(ok)
    assert.matches("'readUInt'.*out of range", e)
    ok, e = pcall(function() blk:readUInt(0, 4, 60, 8) end)
    assert.is_false(ok)
    assert.matches("'readUInt'.*beyond the shadow's 64 bits", e)
  end)

  it("startBlocks and waitBlocks start every block, then wait in order", function()
    local slave, memory, log = laterSlave()
    memory[1] = "ABCDEFGH"
    local a, b, c = mem.Block(0, 4), mem.Block(4, 2), mem.Block(6, 2)
    for _, x in ipairs{a, b, c} do _ = x >> slave end
    local list = {a, b, c}
    sl.memory.startBlocks(list, mem.Read)
    assert.are.same({{mem.Read, 0, 4}, {mem.Read, 4, 2}, {mem.Read, 6, 2}}, log)
    assert.are.same({}, {sl.memory.waitBlocks(list)})   -- all three landed
    assert.are.same({"ABCD", "EF", "GH"}, {a:shadow(), b:shadow(), c:shadow()})
    -- count; a Verify goes over each block's verify range
    a:setShadow(0, "abcd")
    a:start(mem.Write, 1, 2)
    b:start(mem.Write, 0, 2)
    sl.memory.startBlocks(list, mem.Verify, 2)
    assert.are.same({mem.Verify, 1, 2}, log[#log - 1])
    assert.are.same({mem.Verify, 4, 2}, log[#log])
    memory[1] = "aXcdEFGH"
    assert.are.same({1, 1, 0x58, 0x62, 0xff},
                    {sl.memory.waitBlocks(list, {FF8:sub(1, 4), FF8:sub(1, 2)}, 2)})
    assert.is_nil(b:wait())   -- after the failure: not waited for
  end)

  it("waitBlocks stops at the first failed block", function()
    local slave = laterSlave(function(_, a) return a == 2 and "second" or nil end)
    local list = {}
    for i = 1, 3 do list[i] = mem.Block(2 * (i - 1), 2); _ = list[i] >> slave end
    sl.memory.startBlocks(list, mem.Read)
    assert.are.same({2, "second"}, {sl.memory.waitBlocks(list)})
    assert.is_nil(list[3]:wait())   -- the third one, still outstanding, goes through
    local ok, e = pcall(sl.memory.startBlocks, {list[1], 5}, mem.Read)
    assert.is_false(ok)
    assert.matches("startBlocks: item 2 is not a streamlua.memory.Block", e)
    ok, e = pcall(sl.memory.startBlocks, list, 9)
    assert.is_false(ok)
    assert.matches("transaction type", e)
    ok, e = pcall(sl.memory.startBlocks, list, mem.Verify)   -- no Write yet
    assert.is_false(ok)
    assert.matches("startBlocks: item 1 has no Write to verify", e)
    ok, e = pcall(sl.memory.waitBlocks, list, nil, 4)
    assert.is_false(ok)
    assert.matches("out of range", e)
  end)

  it("times out when the slave never answers", function()
    local held
    local blk = mem.Block(0, 4)
    _ = blk >> mem.Slave{doTransaction = function(_, t) held = t end}
    blk:setTimeout(50000)
    blk:setShadow(0, "keep")
    blk:start(mem.Read, 0, 4)
    assert.matches("^Timeout waiting for register transaction %d+ message response%.$", blk:wait())
    assert.is_true(held:expired())
    held:setData("late")
    held:done()
    assert.are.equal("keep", blk:shadow())   -- a late answer lands nowhere
  end)

  it("can be dropped or stopped with a transaction outstanding", function()
    local held
    local blk = mem.Block(0, 4)
    _ = blk >> mem.Slave{doTransaction = function(_, t) held = t end}
    blk:start(mem.Read, 0, 4)
    blk:stop()
    assert.is_true(held:expired())
    assert.are.equal("stopped", blk:wait())
    blk:start(mem.Read, 0, 4)
    blk = nil
    collectgarbage()
    collectgarbage()
    assert.is_true(held:expired())
    held:done()   -- the block is gone: nothing lands
  end)

  -- exercise(blk, m): transactions that complete on another thread while
  -- this one works other bits of the shadow
  local function exercise(blk, m)
    blk:setTimeout(20e6)
    for i = 1, 200 do
      local low = (i % 2) * 4
      local other = (4 - low) * 8
      m:writeU32(0x1008 + low, i)
      blk:start(mem.Read, low, 4)
      blk:setUInt(other + 3, 20, i)          -- while the read is out
      assert.are.equal(i, blk:getUInt(other + 3, 20))
      assert.is_nil(blk:wait())
      assert.are.equal(i, blk:getUInt(low * 8, 32))
    end
    blk:setUInt(0, 64, 0x1122334455667788)
    blk:start(mem.Write, 0, 8)
    blk:start(mem.Verify, blk:verifyRange())
    assert.is_nil(blk:wait())
    assert.is_nil(blk:verifyCheck(FF8))
    assert.are.equal(0x55667788, m:readU32(0x1008))
  end

  it("takes completions from the memory TCP bridge's thread", function()
    local emu = mem.Emulate(4, 4096)
    local srv = mem.TcpServer("127.0.0.1", 0)
    local cli = mem.TcpClient("127.0.0.1", srv:getPort())
    _ = srv >> emu
    assert.is_true(cli:waitReady(20, 0.1))
    local blk, m = setup(0x8, 8, cli, emu)
    exercise(blk, m)
    -- the bridge stops with a read outstanding: the block's wait ends
    blk:setTimeout(500000)
    srv:stop()
    blk:start(mem.Read, 0, 4)
    cli:stop()
    assert.is_string(blk:wait())
    assert.is_nil(blk:wait())
  end)

  it("takes completions from SrpV3 behind Fifo threads", function()
    local srp, emu = sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
    local down, up = sl.stream.Fifo(0), sl.stream.Fifo(0)
    _ = srp >> down >> emu
    _ = emu >> up >> srp
    local blk, m = setup(0x8, 8, srp)
    m:setTimeout(20e6)
    exercise(blk, m)
    for _, n in ipairs{down, up, emu, srp} do n:stop() end   -- the Fifos' threads end
  end)

  it("many blocks behind SrpV3 and Fifo threads: one start, one wait", function()
    local srp, emu = sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
    local down, up = sl.stream.Fifo(0), sl.stream.Fifo(0)
    _ = srp >> down >> emu
    _ = emu >> up >> srp
    local hub = mem.Hub(0x1000)
    _ = hub >> srp
    local m = mem.Master()
    _ = m >> srp
    m:setTimeout(20e6)
    local list = {}
    for i = 1, 16 do
      list[i] = mem.Block(4 * (i - 1), 4)
      list[i]:setTimeout(20e6)
      _ = list[i] >> hub
    end
    for round = 1, 20 do
      for i = 1, 16 do list[i]:setUInt(0, 32, round * 100 + i) end
      mem.startBlocks(list, mem.Write)
      mem.startBlocks(list, mem.Verify)
      local masks = {}
      for i = 1, 16 do masks[i] = "\255\255\255\255" end
      assert.are.same({}, {mem.waitBlocks(list, masks)})
      for i = 1, 16 do list[i]:setUInt(0, 32, 0) end
      mem.startBlocks(list, mem.Read)
      assert.are.same({}, {mem.waitBlocks(list)})
      for i = 1, 16 do assert.are.equal(round * 100 + i, list[i]:getUInt(0, 32)) end
    end
    assert.are.equal(2016, m:readU32(0x103c))
    for _, n in ipairs{down, up, emu, srp} do n:stop() end   -- the Fifos' threads end
  end)

  it("a wait gives up on Ctrl-C and the block goes on", function()
    local script, outf = os.tmpname(), os.tmpname()
    spit(script, [[
      local mem = sl.memory
      local blk = mem.Block(0, 4)
      _ = blk >> mem.Slave{doTransaction = function() print("waiting") io.stdout:flush() end}
      blk:setTimeout(60e6)
      blk:start(mem.Read, 0, 4)
      print(pcall(blk.wait, blk))
      print(blk:wait())
      _ = blk >> mem.Emulate(4, 4)
      blk:start(mem.Read, 0, 4)
      print(blk:wait(), "again")
    ]])
    -- SIGINT once it waits; killed (rc 99) if still alive 20 s after
    local p = assert(io.popen(string.format([[
      %s %s >%s 2>&1 </dev/null &
      pid=$!
      i=0; until grep -q waiting %s || [ $i -ge 2000 ]; do sleep 0.01; i=$((i+1)); done
      kill -INT $pid
      i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done
      if kill -0 $pid 2>/dev/null; then kill -9 $pid; wait $pid; echo 99
      else wait $pid; echo $?; fi]],
      shell_quote(STREAMLUA_BIN), shell_quote(script), shell_quote(outf), shell_quote(outf))))
    local rc = tonumber(p:read("a"))
    p:close()
    local out = slurp(outf)
    os.remove(script)
    os.remove(outf)
    assert.are.equal(0, rc)
    assert.are.equal("waiting\nfalse\tinterrupted\n\nnil\tagain\n", out)
  end)

  it("checks its arguments, naming the function", function()
    local blk = mem.Block(0, 8)
    local function err(pat, f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      assert.matches(pat, e)
    end
    err("size", mem.Block, 0, 0)
    err("16 MiB", mem.Block, 0, 16 * 1024 * 1024 + 1)
    err("offset", mem.Block, -1, 4)
    err("'getUInt'.*beyond the shadow's 64 bits", function() return blk:getUInt(60, 8) end)
    err("'setUInt'.*out of range", function() blk:setUInt(0, 65, 1) end)
    err("'setUInt'.*out of range", function() blk:setUInt(0, 0, 1) end)
    err("'getInt'.*out of range", function() return blk:getInt(64, 1) end)
    err("'setUInt'", function() blk:setUInt(0, 8, "x") end)
    err("'getBits'.*beyond", function() return blk:getBits(8, 57) end)
    err("'setBits'.*beyond the string's 8 bits", function() blk:setBits(0, 9, "x") end)
    err("'setBits'.*beyond the string's", function() blk:setBits(0, 8, "x", 1) end)
    err("'shadow'.*out of range", function() return blk:shadow(9) end)
    err("'shadow'.*out of range", function() return blk:shadow(4, 5) end)
    err("'setShadow'.*beyond", function() blk:setShadow(6, "abc") end)
    err("'start'.*transaction type", function() blk:start(9, 0, 4) end)
    err("'start'.*out of range", function() blk:start(mem.Read, 0, 9) end)
    err("'start'.*out of range", function() blk:start(mem.Read, 4, 0) end)
    err("'verifyCheck'.*mask of 8 bytes", function() blk:verifyCheck("\255") end)
    err("Block expected", function() blk.getUInt(mem.Master(), 0, 8) end)
  end)
end)

describe("sl.memory.bitCopy", function()
  it("copies bits into a new string, growing it with zeros", function()
    assert.are.equal("\xf0\x0f", mem.bitCopy("", 4, "\xff", 0, 8))
    assert.are.equal("ab", mem.bitCopy("ab", 0, "", 0, 0))
    assert.are.equal("\x01\x00\x00", mem.bitCopy("\x01", 16, "\x00", 0, 8))
    assert.are.equal("\x0f", mem.bitCopy("\x00", 0, "\xf0", 4, 4))
    assert.are.equal("\xaa\x55", mem.bitCopy("\xaa\xff", 8, "\x55", 0, 8))
  end)

  it("checks its arguments", function()
    assert.has_error(function() mem.bitCopy("", -1, "x", 0, 1) end)
    assert.has_error(function() mem.bitCopy("", 0, "x", 4, 5) end)
    assert.has_error(function() mem.bitCopy("", 0, "x", 0, -1) end)
    assert.has_error(function() mem.bitCopy({}, 0, "x", 0, 1) end)
  end)
end)
