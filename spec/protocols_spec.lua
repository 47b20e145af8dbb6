-- sl.protocols.UdpRssiPack: pyrogue's UdpRssiPack. A client and a server
-- on 127.0.0.1; the constructor's arguments, its wait, the methods, the
-- size arithmetic of the reference's section 6.3 and a prompt stop.
local sl = require "streamlua"
local testing = require "streamlua.testing"

local UdpRssiPack = sl.protocols.UdpRssiPack

local function server(opts)
  opts = opts or {}
  opts.port, opts.server = opts.port or 0, true
  return UdpRssiPack(opts)
end

describe("sl.protocols.UdpRssiPack", function()
  it("a client waits until the link is open; a server never waits", function()
    local srv = server{packVer = 2}
    assert.are.equal("UdpRssiPack", srv:kind())
    assert.is_true(srv:getPort() > 0)
    local cli = UdpRssiPack{host = "127.0.0.1", port = srv:getPort(), packVer = 2, timeout = 30}
    assert.is_true(cli:getOpen())                       -- wait = true is the default
    assert.is_true(testing.serveUntil(function() return srv:getOpen() end))
    -- the open hook (which counts opens) runs just after the state changes
    assert.is_true(testing.serveUntil(function() return cli:counters().opens >= 1 end))
    assert.are.equal(1, cli:counters().opens)
    assert.are.equal(1, cli:counters().open)
    cli:stop(); srv:stop()
  end)

  it("wires pyrogue's layers with section 6.3's sizes", function()
    for _, case in ipairs{{1, false, 1464}, {2, false, 1464}, {1, true, 8964}, {2, true, 8964},
                          {7, false, 1464}} do
      local ver, jumbo, seg = case[1], case[2], case[3]
      local srv = server{jumbo = jumbo, packVer = ver}
      assert.are.equal(jumbo and 8972 or 1472, srv:udp():maxPayload())
      assert.are.equal(seg, srv:rssi():getLocMaxSegment())
      -- packVer 2 is CoreV2, anything else Core (pyrogue's rule)
      assert.are.equal(ver == 2 and "packetizer.CoreV2" or "packetizer.Core",
        srv:packetizer():kind())
      assert.are.equal("UdpServer", srv:udp():kind())
      assert.are.equal("rssi.Server", srv:rssi():kind())
      srv:stop()
    end
  end)

  it("has pyrogue's tree variables as fields: read-only counts and cur values, read-write loc values",
    function()
      local srv = server()
      local cli = UdpRssiPack{port = srv:getPort(), timeout = 30}
      assert.are.same({"rssiOpen", "rssiDownCount", "rssiDropCount", "rssiRetranCount", "locBusy",
                       "locBusyCnt", "remBusy", "remBusyCnt", "curMaxBuffers", "curMaxSegment",
                       "curCumAckTout", "curRetranTout", "curNullTout", "curMaxRetran",
                       "curMaxCumAck", "locTryPeriod", "locMaxBuffers", "locMaxSegment",
                       "locCumAckTout", "locRetranTout", "locNullTout", "locMaxRetran",
                       "locMaxCumAck"}, cli:variables())
      local r = cli:rssi()
      local getter = {rssiOpen = r.getOpen, rssiDownCount = r.getDownCount,
                      rssiDropCount = r.getDropCount, rssiRetranCount = r.getRetranCount,
                      locBusy = r.getLocBusy, locBusyCnt = r.getLocBusyCnt, remBusy = r.getRemBusy,
                      remBusyCnt = r.getRemBusyCnt}
      for _, name in ipairs(cli:variables()) do
        local v = cli[name]
        assert.are.equal(name, v.name)
        assert.are.equal(name:match("^loc[A-Z]") and not name:match("Busy") and "RW" or "RO",
          v.mode, name)
        assert.are.equal(name == "locBusy" or name == "remBusy", v.hidden, name)
        local g = getter[name] or r[name] or r["get" .. name:sub(1, 1):upper() .. name:sub(2)]
        assert.are.equal(g(r), v:get(), name)
        assert.are.equal(v:get(), v:value(), name)
        assert.are.equal("UdpRssiPack." .. name .. " (" .. v.mode .. ")", tostring(v))
      end
      assert.is_true(cli.rssiOpen:get())
      assert.are.equal(32, cli.curMaxBuffers:get())
      assert.are.equal(1464, cli.curMaxSegment:get())
      -- read-write: the RSSI layer's loc value, effective at the next SYN
      cli.locMaxBuffers:set(8)
      cli.locTryPeriod:set(50)
      assert.are.equal(8, r:getLocMaxBuffers())
      assert.are.equal(8, cli.locMaxBuffers:get())
      assert.are.equal(50, cli.locTryPeriod:get())
      assert.are.equal(32, cli.curMaxBuffers:get())
      assert.has_error(function() cli.locMaxBuffers:set(0) end, "Invalid LocMaxBuffers Value = 0")
      assert.has_error(function() cli.rssiOpen:set(false) end,
        "UdpRssiPack.rssiOpen is read-only (mode RO)")
      cli:_stop()
      assert.is_false(cli.rssiOpen:get())
      cli:_start()
      assert.is_true(cli:waitOpen(30))
      assert.are.equal(8, cli.curMaxBuffers:get())
      assert.is_true(testing.serveUntil(function() return srv.curMaxBuffers:get() == 8 end))
      cli:stop(); srv:stop()
    end)

  it("application(dest) is the same object each call, for dests 0 to 255", function()
    local srv = server()
    assert.is_true(rawequal(srv:application(0), srv:application(0)))
    assert.is_true(rawequal(srv:application(255), srv:application(255)))
    assert.is_false(rawequal(srv:application(1), srv:application(2)))
    assert.are.equal("packetizer.Application", srv:application(3):kind())
    assert.has_error(function() srv:application(256) end)
    assert.has_error(function() srv:application(-1) end)
    assert.has_error(function() srv:application("x") end)
    srv:stop()
  end)

  it("carries frames both ways on a dest, firstUser with SOF as enSsi says", function()
    local srv = server{packVer = 2, jumbo = true}
    local cli = UdpRssiPack{port = srv:getPort(), packVer = 2, jumbo = true, timeout = 30}
    local at_srv, got_srv = collector()
    local at_cli, got_cli = collector()
    _ = srv:application(5) >> at_srv
    _ = cli:application(5) >> at_cli
    local up, down = sl.stream.Master(), sl.stream.Master()
    _ = up >> cli:application(5)
    _ = down >> srv:application(5)
    up:sendFrame(testing.frame(pattern(20000, 1)))
    assert.is_true(testing.serveUntil(function() return #got_srv == 1 end))
    assert.are.equal(pattern(20000, 1), got_srv[1].data)
    assert.are.equal(2, got_srv[1].flags & 0xFF)        -- SOF from enSsi
    down:sendFrame(testing.frame("back"))
    assert.is_true(testing.serveUntil(function() return #got_cli == 1 end))
    assert.are.equal("back", got_cli[1].data)
    cli:stop(); srv:stop()
  end)

  it("_stop closes the link and _start opens it again; countReset zeroes RSSI's counts", function()
    local srv = server()
    local cli = UdpRssiPack{port = srv:getPort(), timeout = 30}
    cli:_stop()
    assert.is_false(cli:getOpen())
    assert.is_true(testing.serveUntil(function() return not srv:getOpen() end))
    cli:_start()
    assert.is_true(cli:waitOpen(30))
    assert.is_true(testing.serveUntil(function() return srv:getOpen() end))
    assert.is_true(testing.serveUntil(function() return cli:counters().opens >= 2 end))
    assert.are.equal(2, cli:counters().opens)
    cli:countReset()
    assert.are.equal(0, cli:rssi():getDownCount())
    assert.are.equal(0, cli:rssi():getRetranCount())
    cli:stop(); srv:stop()
  end)

  it("stop is prompt in every state and leaves getOpen() false", function()
    local srv = server()
    local cli = UdpRssiPack{port = srv:getPort(), timeout = 30}
    -- a stop that waited for anything would wait out the 30 s timeout:
    -- the bound is a third of it, far from a loaded machine's slowness
    local t0 = sl.now()
    cli:stop()
    srv:stop()
    assert.is_true(sl.now() - t0 < 10)
    assert.is_false(cli:getOpen())
    assert.is_false(srv:getOpen())
    -- a client that never found its server
    local lone = UdpRssiPack{port = 9, wait = false}
    assert.is_false(lone:getOpen())
    t0 = sl.now()
    lone:stop()
    assert.is_true(sl.now() - t0 < 10)
    assert.is_false(lone:getOpen())
  end)

  it("a time limit on the wait: waitOpen says false, the constructor raises", function()
    local lone = UdpRssiPack{port = 9, wait = false}
    assert.is_false(lone:waitOpen(0.2))
    lone:stop()
    sl.logging.setFilter("protocols.UdpRssiPack", sl.logging.Warning)
    sl.logging.setEmit(false)
    local ok, err = pcall(UdpRssiPack, {port = 9, timeout = 1.2})
    sl.logging.setEmit(true)
    assert.is_false(ok)
    assert.matches("^UdpRssiPack: host=127%.0%.0%.1, port=9 %-> link not open after 1%.2 s", err)
    -- pyrogue's warning, once a second while it tries
    assert.are.equal(1, select(2, logged(
      "WARNING protocols%.UdpRssiPack: host=127%.0%.0%.1, port=9 %-> Establishing link %.%.%.", 20)))
  end)

  it("a wait ended by sl.stop() returns with the link still trying", function()
    local lone = UdpRssiPack{port = 9, wait = false}
    sl.after(0.05, function() sl.stop() end)
    assert.is_false(lone:waitOpen())
    lone:stop()
  end)

  it("Ctrl-C ends the constructor's wait; the script goes on with the link trying", function()
    local outf, errf = os.tmpname(), os.tmpname()
    local code = [[sl.after(0.1, function() print("waiting") io.stdout:flush() end)
      local l = sl.protocols.UdpRssiPack{port = 9}
      print("returned", l:getOpen()); l:stop()]]
    local p = assert(io.popen(string.format([[
      %s -e %s >%s 2>%s &
      pid=$!
      i=0; until grep -q waiting %s || [ $i -ge 2000 ]; do sleep 0.01; i=$((i+1)); done
      kill -INT $pid
      i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done
      if kill -0 $pid 2>/dev/null; then kill -9 $pid; wait $pid; echo "@rc=99"
      else wait $pid; echo "@rc=$?"; fi]], shell_quote(STREAMLUA_BIN), shell_quote(code),
      shell_quote(outf), shell_quote(errf), shell_quote(outf))))
    local rc = tonumber(p:read("a"):match("@rc=(%d+)"))
    p:close()
    local out = slurp(outf, "")
    os.remove(outf); os.remove(errf)
    assert.are.equal(0, rc)
    assert.are.equal("waiting\nreturned\tfalse\n", out)
  end)

  it("applies pyrogue's defaults keys to RSSI before it starts", function()
    local srv = server{defaults = {locMaxBuffers = 16, locRetranTout = 50, locCumAckTout = 6,
                                   locNullTout = 2000, locMaxRetran = 20, locMaxCumAck = 3}}
    local r = srv:rssi()
    assert.are.equal(16, r:getLocMaxBuffers())
    assert.are.equal(50, r:getLocRetranTout())
    assert.are.equal(6, r:getLocCumAckTout())
    assert.are.equal(2000, r:getLocNullTout())
    assert.are.equal(20, r:getLocMaxRetran())
    assert.are.equal(3, r:getLocMaxCumAck())
    local cli = UdpRssiPack{port = srv:getPort(), defaults = {locMaxBuffers = 8}, timeout = 30}
    assert.are.equal(8, cli:rssi():curMaxBuffers())     -- the server adopts the client's
    assert.is_true(testing.serveUntil(function() return srv:rssi():curMaxBuffers() == 8 end))
    cli:stop(); srv:stop()
  end)

  it("checks its arguments", function()
    assert.has_error(function() UdpRssiPack() end)
    assert.has_error(function() UdpRssiPack{} end)                  -- no port
    assert.has_error(function() UdpRssiPack{port = 0} end)          -- a client needs one
    assert.has_error(function() UdpRssiPack{port = 70000, server = true} end)
    assert.has_error(function() UdpRssiPack{port = "x"} end)
    assert.has_error(function() UdpRssiPack{port = 9, jumbo = 1} end)
    assert.has_error(function() UdpRssiPack{port = 9, timeout = 0} end)
    assert.has_error(function() UdpRssiPack{port = 9, defaults = 3} end)
    assert.has_error(function() UdpRssiPack{port = 9, server = true, defaults = {locMaxBuffers = 0}} end)
    local ok, err = pcall(UdpRssiPack, {port = 9, prot = 1})
    assert.is_false(ok)
    assert.matches("unknown field 'prot'", err)
    local srv = server()
    ok, err = pcall(UdpRssiPack, {port = srv:getPort(), server = true})
    assert.is_false(ok)
    assert.matches("^UdpRssiPack: .*Address already in use", err)
    assert.has_error(function() srv.waitOpen(srv, -1) end)
    assert.has_error(function() UdpRssiPack.getOpen(sl.stream.Fifo(1)) end)
    srv:stop()
  end)

  it("shows in sl.graph() with its counters, beside its layers", function()
    local srv = server()
    local g = sl.graph()
    local kinds = {}
    for _, n in ipairs(g.nodes) do kinds[n.kind] = n end
    assert.is_not_nil(kinds.UdpRssiPack)
    assert.is_not_nil(kinds.UdpRssiPack.counters.resetDrops)
    assert.is_not_nil(kinds.UdpRssiPack.counters.rssiRetranCount)
    assert.is_not_nil(kinds["rssi.Server"])
    assert.is_not_nil(kinds.UdpServer)
    srv:stop()
  end)
end)
