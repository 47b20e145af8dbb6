local sl = require "streamlua"
local testing = require "streamlua.testing"

local serve_until = testing.serveUntil

-- A started server and client over UDP on 127.0.0.1, each RSSI end with
-- a master feeding its application and a collector behind it. The client
-- asks for 255 transmissions of a segment (the server adopts it): 5 s of
-- a starved thread on a loaded machine, not Rogue's 300 ms, before a reset.
local function link()
  local us = sl.udp.Server(0, false, "127.0.0.1")
  local uc = sl.udp.Client("127.0.0.1", us:getPort())
  local s = sl.rssi.Server(us:maxPayload() - 8)
  local c = sl.rssi.Client(uc:maxPayload() - 8)
  _ = us == s:transport()
  _ = uc == c:transport()
  local t = {us = us, uc = uc, s = s, c = c}
  t.sm, t.cm = sl.stream.Master(), sl.stream.Master()
  _ = t.sm >> s:application()
  _ = t.cm >> c:application()
  t.at_s, t.got_s = collector("data")
  t.at_c, t.got_c = collector("data")
  _ = s:application() >> t.at_s
  _ = c:application() >> t.at_c
  c:setLocMaxRetran(255)
  s:_start()
  c:_start()
  return t
end

local function open(t)
  return serve_until(function() return t.c:getOpen() and t.s:getOpen() end, 10)
end

local function close(t)
  t.c:stop()
  t.s:stop()
  t.uc:stop()
  t.us:stop()
  unlink(t.us, t.s:transport())
  unlink(t.uc, t.c:transport())
end

