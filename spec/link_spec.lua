-- The firmware link end to end: a UdpRssiPack client and server over real
-- UDP on 127.0.0.1 carrying SRPv3 register writes and read-backs on dest 0,
-- PRBS frames of 12 B to 1 MiB on dest 1 and frames of 1 to 11 bytes on
-- dest 2; for both packetizer versions, standard and jumbo; then through a
-- relay that drops and reorders a few percent of the datagrams each way;
-- then with the far side killed and started again. Every wait is bounded.
local sl = require "streamlua"
local testing = require "streamlua.testing"
local ctesting = require "streamlua_testing"

local UdpRssiPack = sl.protocols.UdpRssiPack
local serve_until = testing.serveUntil

local PRBS_SIZES = {12, 16, 1000, 1440, 1444, 8936, 8940, 10000, 65536, 1048576}

-- The links below ask for 255 transmissions of a segment (the server
-- adopts the client's values): a reset then takes 5 s of a starved thread
-- (two suites on two loaded cores), not Rogue's 15 x 20 ms. Retransmission
-- itself is unchanged (20 ms), so no link reset stays a real finding.
local PATIENT = {locMaxRetran = 255}

-- The near side's users: a memory master through SrpV3 on dest 0, a PRBS
-- generator on dest 1, a plain master on dest 2; the far side's: the SRPv3
-- emulation, a PRBS checker and a collector.
local function users(cli, srv)
  local u = {m = sl.memory.Master(), srp = sl.srp.SrpV3(), emu = sl.srp.SrpV3Emulation(),
             gen = sl.utilities.Prbs(), chk = sl.utilities.Prbs(), small = sl.stream.Master()}
  u.m:setTimeout(20e6)
  _ = u.m >> u.srp
  _ = u.srp == cli:application(0)
  _ = u.emu == srv:application(0)
  _ = u.gen >> cli:application(1)
  _ = srv:application(1) >> u.chk
  _ = u.small >> cli:application(2)
  u.at, u.got = collector("data")
  _ = srv:application(2) >> u.at
  u.sent = 0
  return u
end

-- One round of everything; checks it all arrived intact.
local function traffic(u, round)
  for i = 0, 15 do u.m:writeU32(0x1000 + 4 * i, round * 1000 + i) end
  for i = 0, 15 do assert.are.equal(round * 1000 + i, u.m:readU32(0x1000 + 4 * i)) end
  for _, n in ipairs(PRBS_SIZES) do
    u.gen:genFrame(n)
    u.sent = u.sent + 1
  end
  local first = #u.got
  for n = 1, 11 do u.small:sendFrame(testing.frame(pattern(n, round))) end
  assert.is_true(serve_until(function()
    return u.chk:getRxCount() + u.chk:getRxErrors() >= u.sent and #u.got >= first + 11
  end, 60))
  assert.are.equal(u.sent, u.chk:getRxCount())
  assert.are.equal(0, u.chk:getRxErrors())
  for n = 1, 11 do assert.are.equal(pattern(n, round), u.got[first + n]) end
end

local function stop_all(u, cli, srv)
  unlink(u.srp, cli:application(0))
  unlink(u.emu, srv:application(0))
  cli:stop(); srv:stop()
end

describe("the link over UDP on 127.0.0.1", function()
  for _, case in ipairs{{1, false}, {1, true}, {2, false}, {2, true}} do
    local ver, jumbo = case[1], case[2]
    it(string.format("SRPv3 and PRBS, packetizer v%d, %s", ver, jumbo and "jumbo" or "standard"),
      function()
        local srv = UdpRssiPack{port = 0, server = true, packVer = ver, jumbo = jumbo,
                                defaults = PATIENT}
        local cli = UdpRssiPack{port = srv:getPort(), packVer = ver, jumbo = jumbo, timeout = 30,
                                defaults = PATIENT}
        assert.are.equal(255, cli:rssi():curMaxRetran())
        local u = users(cli, srv)
        traffic(u, 1)
        traffic(u, 2)
        assert.are.equal(0, srv:counters().packDropCount)
        assert.are.equal(0, cli:counters().rssiDownCount)
        assert.are.equal(0, srv:counters().rssiDownCount)
        stop_all(u, cli, srv)
      end)
  end

  it("a generator thread disabled while the window is full: its last frame arrives whole", function()
    local srv = UdpRssiPack{port = 0, server = true, packVer = 2, jumbo = true, defaults = PATIENT}
    local cli = UdpRssiPack{port = srv:getPort(), packVer = 2, jumbo = true, timeout = 30,
                            defaults = PATIENT}
    local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
    _ = gen >> cli:application(1)
    _ = srv:application(1) >> chk
    for _ = 1, 5 do             -- 64 KiB frames are 8 segments: some sends wait for the window
      gen:enable(65536)
      assert.is_true(serve_until(function() return chk:getRxCount() >= 50 end, 60))
      gen:disable()
      assert.is_true(serve_until(function()
        return chk:getRxCount() + chk:getRxErrors() >= gen:getTxCount()
      end, 60))
      assert.are.equal(gen:getTxCount(), chk:getRxCount())
      assert.are.equal(0, chk:getRxErrors())
      assert.are.equal(0, cli:rssi():counters().txDrops)
      chk:resetCount(); gen:resetCount()
    end
    assert.are.equal(0, srv:counters().packDropCount)
    cli:stop(); srv:stop()
  end)

  it("through a relay that drops and reorders 3 % each way: nothing lost, retransmissions counted",
    function()
      for _, ver in ipairs{1, 2} do
        local srv = UdpRssiPack{port = 0, server = true, packVer = ver, jumbo = true,
                                defaults = PATIENT}
        local relay = ctesting.relay(srv:getPort(), 30, 30, ver)
        local cli = UdpRssiPack{port = relay:port(), packVer = ver, jumbo = true, timeout = 30,
                                defaults = PATIENT}
        local u = users(cli, srv)
        for round = 1, 3 do traffic(u, round) end
        local up, down = relay:counts("up"), relay:counts("down")
        assert.is_true(up.dropped > 0 and down.dropped > 0)
        assert.is_true(up.reordered > 0)
        local retran = cli:counters().rssiRetranCount + srv:counters().rssiRetranCount
        assert.is_true(retran > 0)
        assert.are.equal(0, cli:counters().rssiDownCount)
        stop_all(u, cli, srv)
        relay:stop()
      end
    end)
end)

-- The far side in a process of its own: a UdpRssiPack server with the
-- SRPv3 emulation on dest 0 and an echo on dest 1 (what arrives goes back).
local FAR_SCRIPT = [=[
local sl = require "streamlua"
local port, limit = tonumber(arg[1]), tonumber(arg[2]) or 60
local srv = sl.protocols.UdpRssiPack{port = port, server = true, packVer = 2}
local emu = sl.srp.SrpV3Emulation()
_ = emu == srv:application(0)
_ = srv:application(1) >> srv:application(1)
io.stdout:write("listening ", srv:getPort(), "\n")
io.stdout:flush()
sl.run(limit)
srv:stop()
]=]

describe("the link with its far side killed and started again", function()
  local script

  setup(function()
    script = os.tmpname()
    spit(script, FAR_SCRIPT)
  end)

  teardown(function() os.remove(script) end)

  -- Starts the far process on `port` (0: a free one); its pid and port.
  local function start_far(port)
    local out, pidfile = os.tmpname(), os.tmpname()
    os.execute(string.format("(%s %s %d 60 > %s 2>&1 & echo $! > %s)",
      shell_quote(STREAMLUA_BIN), shell_quote(script), port, shell_quote(out),
      shell_quote(pidfile)))
    local pid = slurp(pidfile, ""):match("%d+")
    os.remove(pidfile)
    local text, got = "", nil
    serve_until(function()
      text = slurp(out, "")
      got = tonumber(text:match("listening (%d+)"))
      return got ~= nil or text:find("Address already in use", 1, true) ~= nil
    end, 30)
    os.remove(out)
    if got == nil then
      if pid then os.execute("kill -9 " .. pid) end
      error(text, 0)
    end
    return pid, got
  end

  it("the link reopens by itself and traffic resumes", function()
   retry_if_port_taken(function()
    local pid, port = start_far(0)
    local cli = UdpRssiPack{port = port, packVer = 2, timeout = 30}
    local m, srp = sl.memory.Master(), sl.srp.SrpV3()
    m:setTimeout(20e6)
    _ = m >> srp
    _ = srp == cli:application(0)
    local gen, chk = sl.utilities.Prbs(), sl.utilities.Prbs()
    _ = gen >> cli:application(1)
    _ = cli:application(1) >> chk
    local function round(v, sent)
      m:writeU32(0x40, v)
      assert.are.equal(v, m:readU32(0x40))
      for _, n in ipairs{16, 1000, 5000, 65536} do gen:genFrame(n) end
      assert.is_true(serve_until(function() return chk:getRxCount() >= sent + 4 end, 60))
      assert.are.equal(0, chk:getRxErrors())
    end
    round(11, 0)
    os.execute("kill -9 " .. pid)
    sl.logging.setEmit(false)
    assert.is_true(serve_until(function() return not cli:getOpen() end, 30))
    local ok, pid2 = pcall(port_again, function(_, p) return (start_far(p)) end, nil, port)
    sl.logging.setEmit(true)
    if not ok then unlink(srp, cli:application(0)); cli:stop(); error(pid2, 0) end
    assert.is_true(cli:waitOpen(30))
    -- a new far side: its registers start afresh; the echo carries on
    -- the PRBS sequence (nothing was sent while the link was down)
    round(22, 4)
    assert.is_true(cli:counters().opens >= 2)
    assert.is_true(cli:counters().rssiDownCount >= 1)
    os.execute("kill -9 " .. pid2)
    unlink(srp, cli:application(0))
    cli:stop()
   end)
  end)
end)
