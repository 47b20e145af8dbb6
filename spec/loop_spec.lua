local sl = require "streamlua"

local function now()
  return os.clock()   -- CPU time is enough to order events; wall time below
end

describe("the event loop", function()
  it("run(seconds) returns after about that long", function()
    local t0 = os.time()
    sl.run(0.05)
    assert.is_true(os.time() - t0 <= 30)           -- a bound on a hang
  end)

  it("after() fires once, every() repeats until cancelled", function()
    local fired, ticks = 0, 0
    local a = sl.after(0.01, function() fired = fired + 1 end)
    local e = sl.every(0.005, function()
      ticks = ticks + 1
      if ticks >= 3 and fired == 1 then sl.stop() end
    end)
    assert.is_true(a:active())
    assert.matches("^Timer%(after", tostring(a))
    sl.run(30)
    assert.are.equal(1, fired)
    assert.is_false(a:active())
    assert.is_true(ticks >= 3)
    assert.is_true(e:active())
    e:cancel()
    assert.is_false(e:active())
    local before = ticks
    sl.sleep(0.03)
    assert.are.equal(before, ticks)
  end)

  it("cancel() before it fires means it never fires", function()
    local fired = false
    local t = sl.after(0.01, function() fired = true end)
    t:cancel()
    sl.sleep(0.05)
    assert.is_false(fired)
  end)

  it("a timer dropped by Lua still fires (it is pinned while active)", function()
    local fired = false
    sl.after(0.01, function() fired = true end)
    collectgarbage(); collectgarbage()
    assert.is_true(require("streamlua.testing").serveUntil(function() return fired end, 20))
  end)

  it("a <close> timer is cancelled at scope end", function()
    local fired = false
    do
      local t <close> = sl.after(0.01, function() fired = true end)
    end
    sl.sleep(0.05)
    assert.is_false(fired)
  end)

  it("stop() ends run() from a callback", function()
    local n = 0
    sl.every(0.001, function() n = n + 1; if n == 5 then sl.stop() end end)
    sl.run(30)
    assert.are.equal(5, n)
  end)

  it("sleep() keeps serving timers while it waits", function()
    local order = {}
    sl.after(0.01, function() order[#order + 1] = "timer" end)
    sl.sleep(0.05)
    order[#order + 1] = "woke"
    assert.are.same({"timer", "woke"}, order)
  end)

  it("an erroring every() is logged and stopped", function()
    sl.logging.setEmit(false)
    local n = 0
    local t = sl.every(0.001, function() n = n + 1; error("tick failed") end)
    sl.sleep(0.03)
    sl.logging.setEmit(true)
    assert.are.equal(1, n)
    assert.is_false(t:active())
    assert.matches("ERROR timer: .*tick failed", sl.logging.history(1)[1])
  end)

  it("refuses to re-enter the loop from a callback", function()
    local err
    sl.after(0, function()
      local ok, e = pcall(sl.sleep, 0.01)
      err = e
      sl.stop()
    end)
    sl.run(1)
    assert.matches("sleep: the loop is already running", err)
  end)

  it("checks its arguments", function()
    assert.has_error(function() sl.every(0, function() end) end,
      "bad argument #1 to 'every' (positive number of seconds expected)")
    assert.has_error(function() sl.after(-1, function() end) end)
    assert.has_error(function() sl.after(1, 3) end)
    assert.has_error(function() sl.run("x") end)
    assert.has_error(function() sl.sleep() end)
    assert.has_error(function() sl.sleep(0 / 0) end)
  end)

  it("SIGTERM stops run() cleanly", function()
    local pid = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
    sl.after(0.02, function() os.execute("kill -TERM " .. pid) end)
    local t0 = os.time()
    sl.run(60)
    assert.is_true(os.time() - t0 < 30)           -- ended by the signal
  end)

  it("run() after a stop starts afresh", function()
    sl.stop()
    local fired = false
    sl.after(0.01, function() fired = true end)
    sl.run(0.05)
    assert.is_true(fired)
    assert.is_function(now)
  end)
end)

describe("the event loop, run after run", function()
  it("a run(seconds) ended early by stop() does not cut the next one short", function()
    sl.after(0.01, function() sl.stop() end)
    sl.run(0.2)                       -- ends at 0.01 s; its 0.2 s timeout must die
    local fired = false
    sl.after(0.3, function() fired = true; sl.stop() end)
    sl.run(2)                         -- would end at 0.2 s if the old timeout lived
    assert.is_true(fired)
  end)
end)
