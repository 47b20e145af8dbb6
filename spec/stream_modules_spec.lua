local sl = require "streamlua"
local testing = require "streamlua.testing"
local tsrc = require "streamlua_testing"

local serve_until = testing.serveUntil

-- Fifo output threads, once their count is `want` (within 20 s).
local function fifo_threads(want) return threads("sl-fifo", want) end

-- Waits, without serving the loop (so Lua slaves' mailboxes fill), until
-- cond() holds or 20 s pass.
local function spin_until(cond)
  local t0 = sl.now()
  while not cond() and sl.now() - t0 < 20 do end
  return cond()
end


-- Holds a Fifo's output thread in a Lua slave's full mailbox (the loop is
-- not served here): 1024 frames fill the mailbox, the last one blocks.
-- Returns the harness that feeds the Fifo and the count of frames that
-- reached the slave.
local function hold_output(fifo)
  local n = 0
  _ = fifo >> sl.stream.Slave{acceptFrame = function() n = n + 1 end}
  local h = testing.harness(fifo)
  for _ = 1, 1025 do
    h:push("x")
    assert.is_true(spin_until(function() return fifo:size() == 0 end))
  end
  return h, function() return n end
end

describe("sl.stream.Fifo", function()
  it("passes frames on its own thread, in order", function()
    local fifo = sl.stream.Fifo(0, 0, true)
    local sink, got = collector("frame")
    _ = fifo >> sink
    local h = testing.harness(fifo)
    for i = 1, 100 do h:push(string.pack("<I4", i)) end
    assert.is_true(serve_until(function() return #got == 100 end))
    for i = 1, 100 do assert.are.equal(i, string.unpack("<I4", got[i]:read())) end
    assert.are.equal(0, fifo:dropCnt())
    local c = fifo:counters()
    assert.are.equal(100, c.rxFrames)
    assert.are.equal(100, c.txFrames)
    assert.are.equal(400, c.txBytes)
    assert.are.equal(0, c.depth)
    assert.are.equal(0, c.maxDepth)
    local bounded = sl.stream.Fifo(100)
    assert.are.equal(100, bounded:counters().maxDepth)
    bounded:stop()
    assert.are.equal(0, fifo:getFrameCount())   -- as Rogue: no base counting
  end)

  it("noCopy passes the frame itself; copy mode makes a trimmed copy", function()
    local same = sl.stream.Fifo(10, 0, true)
    local s1, got1 = collector("frame")
    _ = same >> s1
    local f = testing.frame("abcdef", {channel = 4, error = 2, flags = 0x1234})
    same:acceptFrame(f)
    assert.is_true(serve_until(function() return #got1 == 1 end))
    assert.is_true(got1[1] == f)

    local copy = sl.stream.Fifo(10, 3, false)
    local s2, got2 = collector("frame")
    _ = copy >> s2
    copy:acceptFrame(f)
    assert.is_true(serve_until(function() return #got2 == 1 end))
    local g = got2[1]
    assert.is_false(g == f)
    assert.are.equal("abc", g:read())           -- trimmed to 3 bytes
    assert.are.equal(4, g:getChannel())
    assert.are.equal(2, g:getError())
    assert.are.equal(0x1234, g:getFlags())
    local untrimmed = sl.stream.Fifo(10, 0, false)
    local s3, got3 = collector("frame")
    _ = untrimmed >> s3
    untrimmed:acceptFrame(f)
    assert.is_true(serve_until(function() return #got3 == 1 end))
    assert.are.equal("abcdef", got3[1]:read())
  end)

  it("drops and counts what does not fit at a known depth", function()
    -- Block the output thread in a Lua slave's full mailbox (the loop is not
    -- served here), then fill the Fifo: what does not fit is dropped.
    -- Collect earlier tests' Fifos first: stopping one waits, and a wait
    -- serves every Lua slave's mailbox.
    collectgarbage(); collectgarbage()
    local fifo = sl.stream.Fifo(5, 0, true)
    local h, count = hold_output(fifo)
    sl.logging.flush()                -- no window left open by earlier lines
    sl.logging.setEmit(false)
    local mark = "fifo drops " .. tostring(fifo)
    sl.logging.log("spec.mark", "Critical", mark)
    for i = 1, 15 do h:push("y") end
    sl.logging.flush()
    sl.logging.setEmit(true)
    assert.are.equal(5, fifo:size())
    assert.are.equal(10, fifo:dropCnt())
    assert.are.equal(10, fifo:counters().drops)
    -- each drop is told at Error, the default level: the first as it happens,
    -- the alike ones after it counted; the last line has the total
    assert.are.equal(sl.logging.Error, sl.logging.getLevel())
    local told, last, after = 0, nil, false
    for _, l in ipairs(sl.logging.history(64)) do
      if l:find(mark, 1, true) then after = true end
      if after and l:match("ERROR stream%.Fifo: Frame dropped: the queue is full %(maxDepth 5;") then
        told = told + (tonumber(l:match("%(repeated (%d+) times?")) or 1)
        last = l
      end
    end
    assert.are.equal(10, told)
    assert.matches("; 10 dropped in all%)", last)
    assert.is_true(serve_until(function() return count() == 1030 end))
    fifo:clearCnt()
    assert.are.equal(0, fifo:dropCnt())
    assert.are.equal(5, fifo:maxDepth())
  end)

  it("bounds what it holds in bytes: setMaxQueueBytes, maxQueueBytes", function()
    collectgarbage(); collectgarbage()
    local fifo = sl.stream.Fifo(0, 0, true)
    assert.are.equal(8 << 20, fifo:maxQueueBytes())
    assert.are.equal(8 << 20, fifo:counters().maxQueueBytes)
    local h, count = hold_output(fifo)
    fifo:setMaxQueueBytes(10000)
    assert.are.equal(10000, fifo:maxQueueBytes())
    for i = 1, 5 do h:push(string.rep("y", 3000)) end
    assert.are.equal(3, fifo:size())             -- 1 + 3 x 3000 held
    assert.are.equal(2, fifo:dropCnt())
    local c = fifo:counters()
    assert.are.equal(9001, c.queueBytes)
    assert.are.equal(10000, c.maxQueueBytes)
    assert.is_true(serve_until(function() return count() == 1028 end))
    assert.is_true(serve_until(function() return fifo:counters().queueBytes == 0 end))
    fifo:setMaxQueueBytes(0)                     -- no byte limit
    assert.are.equal(0, fifo:maxQueueBytes())
    assert.has_error(function() fifo:setMaxQueueBytes(-1) end,
      "bad argument #1 to 'setMaxQueueBytes' (non-negative number of bytes expected)")
    fifo:stop()
  end)

  it("a noCopy Fifo's pool keeps what its queue may hold: maxQueueBytes + 2 MiB", function()
    local fifo = sl.stream.Fifo(0, 0, true)
    assert.are.equal((8 << 20) + (2 << 20), fifo:getCacheBytes())
    fifo:setMaxQueueBytes(1 << 20)
    assert.are.equal((1 << 20) + (2 << 20), fifo:getCacheBytes())
    fifo:setMaxQueueBytes(0)                     -- no byte limit: the default
    assert.are.equal(2 << 20, fifo:getCacheBytes())
    fifo:setCacheBytes(4096)                     -- set by hand: kept
    fifo:setMaxQueueBytes(8 << 20)
    assert.are.equal(4096, fifo:getCacheBytes())
    fifo:stop()
    local copying = sl.stream.Fifo(0, 0, false)
    assert.are.equal(2 << 20, copying:getCacheBytes())
    copying:stop()
  end)

  it("setWaitWhenFull: a producer thread waits for room instead of dropping", function()
    collectgarbage(); collectgarbage()
    local fifo = sl.stream.Fifo(4, 0, true)
    assert.is_false(fifo:waitWhenFull())
    fifo:setWaitWhenFull(true)
    assert.is_true(fifo:waitWhenFull())
    local got = {}
    _ = fifo >> sl.stream.Slave{acceptFrame = function(self, frame)
      got[#got + 1] = string.unpack("<I4", frame:read(0, 4))
    end}
    local src = tsrc.source(fifo, 3000, 8)
    assert.is_true(serve_until(function() return #got == 3000 end))
    src:join()
    assert.are.equal(0, fifo:dropCnt())
    for i = 1, 3000 do assert.are.equal(i - 1, got[i]) end
    assert.has_error(function() fifo:setWaitWhenFull(1) end,
      "bad argument #1 to 'setWaitWhenFull' (boolean expected, got number)")
    fifo:setWaitWhenFull(false)
    assert.is_false(fifo:waitWhenFull())
    fifo:stop()
  end)

  it("setWaitWhenFull: the Lua thread waiting for room keeps Lua slaves served", function()
    collectgarbage(); collectgarbage()
    local fifo = sl.stream.Fifo(2, 0, false)
    fifo:setWaitWhenFull(true)
    local n = 0
    _ = fifo >> sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    local h = testing.harness(fifo)
    -- far more than the Fifo and the slave's mailbox hold: the pushes wait,
    -- and the waits hand the mailbox's frames to the slave
    for i = 1, 3000 do h:push(string.pack("<I4", i)) end
    assert.is_true(serve_until(function() return n == 3000 end))
    assert.are.equal(0, fifo:dropCnt())
    fifo:stop()
  end)

  it("setWaitWhenFull: stop lets a waiting producer go, its frames counted", function()
    collectgarbage(); collectgarbage()
    local fifo = sl.stream.Fifo(2, 0, true)
    local _, count = hold_output(fifo)
    fifo:setWaitWhenFull(true)
    local src = tsrc.source(fifo, 100, 8)
    assert.is_true(spin_until(function() return fifo:size() == 2 end))
    fifo:stop()
    assert.is_true(spin_until(function() return src:done() end))
    src:join()
    -- the held frame is the slave's; the two queued and the 98 refused are drops
    assert.are.equal(100, fifo:dropCnt())
    assert.is_true(serve_until(function() return count() >= 1024 end))
  end)

  it("stop ends the thread and drops what is queued", function()
    collectgarbage(); collectgarbage()
    local before = fifo_threads(0)
    local fifo = sl.stream.Fifo(0, 0, true)
    assert.are.equal(before + 1, fifo_threads(before + 1))
    fifo:stop()
    assert.are.equal(before, fifo_threads(before))
    local h = testing.harness(fifo)
    h:push("late")
    assert.are.equal(1, fifo:dropCnt())          -- refused, and counted
  end)

  it("a thousand Fifos made and dropped leave no thread behind", function()
    collectgarbage(); collectgarbage()
    local before = fifo_threads(0)
    for _ = 1, 1000 do
      local f = sl.stream.Fifo(10, 0, true)
      _ = f >> sl.stream.Slave()
    end
    collectgarbage(); collectgarbage()
    assert.are.equal(before, fifo_threads(before))
  end)

  it("stop() does not hang while the thread is blocked on a Lua slave", function()
    local fifo = sl.stream.Fifo(0, 0, true)
    local n = 0
    local sink = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    _ = fifo >> sink
    local src = tsrc.source(fifo, 5000, 8)
    src:join()
    assert.is_true(serve_until(function() return sink:counters().rxFrames > 0 end))
    fifo:stop()                 -- the thread gives up its wait on the mailbox
    -- every frame was delivered (perhaps still in the mailbox), refused by
    -- the mailbox when the thread gave up, or dropped from the queue at stop
    assert.is_true(serve_until(function()
      return n + sink:counters().drops + fifo:dropCnt() == 5000
    end))
    assert.is_true(n >= 1)
  end)

  it("checks its arguments", function()
    assert.has_error(function() sl.stream.Fifo() end)
    assert.has_error(function() sl.stream.Fifo(-1) end,
      "bad argument #1 to 'Fifo' (value -1 out of range [0, 4294967295])")
    assert.has_error(function() sl.stream.Fifo(1, math.mininteger) end,
      "bad argument #2 to 'Fifo' (value " .. math.mininteger ..
      " out of range [0, 4294967295])")
    assert.has_error(function() sl.stream.Fifo(1, "x") end)
    assert.has_error(function() sl.stream.Fifo.size(sl.stream.Slave()) end)
  end)
end)

describe("sl.stream.Filter", function()
  local function run(filter, frames)
    local sink, got = collector("frame")
    _ = filter >> sink
    local h = testing.harness(filter)
    for _, fr in ipairs(frames) do h:push(fr[1], {channel = fr[2], error = fr[3]}) end
    local out = {}
    for i, f in ipairs(got) do out[i] = f:read() end
    return out
  end

  it("passes its channel only", function()
    local out = run(sl.stream.Filter(false, 2),
      {{"a", 1, 0}, {"b", 2, 0}, {"c", 2, 5}, {"d", 3, 0}})
    assert.are.same({"b", "c"}, out)
  end)

  it("drops errored frames when asked", function()
    local f = sl.stream.Filter(true, 2)
    local out = run(f, {{"a", 1, 0}, {"b", 2, 0}, {"c", 2, 5}, {"d", 2, 0}})
    assert.are.same({"b", "d"}, out)
    assert.are.same({txFrames = 2, drops = 2}, f:counters())
  end)

  it("passes the same frame object on", function()
    local filter = sl.stream.Filter(false, 0)
    local sink, got = collector("frame")
    _ = filter >> sink
    local f = testing.frame("x")
    filter:acceptFrame(f)
    assert.is_true(rawequal(f, got[1]) or got[1] == f)
  end)

  it("checks its arguments", function()
    assert.has_error(function() sl.stream.Filter(1, 0) end)
    assert.has_error(function() sl.stream.Filter(true, 256) end,
      "bad argument #2 to 'Filter' (channel out of range [0, 255])")
  end)
end)

describe("sl.stream.RateDrop", function()
  local function pattern(rd, n)
    local sink, got = collector("frame")
    _ = rd >> sink
    local h = testing.harness(rd)
    local passed = {}
    for i = 0, n - 1 do
      local before = #got
      h:push(tostring(i))
      if #got > before then passed[#passed + 1] = i end
    end
    return passed
  end

  it("count mode: the first passes, then one in value+1", function()
    assert.are.same({0, 3, 6, 9}, pattern(sl.stream.RateDrop(false, 2), 12))
    assert.are.same({0, 1, 2, 3}, pattern(sl.stream.RateDrop(false, 0), 4))
    assert.are.same({0, 3, 6}, pattern(sl.stream.RateDrop(false, 2.9), 9))  -- truncated
  end)

  it("period true with value 0 is count mode, every frame passes", function()
    assert.are.same({0, 1, 2}, pattern(sl.stream.RateDrop(true, 0), 3))
  end)

  it("time mode: nothing in the first period, then at most one per period", function()
    -- A pass happens inside its push: what must (not) pass is decided by
    -- the times measured around the pushes, so a late thread cannot fail it.
    local period, slack = 0.2, 0.005
    local t0 = sl.now()
    local rd = sl.stream.RateDrop(true, period)
    local sink, got = collector("frame")
    _ = rd >> sink
    local h = testing.harness(rd)
    h:push("early")
    if sl.now() - t0 < period - slack then assert.are.equal(0, #got) end
    local early = #got
    os.execute("sleep 0.25")
    local a = sl.now()
    h:push("one"); h:push("two")
    local b = sl.now()
    assert.are.equal("one", got[early + 1]:read())   -- a period has passed
    if b - a < period - slack then assert.are.equal(early + 1, #got) end
    local before = #got
    os.execute("sleep 0.25")
    h:push("three")
    assert.are.equal(before + 1, #got)
    assert.are.equal("three", got[#got]:read())
    local c = rd:counters()
    assert.are.equal(#got, c.txFrames)
    assert.are.equal(4, c.txFrames + c.drops)
  end)

  it("checks its arguments", function()
    assert.has_error(function() sl.stream.RateDrop(false, -1) end)
    assert.has_error(function() sl.stream.RateDrop(true, 5000) end,
      "bad argument #2 to 'RateDrop' (period too long (at most 4294 s))")
    assert.has_error(function() sl.stream.RateDrop("x", 1) end)
  end)
end)

describe("changing a running graph", function()
  it("removeSlave under load: nothing arrives after it returns, counts add up", function()
    local fifo = sl.stream.Fifo(0, 0, true)
    local keep, moving = sl.stream.Slave(), sl.stream.Slave()
    _ = fifo >> keep
    local src = tsrc.source(fifo, math.maxinteger, 16)   -- until stopped
    local function pause(s)           -- without serving the loop
      local t = sl.now()
      while sl.now() - t < s do end
    end
    -- at least 50 cycles, and until one of them caught frames (30 s at most)
    local cycles, late, t0 = 0, 0, sl.now()
    while (cycles < 50 or moving:getFrameCount() == 0) and sl.now() - t0 < 30 do
      _ = fifo >> moving
      pause(0.001)
      assert.is_true(fifo:removeSlave(moving))
      local c = moving:getFrameCount()
      pause(0.001)
      if moving:getFrameCount() ~= c then late = late + 1 end
      cycles = cycles + 1
    end
    src:stop()
    src:join()
    local total = src:sent()
    assert.is_true(serve_until(function() return fifo:counters().txFrames == total end, 30))
    assert.are.equal(0, late)
    assert.is_true(cycles >= 50)
    assert.are.equal(total, keep:getFrameCount())
    assert.is_true(moving:getFrameCount() > 0)
    assert.are.equal(0, fifo:dropCnt())
  end)

  it("removing a Lua slave while its mailbox is full does not deadlock", function()
    local fifo = sl.stream.Fifo(0, 0, true)
    local n = 0
    local lua = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    _ = fifo >> lua
    local src = tsrc.source(fifo, 3000, 8)
    -- mailbox full, fifo thread blocked
    assert.is_true(spin_until(function() return lua:counters().waits >= 1 end))
    assert.is_true(fifo:removeSlave(lua))
    local after = n
    src:join()
    sl.sleep(0.05)
    assert.are.equal(after, n)          -- nothing after removeSlave returned
  end)

  it("the primary role passes to the next slave", function()
    local m = sl.stream.Master()
    local a, b = sl.stream.Slave(), sl.stream.Slave()
    _ = m >> a; _ = m >> b
    local f1 = m:reqFrame(10)
    assert.are.equal(1, a:getAllocCount())
    sl.streamDisconnect(m, a)
    local f2 = m:reqFrame(10)
    assert.are.equal(1, b:getAllocCount())
    assert.is_truthy(f1 and f2)
  end)
end)
