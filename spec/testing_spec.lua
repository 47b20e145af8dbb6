local sl = require "streamlua"
local testing = require "streamlua.testing"

describe("streamlua.testing", function()
  it("frame() makes a frame holding the bytes and metadata", function()
    local f = testing.frame("abc", {channel = 3, error = 1, flags = 0x0102})
    assert.are.equal("abc", f:read())
    assert.are.equal(3, f:getChannel())
    assert.are.equal(1, f:getError())
    assert.are.equal(0x0102, f:getFlags())
    assert.has_error(function() testing.frame(5) end,
      "bad argument #1 to 'frame' (string expected, got number)")
  end)

  it("harness pushes through a Lua stage and pulls what it passes on", function()
    -- a stage that upper-cases payloads and drops channel 9
    local stage = sl.stream.Slave{acceptFrame = function(self, f)
      if f:getChannel() == 9 then return end
      local out = self:reqFrame(#f)
      out:write(f:read():upper())
      out:setChannel(f:getChannel())
      self:sendFrame(out)
    end}
    local h = testing.harness(stage)
    h:push("abc", {channel = 1})
    h:push("zzz", {channel = 9})
    h:push("xyz")
    assert.are.equal(2, h:count())
    local a, b = h:pull(), h:pull()
    assert.are.equal("ABC", a:read())
    assert.are.equal(1, a:getChannel())
    assert.are.equal("XYZ", b:read())
    assert.is_nil(h:pull())
    assert.is_true(h:wait(0))
    assert.is_false(h:wait(1, 0.02))
  end)

  it("harness of a plain slave feeds it", function()
    local s = sl.stream.Slave()
    local h = testing.harness(s)
    h:push("12345")
    h:push(testing.frame("67"))
    assert.are.equal(2, s:getFrameCount())
    assert.are.equal(7, s:getByteCount())
    assert.is_nil(h:pull())
  end)

  it("serveUntil serves the loop until the condition holds, or gives up", function()
    local fired = false
    local t = sl.after(0.02, function() fired = true end)  -- runs only in the loop
    assert.is_true(testing.serveUntil(function() return fired end, 20))
    local t0 = sl.now()
    assert.is_false(testing.serveUntil(function() return false end, 0.05))
    assert.is_true(sl.now() - t0 >= 0.04)
    assert.is_true(testing.serveUntil(function() return true end))  -- at once
    t:cancel()
    assert.has_error(function() testing.serveUntil(3) end,
      "bad argument #1 to 'serveUntil' (function expected, got number)")
  end)

  it("threads counts this process's threads by name", function()
    assert.is_true(testing.threads() >= 1)
    assert.are.equal(0, testing.threads("no-such-thread"))
    collectgarbage(); collectgarbage()     -- other specs' Fifos end
    assert.is_true(testing.serveUntil(function()
      return testing.threads("sl-fifo") == 0 end, 20))
    local before = 0
    local fifo = sl.stream.Fifo(0)
    assert.is_true(testing.serveUntil(function()
      return testing.threads("sl-fifo") == before + 1 end, 20))
    fifo:stop()
    assert.is_true(testing.serveUntil(function()
      return testing.threads("sl-fifo") == before end, 20))
    assert.has_error(function() testing.threads(3) end,
      "bad argument #1 to 'threads' (string expected, got number)")
  end)

  it("harness refuses what is not a slave", function()
    assert.has_error(function() testing.harness(sl.stream.Master()) end)
    assert.has_error(function() testing.harness({}) end)
  end)
end)
