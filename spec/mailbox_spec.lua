-- Frames that reach a Lua-defined slave from a C thread go through its
-- mailbox and are handed to Lua on the main thread.
local sl = require "streamlua"
local helpers = require "streamlua.testing"
local testing = require "streamlua_testing"

local function seq(f)
  local a, b, c, d = f:read(0, 4):byte(1, 4)
  return a | b << 8 | c << 16 | d << 24
end

local serve_until = helpers.serveUntil

-- Waits, without serving the loop, until a sender waits on s's full
-- mailbox (20 s at most).
local function until_full(s)
  local t0 = sl.now()
  while s:counters().waits == 0 and sl.now() - t0 < 20 do end
  return s:counters().waits > 0
end

describe("a Lua slave fed from a C thread", function()
  it("receives every frame, in order, on the main thread", function()
    local n, bad = 0, 0
    local s = sl.stream.Slave{acceptFrame = function(self, f)
      if seq(f) ~= n or f:getChannel() ~= 7 then bad = bad + 1 end
      n = n + 1
    end}
    local src = testing.source(s, 20000, 64, 7)
    assert.is_true(serve_until(function() return n == 20000 end, 30))
    src:join()
    assert.are.equal(0, bad)
    assert.is_true(src:done())
  end)

  it("is not entered again by a wait inside its callback: order holds", function()
    -- a wait on the main thread serves the other mailboxes (the wait
    -- hook); this slave's own frames wait until its callback returns
    local got, depth, deepest = {}, 0, 0
    local w = sl.utilities.StreamWriter()     -- never opened: waits out 2 ms
    local s = sl.stream.Slave{acceptFrame = function(self, f)
      depth = depth + 1
      deepest = math.max(deepest, depth)
      local k = seq(f)
      if k % 100 == 0 then w:waitFrameCount(1, 2000) end
      got[#got + 1] = k
      depth = depth - 1
    end}
    local src = testing.source(s, 2000, 16)
    assert.is_true(until_full(s))             -- queued before the first call
    assert.is_true(serve_until(function() return #got == 2000 end, 30))
    src:join()
    assert.are.equal(1, deepest)
    local first_bad
    for i = 1, #got do
      if got[i] ~= i - 1 then first_bad = first_bad or i - 1 end
    end
    assert.is_nil(first_bad)
  end)

  it("holds frames up to its byte limit (setMaxQueueBytes), then the sender waits", function()
    local n, bad = 0, 0
    local s = sl.stream.Slave{acceptFrame = function(self, f)
      if seq(f) ~= n then bad = bad + 1 end
      n = n + 1
    end}
    assert.are.equal(4 << 20, s:counters().maxQueueBytes)
    s:setMaxQueueBytes(10000)
    assert.are.equal(10000, s:counters().maxQueueBytes)
    assert.has_error(function() s:setMaxQueueBytes(0) end,
      "bad argument #1 to 'setMaxQueueBytes' (positive number of bytes expected)")
    local src = testing.source(s, 50, 3000)
    assert.is_true(until_full(s))              -- 3 x 3000 queued, the sender waits
    local c = s:counters()
    assert.are.equal(3, c.queued)
    assert.are.equal(9000, c.queueBytes)
    assert.is_true(serve_until(function() return n == 50 end, 30))
    src:join()
    assert.are.equal(0, bad)
    assert.are.equal(0, s:counters().drops)
    assert.are.equal(0, s:counters().queueBytes)
    assert.is_nil(sl.stream.Slave().setMaxQueueBytes)   -- a counting slave has no mailbox
  end)

  it("a slow slave slows the producer and loses nothing", function()
    local n, order_ok = 0, true
    local s = sl.stream.Slave{acceptFrame = function(self, f)
      if seq(f) ~= n then order_ok = false end
      n = n + 1
    end}
    -- 5000 frames through a 1024-frame mailbox: the thread must wait
    local src = testing.source(s, 5000, 16)
    os.execute("sleep 0.1")                    -- the loop is not served here
    assert.is_false(src:done())               -- blocked on the full mailbox
    assert.are.equal(0, n)
    assert.is_true(serve_until(function() return n == 5000 end, 30))
    src:join()
    assert.is_true(order_ok)
  end)

  it("runs in bounded memory when Lua drops the frames", function()
    local n = 0
    local s = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    collectgarbage()
    local src = testing.source(s, 3000, 65536)
    local peak = 0
    assert.is_true(serve_until(function()
      peak = math.max(peak, collectgarbage("count"))
      return n == 3000
    end, 60))
    src:join()
    -- 3000 frames of 64 KiB passed through; Lua held far fewer at once
    assert.is_true(peak < 64 * 1024, "Lua heap peaked at " .. peak .. " KiB")
  end)

  it("stop() closes the mailbox and lets a blocked sender go", function()
    local n = 0
    local s = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    local src = testing.source(s, 5000, 8)
    assert.is_true(until_full(s))              -- 1024 queued, the sender waits
    assert.is_false(src:done())
    s:stop()                                   -- serves what is queued
    assert.are.equal(1024, n)
    src:join()                                 -- the sender is not stuck
    assert.is_true(src:done())
  end)

  it("survives the slave's box being collected while frames flow", function()
    local n = 0
    local src
    do
      local s = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
      src = testing.source(s, 2000, 8)         -- the source keeps s alive
    end
    collectgarbage(); collectgarbage()
    assert.is_true(serve_until(function() return n == 2000 end, 30))
    src:join()
  end)
end)

describe("the loop under a flood", function()
  it("run(seconds) ends while a thread keeps a Lua slave's mailbox full", function()
    local n = 0
    local s = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    local src = testing.source(s, 5000000, 8)
    assert.is_true(until_full(s))
    sl.run(0.05)
    -- the run ended on its timeout, long before five million frames
    assert.is_false(src:done())
    assert.is_true(n > 0)
    s:stop()                          -- lets the sender finish at once
    src:join()
  end)
end)
