local sl = require "streamlua"

-- A frame with `size` bytes of capacity from a plain master.
local function frame(size)
  return sl.stream.Master():reqFrame(size, false)
end

describe("sl.stream.Frame", function()
  it("separates capacity, payload and available", function()
    local f = frame(100)
    assert.are.equal(100, f:getSize())
    assert.are.equal(0, f:getPayload())
    assert.are.equal(100, f:getAvailable())
    assert.are.equal(0, #f)
  end)

  it("write grows the payload to the highest byte written, never shrinks", function()
    local f = frame(16)
    f:write("abcd", 4)
    assert.are.equal(8, f:getPayload())
    f:write("xy")
    assert.are.equal(8, #f)
    assert.are.equal("xy", f:read(0, 2))    -- bytes 2..3 were never written
    assert.are.equal("abcd", f:read(4))
    assert.are.equal(8, f:getAvailable())
  end)

  it("write past the capacity fails and changes nothing", function()
    local f = frame(8)
    f:write("12345678")
    local ok, err = pcall(function() f:write("abc", 6) end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'write' %(3 bytes at offset 6 go beyond the frame's size %(8%)%)", err)
    assert.are.equal("12345678", f:read())
    assert.has_error(function() f:write("a", -1) end)
    assert.has_error(function() f:write({}) end)
  end)

  it("reads a region and refuses to read past the payload", function()
    local f = frame(10)
    f:write("0123456789")
    assert.are.equal("345", f:read(3, 3))
    assert.are.equal("789", f:read(7))
    assert.are.equal("", f:read(10))
    assert.has_error(function() f:read(8, 3) end,
      "bad argument #2 to 'read' (value 3 out of range [0, 2])")
    assert.has_error(function() f:read(11) end,
      "bad argument #1 to 'read' (value 11 out of range [0, 10])")
    assert.has_error(function() f:read(-1) end,
      "bad argument #1 to 'read' (value -1 out of range [0, 10])")
  end)

  -- (Called as methods: the frame is not counted, the offset is #1.)
  it("sizes and offsets near the integer limits are refused, not wrapped", function()
    local f = frame(10)
    f:write("0123456789")
    local huge, low = math.maxinteger, math.mininteger
    assert.has_error(function() f:read(1, huge) end,
      "bad argument #2 to 'read' (value " .. huge .. " out of range [0, 9])")
    assert.has_error(function() f:read(huge, 1) end,
      "bad argument #1 to 'read' (value " .. huge .. " out of range [0, 10])")
    assert.has_error(function() f:read(1, low) end,
      "bad argument #2 to 'read' (value " .. low .. " out of range [0, 9])")
    assert.has_error(function() f:write("ab", huge) end,
      "bad argument #2 to 'write' (value " .. huge .. " out of range [0, 10])")
    assert.has_error(function() f:write("ab", huge - 1) end)
    assert.has_error(function() f:setPayload(huge) end)
    assert.has_error(function() f:adjustPayload(low) end)
    assert.has_error(function() f:adjustPayload(huge) end)
    assert.are.equal("0123456789", f:read())
  end)

  it("setPayload, minPayload and adjustPayload follow Rogue's rules", function()
    local f = frame(32)
    f:setPayload(20)
    assert.are.equal(20, f:getPayload())
    f:minPayload(10)                       -- only grows
    assert.are.equal(20, f:getPayload())
    f:minPayload(25)
    assert.are.equal(25, f:getPayload())
    f:adjustPayload(-5)
    assert.are.equal(20, f:getPayload())
    f:adjustPayload(12)
    assert.are.equal(32, f:getPayload())
    assert.has_error(function() f:setPayload(33) end)
    assert.has_error(function() f:adjustPayload(1) end)
    assert.has_error(function() f:adjustPayload(-33) end)
    assert.has_error(function() f:minPayload(40) end)
    assert.are.equal(32, f:getPayload())   -- failures changed nothing
  end)

  it("keeps channel, error and flags with range checks", function()
    local f = frame(1)
    f:setChannel(200); f:setError(0x81); f:setFlags(0xbeef)
    assert.are.equal(200, f:getChannel())
    assert.are.equal(0x81, f:getError())
    assert.are.equal(0xbeef, f:getFlags())
    assert.has_error(function() f:setChannel(256) end)
    assert.has_error(function() f:setError(-1) end)
    assert.has_error(function() f:setFlags(0x10000) end)
    assert.has_error(function() f:setChannel("x") end)
  end)

  it("setFirstUser and setLastUser OR into the flags", function()
    local f = frame(1)
    f:setFirstUser(0x01)
    f:setFirstUser(0x02)
    assert.are.equal(0x03, f:getFirstUser())
    f:setLastUser(0x10)
    f:setLastUser(0x01)
    assert.are.equal(0x11, f:getLastUser())
    assert.are.equal(0x1103, f:getFlags())
    f:setFlags(0)
    assert.are.equal(0, f:getFirstUser())
    assert.are.equal(0, f:getLastUser())
  end)

  it("crosses buffer boundaries in a fixed-size pool", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    s:setFixedSize(4)
    _ = m >> s
    local f = m:reqFrame(10)
    assert.are.equal(12, f:getSize())     -- 3 buffers of 4
    f:write("abcdefghij")
    assert.are.equal("cdefgh", f:read(2, 6))
    assert.are.equal(10, #f)
    assert.are.equal(3, s:getAllocCount())
  end)

  it("has a lock handle that works with <close>", function()
    local f = frame(4)
    do
      local lk <close> = f:lock()
      assert.matches("held", tostring(lk))
      assert.has_error(function() f:lock() end,
        "lock: the frame is already locked by this thread")
    end
    local lk = f:lock()       -- released by <close> above, so this succeeds
    lk:unlock()
    assert.matches("released", tostring(lk))
    lk:lock()
    lk:unlock()
    lk:unlock()               -- unlocking twice is harmless
  end)

  it("has length, tostring and identity", function()
    local f = frame(8)
    f:write("abc")
    f:setChannel(2)
    assert.are.equal(3, #f)
    assert.are.equal("Frame(payload=3, size=8, channel=2, error=0, flags=0x0000)",
      tostring(f))
    assert.is_true(sl.stream.Frame.getPayload(f) == 3)
    local got
    local m = sl.stream.Master()
    _ = m >> function(g) got = g end
    m:sendFrame(f)
    assert.is_true(rawequal(got, f))       -- a Lua sender's own box
    assert.is_true(got == f)
    assert.is_false(got == frame(8))
  end)

  it("a size-0 frame has nothing to read or write", function()
    local f = frame(0)
    assert.are.equal(0, f:getSize())
    assert.are.equal("", f:read())
    assert.has_error(function() f:write("a") end)
    f:write("")                            -- zero bytes at 0 fit
  end)

  it("rejects a non-frame", function()
    assert.has_error(function() sl.stream.Frame.getSize({}) end)
    assert.has_error(function() sl.stream.Frame.read(sl.stream.Slave()) end)
  end)
end)