describe("sl.rssi.Client / sl.rssi.Server", function()
  it("are built with Rogue's defaults, not started", function()
    for _, ctor in ipairs{sl.rssi.Client, sl.rssi.Server} do
      local r = ctor(1464)
      assert.is_false(r:getOpen())
      assert.are.equal(32, r:getLocMaxBuffers())
      assert.are.equal(1464, r:getLocMaxSegment())
      assert.are.equal(5, r:getLocCumAckTout())
      assert.are.equal(20, r:getLocRetranTout())
      assert.are.equal(1000, r:getLocNullTout())
      assert.are.equal(15, r:getLocMaxRetran())
      assert.are.equal(2, r:getLocMaxCumAck())
      assert.are.equal(100, r:getLocTryPeriod())
      assert.are.equal(32, r:curMaxBuffers())
      assert.are.equal(1464, r:curMaxSegment())
      assert.are.equal(5, r:curCumAckTout())
      assert.are.equal(20, r:curRetranTout())
      assert.are.equal(1000, r:curNullTout())
      assert.are.equal(15, r:curMaxRetran())
      assert.are.equal(2, r:curMaxCumAck())
      for _, g in ipairs{"getDownCount", "getDropCount", "getRetranCount",
                         "getLocBusyCnt", "getRemBusyCnt"} do
        assert.are.equal(0, r[g](r), g)
      end
      assert.is_false(r:getLocBusy())
      assert.is_false(r:getRemBusy())
      assert.are.equal(0, r:counters().txSegments)   -- nothing sent
      r:stop()
    end
    assert.are.equal("rssi.Client", sl.rssi.Client(100):kind())
    assert.are.equal("rssi.Server", sl.rssi.Server(100):kind())
  end)

  it("give the same edges each call, stream master and slave", function()
    local r = sl.rssi.Client(1464)
    assert.is_true(rawequal(r:transport(), r:transport()))
    assert.is_true(rawequal(r:application(), r:application()))
    assert.are.equal("rssi.Transport", r:transport():kind())
    assert.are.equal("rssi.Application", r:application():kind())
    assert.is_table(sl.rssi.Transport)
    assert.is_table(sl.rssi.Application)
  end)

  it("refuse bad arguments, naming them, with Rogue's texts", function()
    local ok, err = pcall(sl.rssi.Client)
    assert.is_false(ok)
    assert.matches("#1", err)
    ok, err = pcall(sl.rssi.Server, 8)
    assert.is_false(ok)
    assert.matches("segment size", err)
    local r = sl.rssi.Client(1464)
    for name, text in pairs{LocMaxBuffers = "LocMaxBuffers", LocMaxSegment = "LocMaxSegment",
                            LocCumAckTout = "LocCumAckTout", LocRetranTout = "LocRetranTout",
                            LocNullTout = "LocNullTout", LocMaxRetran = "LocMaxRetran",
                            LocMaxCumAck = "LocMaxAck", LocTryPeriod = "LocTryPeriod"} do
      ok, err = pcall(r["set" .. name], r, 0)
      assert.is_false(ok)
      assert.matches("Invalid " .. text .. " Value = 0", err, 1, true)
    end
    ok, err = pcall(r.setLocMaxBuffers, r, 256)
    assert.is_false(ok)
    assert.matches("#2", err)
    ok, err = pcall(r.setLocNullTout, r, 65536)
    assert.is_false(ok)
    ok, err = pcall(r.setTimeout, r, 0)
    assert.is_false(ok)
    assert.matches("#2", err)
    ok, err = pcall(r.getOpen, sl.stream.Fifo(0))
    assert.is_false(ok)
    assert.matches("rssi.Client or rssi.Server", err, 1, true)
  end)

  it("keep setLoc values for the next SYN; cur values stay until negotiated", function()
    local r = sl.rssi.Server(1464)
    r:setLocMaxBuffers(8)
    r:setLocMaxSegment(1000)
    r:setLocCumAckTout(4)
    r:setLocRetranTout(30)
    r:setLocNullTout(3000)
    r:setLocMaxRetran(5)
    r:setLocMaxCumAck(3)
    r:setLocTryPeriod(50)
    r:setTimeout(500000)
    assert.are.same({8, 1000, 4, 30, 3000, 5, 3, 50},
      {r:getLocMaxBuffers(), r:getLocMaxSegment(), r:getLocCumAckTout(),
       r:getLocRetranTout(), r:getLocNullTout(), r:getLocMaxRetran(),
       r:getLocMaxCumAck(), r:getLocTryPeriod()})
    assert.are.equal(32, r:curMaxBuffers())
  end)

  it("open over UDP, carry frames both ways in order, and close on stop", function()
    -- warnings go to the history (not the screen), for a failure's message
    local level = sl.logging.getLevel()
    sl.logging.setLevel(sl.logging.Warning)
    sl.logging.setEmit(false)
    local t = link()
    finally(function()
      close(t)
      sl.logging.setLevel(level)
      sl.logging.setEmit(true)
    end)
    assert.is_true(open(t))
    -- the server adopted the client's values
    assert.are.equal(32, t.s:curMaxBuffers())
    assert.are.equal(1464, t.s:curMaxSegment())
    assert.are.equal(255, t.s:curMaxRetran())
    for i = 1, 50 do
      t.cm:sendFrame(testing.frame(pattern(i * 29, i)))
      t.sm:sendFrame(testing.frame(pattern(1456 - i, i)))
    end
    local function dump(r)
      local t2 = {}
      for k, v in pairs(r:counters()) do t2[#t2 + 1] = k .. "=" .. v end
      table.sort(t2)
      return table.concat(t2, " ")
    end
    -- for a failure's message: what arrived, what each end counted, every
    -- reset and open logged and the last few lines
    local function explain()
      local lens = {}
      for j = 1, 50 do
        lens[#lens + 1] = (t.got_s[j] and #t.got_s[j] or "-") .. "/" ..
          (t.got_c[j] and #t.got_c[j] or "-")
      end
      local lines, hist = {}, sl.logging.history()
      for i, l in ipairs(hist) do
        if l:match("reset") or l:match("open") or l:match("SYN") or (i > #hist - 8 and
          (l:match(" rssi%.") or l:match(" udp%."))) then lines[#lines + 1] = l end
      end
      return "sizes at the server/client " .. table.concat(lens, " ") .. "\nC: " .. dump(t.c) ..
        "\nS: " .. dump(t.s) .. "\nUC: " .. dump(t.uc) .. "\nUS: " .. dump(t.us) .. "\n" ..
        table.concat(lines)
    end
    local arrived = serve_until(function() return #t.got_s == 50 and #t.got_c == 50 end, 10)
    local diag = explain()
    assert.is_true(arrived, diag)
    for i = 1, 50 do
      assert.is_true(pattern(i * 29, i) == t.got_s[i], diag)
      assert.is_true(pattern(1456 - i, i) == t.got_c[i], diag)
    end
    local c = t.c:counters()
    assert.are.equal(50, c.txFrames, diag)
    assert.are.equal(50, c.rxFrames, diag)
    assert.are.equal(1, c.opens, diag)
    assert.are.equal(0, t.c:getDownCount(), diag)
    -- reqFrame: one buffer, at most the segment less the header
    local f = t.cm:reqFrame(5000)
    assert.are.equal(1456, f:getAvailable())
    f = t.cm:reqFrame(10)
    assert.is_true(f:getAvailable() >= 10)
    t.c:resetCounters()
    assert.are.equal(0, t.c:getDropCount())
    -- stop sends RST: the server closes too; a restart opens again
    t.c:stop()
    assert.is_false(t.c:getOpen())
    assert.is_true(serve_until(function() return not t.s:getOpen() end, 10))
    t.c:_start()
    assert.is_true(open(t))
    assert.is_true(t.c:counters().opens >= 2)
    close(t)
    assert.is_false(t.c:getOpen())
  end)

  it("drop frames sent while closed, silently", function()
    local r = sl.rssi.Client(1464)
    local m = sl.stream.Master()
    _ = m >> r:application()
    m:sendFrame(testing.frame("nobody"))
    assert.are.equal(1, r:counters().txDrops)
    assert.are.equal(0, r:counters().txSegments)
  end)

  it("stop promptly while waiting for a server", function()
    local us = sl.udp.Server(0, false, "127.0.0.1")
    local uc = sl.udp.Client("127.0.0.1", us:getPort())
    local c = sl.rssi.Client(1464)
    _ = uc == c:transport()
    c:_start()
    assert.is_true(serve_until(function() return c:counters().txSegments >= 1 end, 10))
    c:_stop()
    assert.is_false(c:getOpen())
    assert.are.equal(0, threads("RssiApp", 0))
    assert.are.equal(0, threads("RssiTimer", 0))
    uc:stop()
    us:stop()
    unlink(uc, c:transport())
  end)
end)
