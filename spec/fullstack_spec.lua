-- The whole register stack across two processes:
--
--   this process                  the far process (a second streamlua)
--   memory.Master                 memory.TcpServer("127.0.0.1", P)
--     >> memory.TcpClient(P)  ==>   >> srp.SrpV3
--                                   == transport (stream TCP or UDP pair)
--                                   == srp.SrpV3Emulation >> faults >> transport
--
-- `faults` plays firmware that reports errors: responses to addresses in
-- 0xE0000000..0xE0002FFF get a footer set, those in 0xE0003000.. are
-- held back (never answered). The far process takes commands from a file
-- it polls and answers on its stdout; it ends by itself when told, when
-- its time is up, or when this process is gone. STREAMLUA_BIN names the
-- binary (default build/streamlua). Every wait is bounded.
local sl = require "streamlua"
local mem = sl.memory

local BIN = STREAMLUA_BIN
local SELF = io.open("/proc/self/stat"):read("l"):match("^%d+")

local FAR_SCRIPT = [=[
local sl = require "streamlua"
local mode, port, ctl, parent = arg[1], tonumber(arg[2]), arg[3], arg[4]
local limit = tonumber(arg[5]) or 180

local function say(s)
  io.stdout:write(s, "\n")
  io.stdout:flush()
end

local srv = sl.memory.TcpServer("127.0.0.1", port)
srv:setTimeout(20e6)                -- a loaded machine is slow, not broken
local srp, emu = sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
_ = srv >> srp

-- firmware faults: footer bits by address window, or no answer at all
local FOOTER = {[0] = 0x100, [1] = 0x2000, [2] = 0x2}
local held = {}
local faults = sl.stream.Slave{acceptFrame = function(self, f)
  local lo, hi = string.unpack("<I4I4", f:read(8, 8))
  local win = hi == 0 and lo >= 0xE0000000 and (lo - 0xE0000000) // 0x1000
  if win == 3 then
    held[#held + 1] = f
    return say("held " .. string.unpack("<I4", f:read(4, 4)))
  elseif FOOTER[win] then
    f:write(string.pack("<I4", FOOTER[win]), #f - 4)
  end
  self:sendFrame(f)
end}

-- the transport: `near` faces SrpV3, `far` faces the emulation
local near, far, farPort
local function far_up()
  if mode == "tcp" then
    far = sl.stream.TcpServer("127.0.0.1", farPort or 0)
  else
    far = sl.udp.Server(farPort or 0, true, "127.0.0.1")
  end
  farPort = far:getPort()
  _ = far >> emu
  _ = faults >> far
end
local function far_down()
  far:stop()
  far:removeSlave(emu)
  faults:removeSlave(far)
end
local function link_ready()
  return mode ~= "tcp" or near:ready()
end

far_up()
if mode == "tcp" then
  near = sl.stream.TcpClient("127.0.0.1", farPort)
  near:setTimeout(0.2)            -- a request to an absent peer is dropped
else
  near = sl.udp.Client("127.0.0.1", farPort, true)
end
_ = srp == near
_ = emu >> faults

local t0 = sl.now()
while not link_ready() and sl.now() - t0 < 20 do sl.sleep(0.01) end
say("listening " .. srv:getPort())

-- commands: one a line, each answered "done <n> <command>" once in effect
local COMMANDS = {
  ["stop-transport"] = function() far_down() end,
  ["start-transport"] = function() far_up() return link_ready end,
  ["server-timeout"] = function(s) srv:setTimeout(tonumber(s) * 1e6) end,   -- s
  ["quit"] = function() sl.stop() end,
}
local seen, waiting = 0, nil
sl.every(0.02, function()
  if waiting then
    if not waiting.check() and sl.now() - waiting.t0 < 20 then return end
    say(string.format("done %d %s", waiting.n, waiting.line))
    waiting = nil
  end
  local f = io.open(ctl)
  local n = 0
  for line in f:lines() do
    n = n + 1
    if n > seen then
      seen = n
      local name, rest = line:match("^(%S+)%s*(.*)$")
      local check = COMMANDS[name](rest)
      if check then
        waiting = {n = n, line = line, check = check, t0 = sl.now()}
        break
      end
      say(string.format("done %d %s", n, line))
    end
  end
  f:close()
end)
sl.every(1, function()
  local p = io.open("/proc/" .. parent .. "/stat")
  if p then p:close() else sl.stop() end
end)
sl.run(limit)
srv:stop()
near:stop()
far:stop()
emu:stop()
say("bye")
]=]

local q = shell_quote

-- Waits (serving the loop) until pattern `pat` appears in the file;
-- returns its first capture, or nil after `limit` seconds.
local function wait_line(path, pat, limit)
  local t0 = sl.now()
  repeat
    local got = slurp(path, ""):match(pat)
    if got then return got end
    sl.sleep(0.02)
  until sl.now() - t0 > (limit or 20)
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local state = f:read("l"):match("^%d+ %b() (%a)")
  f:close()
  return state ~= "Z"
end

local function wait_gone(pid, limit)
  local t0 = sl.now()
  while alive(pid) and sl.now() - t0 < (limit or 20) do sl.sleep(0.02) end
  return not alive(pid)
end

-- The far process's script, written out by each describe's setup.
local script

local function write_script()
  script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(FAR_SCRIPT)
  f:close()
end

-- Starts the far process on memory port `port` (0: free ports); returns
-- a handle with its pid and port (nil port if it did not come up).
local function start_far(mode, port)
  local far = {ctl = os.tmpname(), out = os.tmpname(), err = os.tmpname(), n = 0}
  local pidfile = os.tmpname()
  -- no `timeout` wrapper: $! must be the far process itself
  os.execute(string.format("(%s %s %s %d %s %s 180 > %s 2> %s & echo $! > %s)",
    q(BIN), q(script), mode, port, q(far.ctl), SELF, q(far.out), q(far.err), q(pidfile)))
  far.pid = slurp(pidfile, ""):match("%d+")
  os.remove(pidfile)
  far.port = tonumber(wait_line(far.out, "listening (%d+)\n", 60))
  return far
end

-- Gives the far process a command and waits until it is in effect.
local function command(far, line)
  far.n = far.n + 1
  local f = assert(io.open(far.ctl, "a"))
  f:write(line, "\n")
  f:close()
  return wait_line(far.out, "done (" .. far.n .. ") ", 30) ~= nil
end

local function finish_far(far)
  if far.pid and alive(far.pid) then os.execute("kill -9 " .. far.pid) end
  for _, p in ipairs{far.ctl, far.out, far.err} do os.remove(p) end
end

-- Runs fn, which must raise; returns the message.
local function raises(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "no error raised")
  return tostring(err)
end

for _, mode in ipairs{"tcp", "udp"} do
  local transport = mode == "tcp" and "a stream TcpServer/TcpClient pair"
                                   or "a udp Server/Client pair"

  describe("Master >> memory.TcpClient to TcpServer >> SrpV3 >> " .. transport ..
           " >> SrpV3Emulation in another process", function()
    local far, m, cli, port

    setup(function()
      write_script()
      far = start_far(mode, 0)
      port = assert(far.port, "the far process did not start: " .. slurp(far.err, ""))
      m = mem.Master()
      cli = mem.TcpClient("127.0.0.1", port)
      _ = m >> cli
      m:setTimeout(30e6)
      assert(cli:waitReady(20, 0.1), "no answer from the far process")
    end)

    teardown(function()
      if cli then cli:stop() end
      if far then finish_far(far) end
      os.remove(script)
    end)

    it("carries writes, reads and verifies at several sizes and alignments", function()
      local seed = 0
      for _, size in ipairs{4, 8, 64, 1024, 4096} do
        for _, addr in ipairs{0x0, 0x4, 0xFFC, 0x1FF8, 0x12345670, 0x100000FFC} do
          seed = seed + 1
          local d = pattern(size, seed)
          m:write(addr, d)
          assert.are.equal(d, m:read(addr, size))
          m:verify(addr, d)
        end
      end
      m:writeU32(0x200, 0xDEADBEEF)
      assert.are.equal(0xDEADBEEF, m:readU32(0x200))
      m:writeU64(0x208, 0x0102030405060708)
      assert.are.equal(0x0102030405060708, m:readU64(0x208))
      assert.are.equal(0, m:readU32(0x7000000))           -- never written
      -- a post completes when sent; a read behind it sees its data
      m:post(0x300, "post")
      assert.are.equal("post", m:read(0x300, 4))
      -- many in flight at once, each answered by id
      local got, n = {}, 40
      for i = 1, n do
        m:reqTransaction(0x4000 + 4 * i, string.pack("<I4", i * 3), mem.Write, function(err)
          got[#got + 1] = err or "ok"
        end)
      end
      local t0 = sl.now()
      while #got < n and sl.now() - t0 < 40 do sl.sleep(0.01) end
      assert.are.equal(n, #got)
      for i = 1, n do assert.are.equal("ok", got[i]) end
      for i = 1, n do assert.are.equal(i * 3, m:readU32(0x4000 + 4 * i)) end
      local err = raises(function() m:verify(0x200, "\1\2\3\4") end)
      assert.matches("verify: 4 bytes at 0x00000200: mismatch at byte 0", err, 1, true)
      assert.are.equal(0, cli:pending())
    end)

    it("brings a footer error set at the firmware end to the caller as its text", function()
      assert.matches("read: 4 bytes at 0xe0000000: FPGA register bus timeout detected in hardware",
        raises(function() m:read(0xE0000000, 4) end), 1, true)
      assert.matches("write: 8 bytes at 0xe0001004: FPGA register bus lockup detected in " ..
                     "hardware. Power cycle required.",
        raises(function() m:write(0xE0001004, "abcdefgh") end), 1, true)
      assert.matches("Non zero status message returned on fpga register bus in hardware: 0x2",
        raises(function() m:verify(0xE0002000, "abcd") end), 1, true)
      -- the same stack still serves good addresses
      m:writeU32(0x400, 77)
      assert.are.equal(77, m:readU32(0x400))
    end)

    it("brings SrpV3's refusal of what it cannot carry to the caller", function()
      assert.matches("read: 4 bytes at 0x00020002: Transaction address 0x20002 is not " ..
                     "aligned to min size 4", raises(function() m:read(0x20002, 4) end), 1, true)
      assert.matches("Transaction size 0x6 is not aligned to min size 4",
        raises(function() m:read(0x20000, 6) end), 1, true)
      assert.matches("Transaction size 0x0 is not aligned to min size 4",
        raises(function() m:read(0x20000, 0) end), 1, true)
      assert.matches("writeU16: 2 bytes at 0x00020000: Transaction size 0x2 is not aligned",
        raises(function() m:writeU16(0x20000, 1) end), 1, true)
      assert.matches("write: 4100 bytes at 0x00020000: Transaction size 4100 exceeds max " ..
                     "size 4096", raises(function() m:write(0x20000, pattern(4100, 1)) end), 1, true)
      -- nothing was written by the refused requests
      assert.are.equal(string.rep("\0", 8), m:read(0x20000, 8))
    end)

    it("raises on bad arguments at the Master, naming the function and argument", function()
      local function bad(fn, text)
        assert.matches(text, raises(fn), 1, true)
      end
      bad(function() m:read(-4, 4) end, "bad argument #1 to 'read' (address must not be negative)")
      bad(function() m:read("x", 4) end, "bad argument #1 to 'read' (number expected, got string)")
      bad(function() m:read(0, -1) end, "bad argument #2 to 'read' (value -1 out of range [0, 4294967295])")
      bad(function() m:write(0, {}) end, "bad argument #2 to 'write' (string expected, got table)")
      bad(function() m:verify(0) end, "bad argument #2 to 'verify' (string expected, got no value)")
      bad(function() m:writeU32(0, 1 << 32) end, "bad argument #2 to 'writeU32' (value out of range)")
      bad(function() m:reqTransaction(0, 4, 9, print) end,
          "bad argument #3 to 'reqTransaction' (transaction type expected")
      bad(function() m:reqTransaction(0, 4, mem.Read) end,
          "bad argument #4 to 'reqTransaction' (function expected, got no value)")
      bad(function() m:setTimeout(-1) end, "bad argument #1 to 'setTimeout'")
      bad(function() mem.TcpClient("127.0.0.1", 70000) end,
          "bad argument #2 to 'TcpClient' (port out of range [0, 65534])")
      -- nothing went out, and the bus still works
      assert.are.equal(0, cli:pending())
      m:writeU32(0x500, 5)
      assert.are.equal(5, m:readU32(0x500))
    end)

    it("times out with the far end's cause while the stream transport is down, and recovers",
       function()
      m:writeU32(0x600, 6)
      assert.is_true(command(far, "server-timeout 1"))
      assert.is_true(command(far, "stop-transport"))
      -- SrpV3 there waits 1 s (the TcpServer's timeout) for a response that
      -- cannot come; that failure comes back as the result text
      local err = raises(function() m:readU32(0x600) end)
      assert.matches("readU32: 4 bytes at 0x00000600: Timeout waiting for register transaction",
                     err, 1, true)
      assert.is_nil(err:find("memory.TcpClient", 1, true))   -- not a local timeout
      assert.matches("Timeout waiting for register transaction",
                     raises(function() m:write(0x604, "abcd") end), 1, true)
      assert.is_true(command(far, "start-transport"))
      assert.is_true(command(far, "server-timeout 20"))
      assert.are.equal(6, m:readU32(0x600))
      m:write(0x604, "wxyz")
      assert.are.equal("wxyz", m:read(0x604, 4))
    end)

    it("fails with the connection's cause when the far process dies, and reconnects to a new one",
       function()
      assert.is_true(command(far, "server-timeout 60"))
      m:setTimeout(3e6)
      -- a request in flight when the far process dies (held there, unanswered)
      local r = {}
      local id = m:reqTransaction(0xE0003000, 4, mem.Read, function(e) r.err, r.done = e, true end)
      -- (there SrpV3 serves it as a transaction of the far process's own)
      assert.is_truthy(wait_line(far.out, "held (%d+)\n", 20))
      os.execute("kill -9 " .. far.pid)
      assert.is_true(wait_gone(far.pid))
      local t0 = sl.now()
      while not r.done and sl.now() - t0 < 20 do sl.sleep(0.01) end
      assert.is_true(r.done)
      assert.matches("memory.TcpClient 127.0.0.1:" .. port .. ": no response within 3 s " ..
                     "(request id=" .. id .. " sent)", r.err, 1, true)
      -- with nobody there, a new request is not even sent
      local t1 = sl.now()
      while cli:ready() and sl.now() - t1 < 20 do sl.sleep(0.01) end
      m:setTimeout(500000)
      local err = raises(function() m:readU32(0x700) end)
      assert.matches("readU32: 4 bytes at 0x00000700: Timeout waiting for register transaction",
                     err, 1, true)                   -- Rogue's text, then the cause
      assert.matches("memory.TcpClient 127.0.0.1:" .. port ..
                     ": not connected to the server within 0.5 s", err, 1, true)
      assert.matches("not connected to the server",
        raises(function() m:post(0x700, "abcd") end), 1, true)
      assert.are.equal(0, cli:pending())
      -- a new far process on the same ports: the client connects by itself
      finish_far(far)
      far = start_far(mode, port)
      assert.are.equal(port, far.port, "the far process did not restart: " .. slurp(far.err, ""))
      m:setTimeout(30e6)                 -- the first one waits for the connection
      m:writeU32(0x700, 0x700)
      assert.are.equal(0x700, m:readU32(0x700))
      local d = pattern(4096, 7)
      m:write(0x8000, d)
      assert.are.equal(d, m:read(0x8000, 4096))
      assert.are.equal(0, cli:pending())
    end)

    it("ends the far process cleanly when told", function()
      assert.is_true(command(far, "quit"))
      assert.is_true(wait_gone(far.pid, 30))
      assert.matches("bye\n", slurp(far.out, ""), 1, true)
      local err = slurp(far.err, "")
      assert.is_nil(err:find("Sanitizer", 1, true), err)
      assert.is_nil(err:find("runtime error", 1, true), err)
    end)
  end)
end
