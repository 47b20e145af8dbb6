-- sl.utilities.Prbs: Rogue's PRBS frames byte for byte (rogue-reference
-- 8.1), every method of reference 9.4, the generator thread feeding a
-- checker, and the thread's end when a running Prbs is collected.
local sl = require "streamlua"
local testing = require "streamlua.testing"
local Prbs = sl.utilities.Prbs

local function bytes(...)
  return string.char(...)
end

-- Sends a string as one frame into slave s.
local function send(s, data, err)
  local m = sl.stream.Master()
  _ = m >> s
  local f = m:reqFrame(#data)
  f:write(data)
  if err then f:setError(err) end
  m:sendFrame(f)
  m:removeSlave(s)
end

local serve_until = testing.serveUntil

-- Generator threads, once their count is `want` (within 20 s).
local function gen_threads(want) return threads("PrbsTx", want) end

describe("sl.utilities.Prbs", function()
  -- check failures are warnings on prbs.rx; keep them in the history
  sl.logging.setFilter("prbs", sl.logging.Warning)

  it("is a master and a slave of kind Prbs", function()
    local p = Prbs()
    assert.are.equal("Prbs", p:kind())
    assert.matches("^Prbs#%d+ rxFrames 0 txFrames 0 drops 0 errors 0$", tostring(p))
    local a, b = Prbs(), Prbs()
    _ = a == b                            -- both directions
    a:genFrame(16)
    b:genFrame(16)
    assert.are.equal(1, a:getRxCount())
    assert.are.equal(1, b:getRxCount())
    unlink(a, b)   -- no cycle left behind
  end)

  it("generates Rogue's example frames byte for byte", function()
    local p = Prbs()
    local cap, got = collector("data")
    _ = p >> cap
    p:genFrame(16)                                    -- seq 0
    p:genFrame(16)                                    -- seq 1
    p:genFrame(20)                                    -- seq 2
    p:genFrame(12)                                    -- seq 3
    p:sendCount(true)
    p:genFrame(24)                                    -- seq 4, count mode
    p:sendCount(false)
    assert.are.equal(5, p:getTxSeq())
    p:setTxSeq(0x12345678)
    p:genFrame(20)
    p:setWidth(64)
    p:setTxSeq(1)
    p:genFrame(32)
    assert.are.same({
      bytes(0,0,0,0, 3,0,0,0, 0,0,0,0, 0,0,0,0),
      bytes(1,0,0,0, 3,0,0,0, 2,0,0,0, 5,0,0,0),
      bytes(2,0,0,0, 4,0,0,0, 5,0,0,0, 0x0b,0,0,0, 0x17,0,0,0),
      bytes(3,0,0,0, 2,0,0,0, 7,0,0,0),
      bytes(4,0,0,0, 5,0,0,0, 2,0,0,0, 3,0,0,0, 4,0,0,0, 5,0,0,0),
      bytes(0x78,0x56,0x34,0x12, 4,0,0,0, 0xf1,0xac,0x68,0x24,
            0xe3,0x59,0xd1,0x48, 0xc6,0xb3,0xa2,0x91),
      bytes(1,0,0,0,0,0,0,0, 3,0,0,0,0,0,0,0, 2,0,0,0,0,0,0,0, 5,0,0,0,0,0,0,0),
    }, got)
    assert.are.equal(7, p:getTxCount())
    assert.are.equal(16 + 16 + 20 + 12 + 24 + 20 + 32, p:getTxBytes())
    assert.are.equal(0, p:getTxErrors())
  end)

  it("accepts the examples and rejects a copy with one byte changed", function()
    local good = bytes(0x78,0x56,0x34,0x12, 4,0,0,0, 0xf1,0xac,0x68,0x24,
                       0xe3,0x59,0xd1,0x48, 0xc6,0xb3,0xa2,0x91)
    local chk = Prbs()
    send(chk, good)
    send(chk, bytes(0,0,0,0, 3,0,0,0, 0,0,0,0, 0,0,0,0))    -- seq 0 restarts
    assert.are.equal(2, chk:getRxCount())
    assert.are.equal(36, chk:getRxBytes())
    local bad = good:sub(1, 19) .. string.char(good:byte(20) ~ 1)
    local fresh = Prbs()
    sl.logging.setEmit(false)
    send(fresh, bad)
    sl.logging.setEmit(true)
    assert.are.equal(1, fresh:getRxErrors())
    assert.are.equal(0, fresh:getRxCount())
    local last = sl.logging.history(1)[1]
    assert.matches("WARNING prbs.rx: Bad value at index 2", last)
    assert.matches("seq=305419896", last)
    assert.matches("got=c6 b3 a2 90, exp=c6 b3 a2 91", last, 1, true)
  end)

  it("catches one corrupted byte and passes the next good frame", function()
    local gen, chk = Prbs(), Prbs()
    local cap, got = collector("data")
    _ = gen >> cap
    for _ = 1, 3 do gen:genFrame(1024) end
    send(chk, got[1])
    local b = got[2]
    b = b:sub(1, 600) .. string.char(b:byte(601) ~ 0x80) .. b:sub(602)
    sl.logging.setEmit(false)
    send(chk, b)
    sl.logging.setEmit(true)
    assert.are.equal(1, chk:getRxErrors())
    assert.are.equal(1, chk:getRxCount())
    assert.matches("Bad value at index 148", sl.logging.history(1)[1])
    send(chk, got[3])
    assert.are.equal(2, chk:getRxCount())
    assert.are.equal(1, chk:getRxErrors())
  end)

  it("rejects bad sizes, widths and arguments, naming the function", function()
    local p = Prbs()
    local function err(f)
      local ok, msg = pcall(f)
      assert.is_false(ok)
      return msg
    end
    assert.matches("bad argument #1 to 'genFrame' %(Invalid frame size: 18",
                   err(function() p:genFrame(18) end))
    assert.matches("bad argument #1 to 'genFrame' %(Invalid frame size: 8",
                   err(function() p:genFrame(8) end))
    assert.matches("'genFrame' %(number expected", err(function() p:genFrame("x") end))
    assert.matches("'enable' %(Invalid frame size: 18", err(function() p:enable(18) end))
    assert.matches("bad argument #1 to 'setWidth' %(Invalid width: 48",
                   err(function() p:setWidth(48) end))
    assert.matches("'setWidth' %(Invalid width: 544", err(function() p:setWidth(544) end))
    p:setWidth(512)
    assert.matches("'genFrame' %(Invalid frame size: 128",
                   err(function() p:genFrame(128) end))
    p:genFrame(192)
    p:setWidth(32)
    assert.matches("'setTaps' %(tap 2 must be a bit position 0..255, got 300",
                   err(function() p:setTaps{1, 300} end))
    assert.matches("'setTaps' %(table expected", err(function() p:setTaps(5) end))
    assert.matches("'setRxEnable' %(boolean expected",
                   err(function() p:setRxEnable(1) end))
    assert.matches("'checkPayload' %(boolean expected",
                   err(function() p:checkPayload() end))
    assert.matches("'genPayload' %(boolean expected",
                   err(function() p:genPayload("yes") end))
    assert.matches("'sendCount' %(boolean expected", err(function() p:sendCount(0) end))
    assert.matches("'setTxPeriod' %(value %-1 out of range",
                   err(function() p:setTxPeriod(-1) end))
    assert.matches("'setTxSeq' %(value 4294967296 out of range",
                   err(function() p:setTxSeq(1 << 32) end))
    assert.matches("streamlua.Prbs expected, got streamlua.Slave",
                   select(2, pcall(Prbs.genFrame, sl.stream.Slave(), 16)))
    assert.matches("no arguments expected", select(2, pcall(Prbs, 1)))
  end)

  it("counts, resets and switches every option", function()
    local gen, chk = Prbs(), Prbs()
    _ = gen >> chk
    assert.is_true(chk:getRxEnable())
    assert.are.equal(0, gen:getTxPeriod())
    gen:setTxPeriod(250)
    assert.are.equal(250, gen:getTxPeriod())
    gen:setTxPeriod(0)
    for _ = 1, 3 do gen:genFrame(100) end
    assert.are.equal(3, gen:getTxCount())
    assert.are.equal(300, gen:getTxBytes())
    assert.are.equal(3, chk:getRxCount())
    assert.are.equal(300, chk:getRxBytes())
    for _, name in ipairs{"getRxRate", "getRxBw", "getTxRate", "getTxBw"} do
      assert.are.equal("number", type(chk[name](chk)))
    end
    -- count mode fails the payload check (the checker expects the LFSR)...
    gen:sendCount(true)
    sl.logging.setEmit(false)
    gen:genFrame(100)
    assert.are.equal(1, chk:getRxErrors())
    -- ...unless payload checking is off
    chk:checkPayload(false)
    gen:genFrame(100)
    assert.are.equal(4, chk:getRxCount())
    chk:checkPayload(true)
    gen:sendCount(false)
    -- genPayload(false) writes the two header words only
    local cap, got = collector("data")
    local g2 = Prbs()
    _ = g2 >> cap
    cap:setFixedSize(64); cap:setPoolSize(1)
    -- the pool keeps the block until the next frame: no idle release (two
    -- full collections took over its 1 s under TSan late in a loaded run)
    local idle = sl.poolIdleMs()
    sl.setPoolIdleMs(0)
    finally(function() sl.setPoolIdleMs(idle) end)
    g2:sendCount(true)
    g2:genFrame(24)
    collectgarbage(); collectgarbage()      -- the block goes back to the pool
    g2:sendCount(false)
    g2:genPayload(false)
    g2:genFrame(24)
    assert.are.equal(bytes(1,0,0,0, 5,0,0,0, 2,0,0,0, 3,0,0,0, 4,0,0,0, 5,0,0,0),
                     got[2])
    sl.logging.setEmit(true)
    local c = chk:counters()
    assert.are.equal(4, c.rxFrames)
    assert.are.equal(1, c.errors)
    assert.are.equal(5, gen:counters().txFrames)
    gen:resetCount(); chk:resetCount()
    assert.are.equal(0, gen:getTxCount() + gen:getTxBytes() + gen:getTxErrors())
    assert.are.equal(0, chk:getRxCount() + chk:getRxBytes() + chk:getRxErrors())
    -- other taps: both ends agree, the example frame no longer checks
    gen:setTaps{3, 5}; chk:setTaps("\3\5")
    gen:genFrame(64)
    assert.are.equal(1, chk:getRxCount())
  end)

  it("does not block the Lua thread while rx is disabled", function()
    local gen, chk = Prbs(), Prbs()
    _ = gen >> chk
    chk:setRxEnable(false)
    assert.is_false(chk:getRxEnable())
    sl.logging.setEmit(false)
    gen:genFrame(64)                         -- would wait forever in Rogue
    send(chk, bytes(1,0,0,0, 3,0,0,0, 2,0,0,0, 5,0,0,0))
    sl.logging.flush()
    sl.logging.setEmit(true)
    assert.are.equal(0, chk:getRxCount())
    assert.are.equal(2, chk:counters().drops)
    -- a loss, told at the default level with its total
    assert.are.equal(sl.logging.Error, sl.logging.getLevel())
    local last
    for _, l in ipairs(sl.logging.history(16)) do
      if l:match("ERROR prbs%.rx: Rx is disabled: a frame from the thread") then last = l end
    end
    assert.matches("%(2 in all%)", last)
    chk:setRxEnable(true)
    gen:genFrame(64)
    assert.are.equal(1, chk:getRxCount())
  end)

  it("feeds a checker from its generator thread", function()
    local gen, chk = Prbs(), Prbs()
    _ = gen >> chk
    gen:enable(65536)
    -- (60 s: under TSan late in a loaded run, 100 frames of 64 KiB took over 20)
    assert.is_true(serve_until(function() return chk:getRxCount() >= 100 end, 60))
    gen:disable()
    assert.is_true(gen:getTxCount() >= 100)
    assert.are.equal(gen:getTxCount(), chk:getRxCount())
    assert.are.equal(gen:getTxBytes(), chk:getRxBytes())
    assert.are.equal(0, chk:getRxErrors())
  end)

  it("counts one error for one frame corrupted by a Lua slave", function()
    local gen, chk = Prbs(), Prbs()
    local n = 0
    local mid = sl.stream.Slave{acceptFrame = function(self, f)
      n = n + 1
      if n == 5 then f:write(string.char(f:read(12, 1):byte() ~ 0x10), 12) end
      self:sendFrame(f)                      -- on the main thread, into chk
    end}
    _ = gen >> mid >> chk
    sl.logging.setEmit(false)
    gen:enable(256)
    assert.is_true(serve_until(function() return n >= 50 end, 20))
    gen:disable()
    local sent = gen:getTxCount()
    assert.is_true(serve_until(function()
      return chk:getRxCount() + chk:getRxErrors() == sent
    end, 20))
    sl.logging.setEmit(true)
    assert.are.equal(1, chk:getRxErrors())
    assert.are.equal(sent - 1, chk:getRxCount())
  end)

  it("sleeps the tx period between frames", function()
    -- never more than one frame per 100 ms of the time it ran, however
    -- late it ran; back to back it would send thousands
    local gen = Prbs()
    gen:setTxPeriod(100000)                  -- 100 ms
    local t0 = sl.now()
    gen:enable(64)
    assert.is_true(serve_until(function() return gen:getTxCount() >= 3 end, 20))
    gen:disable()
    local ran = sl.now() - t0
    local n = gen:getTxCount()
    assert.is_true(n >= 3 and n <= ran / 0.1 + 1, "sent " .. n .. " in " .. ran .. " s")
  end)

  it("genFrame beyond the pool's limit names the limit", function()
    local cap = collector("data")
    local g = Prbs()
    _ = g >> cap
    cap:setMaxFrameSize(64)
    sl.logging.setEmit(false)
    assert.has_error(function() g:genFrame(128) end,
      "genFrame: frame of 128 bytes exceeds the pool's limit of 64")
    sl.logging.setEmit(true)
    assert.are.equal(1, g:getTxErrors())
    g:genFrame(64)
    assert.are.equal(1, g:getTxCount())
  end)

  it("reports rates after a second", function()
    local gen, chk = Prbs(), Prbs()
    _ = gen >> chk
    gen:setTxPeriod(2000)
    gen:enable(1000)
    assert.is_true(serve_until(function()
      return gen:getTxRate() > 0 and chk:getRxRate() > 0 end, 30))
    gen:disable()
    -- at most one frame per 2 ms; bytes/s is frames/s times the frame size
    local rate, bw = gen:getTxRate(), gen:getTxBw()
    assert.is_true(rate > 0 and rate < 550, "rate " .. rate)
    assert.is_true(math.abs(bw - rate * 1000) <= rate, "bw " .. bw)
    local rrate, rbw = chk:getRxRate(), chk:getRxBw()
    assert.is_true(rrate > 0 and math.abs(rbw - rrate * 1000) <= rrate)
  end)

  it("stops its thread when a running Prbs is collected", function()
    collectgarbage(); collectgarbage()
    local before = gen_threads(0)
    local p = Prbs()
    _ = p >> sl.stream.Slave()
    p:enable(1024)
    assert.are.equal(before + 1, gen_threads(before + 1))
    p = nil
    collectgarbage(); collectgarbage()
    assert.are.equal(before, gen_threads(before))
  end)

  it("stop() ends the generator", function()
    local p = Prbs()
    p:enable(64)
    p:stop()
    local n = p:getTxCount()
    sl.sleep(0.02)
    assert.are.equal(n, p:getTxCount())
  end)
end)
