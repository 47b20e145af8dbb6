-- Transactions that reach a Lua-defined memory slave from a C thread wait
-- in its queue, bounded in count and in bytes, for the main thread.
local sl = require "streamlua"
local helpers = require "streamlua.testing"
local testing = require "streamlua_testing"
local mem = sl.memory

local serve_until = helpers.serveUntil

-- Waits, without serving the loop, until the writer has handed every
-- transaction to the slave (20 s at most).
local function until_handed(w)
  local t0 = sl.now()
  while not w:done() and sl.now() - t0 < 20 do end
  return w:done()
end

-- What the slave's queue holds now, and what it refused so far.
local function assert_queue(s, queued, bytes, refused)
  local c = s:counters()
  assert.are.same({queued, bytes, refused}, {c.queued, c.queueBytes, c.refused})
end

local function completing()
  local s
  s = mem.Slave{seen = 0, doTransaction = function(self, t)
    self.seen = self.seen + 1
    t:done()
  end}
  return s
end

describe("a Lua memory slave fed from a C thread", function()
  it("reports its queue's limits in counters(); setMaxQueueBytes sets the byte limit", function()
    local s = completing()
    local c = s:counters()
    assert.are.equal(4 << 20, c.maxQueueBytes)
    assert.are.equal(4096, c.maxQueued)
    assert_queue(s, 0, 0, 0)
    s:setMaxQueueBytes(10000)
    assert.are.equal(10000, s:counters().maxQueueBytes)
    assert.has_error(function() s:setMaxQueueBytes(0) end,
      "bad argument #1 to 'setMaxQueueBytes' (positive number of bytes expected)")
    assert.has_error(function() s:setMaxQueueBytes("many") end)
    assert.has_error(function() s.setMaxQueueBytes(mem.Hub(0), 100) end)
    assert.are.equal(10000, s:counters().maxQueueBytes)
  end)

  it("queues transactions up to its byte limit; the rest fail at once, counted, with the reason", function()
    local s = completing()
    s:setMaxQueueBytes(10000)
    local w = testing.writes(s, 5, 3000)
    assert.is_true(until_handed(w))
    assert_queue(s, 3, 9000, 2)
    assert.is_true(serve_until(function() return w:results() ~= nil end, 20))
    local r = w:results()
    for i = 1, 3 do assert.are.equal("", r[i]) end
    for i = 4, 5 do
      assert.are.equal("memory.Slave: queue full (9000 of 10000 queue bytes taken), " ..
                       "transaction of 3000 bytes refused", r[i])
    end
    assert.are.equal(3, s.seen)
    assert_queue(s, 0, 0, 2)
  end)

  it("lets a transaction larger than the byte limit pass alone", function()
    local s = completing()
    s:setMaxQueueBytes(1000)
    local w = testing.writes(s, 2, 4000)
    assert.is_true(until_handed(w))
    assert_queue(s, 1, 4000, 1)
    assert.is_true(serve_until(function() return w:results() ~= nil end, 20))
    local r = w:results()
    assert.are.equal("", r[1])
    assert.matches("queue full (4000 of 1000 queue bytes taken)", r[2], 1, true)
    assert.are.equal(1, s:counters().refused)
  end)

  it("refuses past 4096 queued transactions however small", function()
    local s = completing()
    local w = testing.writes(s, 4098, 1)
    assert.is_true(until_handed(w))
    assert_queue(s, 4096, 4096, 2)
    assert.is_true(serve_until(function() return w:results() ~= nil end, 30))
    local r = w:results()
    assert.are.equal("", r[4096])
    assert.are.equal("memory.Slave: queue full (4096 transactions already queued), " ..
                     "transaction of 1 bytes refused", r[4097])
    assert.are.equal(4096, s.seen)
  end)
end)
