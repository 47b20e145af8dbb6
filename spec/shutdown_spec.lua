-- Stopping always wins: whatever the graph's shape (blocked downstreams,
-- absent peers, cycles), the end of a script, sl.stop(), stop() on one
-- object and SIGTERM return; Ctrl-C interrupts a call that waits on behalf
-- of Lua with the error "interrupted". Each case runs in a child
-- `streamlua` process under an outer bound: a hang shows as exit 124.

local BIN = STREAMLUA_BIN

local q = shell_quote

describe("stopping", function()
  local dir

  setup(function()
    dir = temp_dir()
  end)

  teardown(function()
    remove_dir(dir)
  end)

  -- Writes `body` as a script (arg[1] = the spec's scratch directory) and
  -- runs it. With `signal`, the signal is sent once the script has printed
  -- "ready" (looked for up to 30 s). Returns stdout, stderr, exit code; a
  -- run still going 20 s after its signal (or 30 s after it began) is
  -- killed and exits 124.
  local function run(body, signal, interp)
    local s, out, err = dir .. "/s.lua", dir .. "/out", dir .. "/err"
    os.remove(out)             -- "ready" must come from this run
    os.remove(err)
    spit(s, "local sl = require 'streamlua'\nlocal dir = arg[1]\n" .. body)
    local cmd
    if signal then
      cmd = string.format([[
%s %s %s >%s 2>%s </dev/null & pid=$!
i=0; while [ $i -lt 300 ] && ! grep -q ready %s; do sleep 0.1; i=$((i+1)); done
kill -%s $pid
i=0; while [ $i -lt 200 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i+1)); done
if kill -0 $pid 2>/dev/null; then kill -9 $pid; wait $pid; echo 124; else wait $pid; echo $?; fi]],
        interp or q(BIN), q(s), q(dir), q(out), q(err), q(out), signal)
    else
      cmd = string.format("timeout -s KILL 30 %s %s %s >%s 2>%s </dev/null; r=$?; " ..
                          "[ $r = 137 ] && r=124; echo $r",
                          q(BIN), q(s), q(dir), q(out), q(err))
    end
    local p = assert(io.popen(cmd))
    local rc = tonumber(p:read("a"):match("(%d+)%s*$"))
    p:close()
    return slurp(out, ""), slurp(err, ""), rc
  end

  -- A generator feeding a Fifo(100, 0, true) into `dst`, made by the
  -- script text `make`; the script ends while frames flow (or wait).
  local function feeding(make, tail)
    return [[
local gen = sl.utilities.Prbs()
local fifo = sl.stream.Fifo(100, 0, true)
]] .. make .. [[

_ = gen >> fifo >> dst
gen:enable(65536)
sl.sleep(0.2)
]] .. (tail or "") .. [[

print("end")
]]
  end

  local shapes = {
    ["a TcpClient to a TcpServer in the same process"] = [[
local srv = sl.stream.TcpServer("127.0.0.1", 0)
local dst = sl.stream.TcpClient("127.0.0.1", srv:getPort())
local chk = sl.utilities.Prbs()
_ = srv >> chk]],
    ["a TcpClient whose server never came"] = [[
local dst = sl.stream.TcpClient("127.0.0.1", 1)]],
    ["a TcpServer no client reached"] = [[
local dst = sl.stream.TcpServer("127.0.0.1", 0)]],
    ["a udp.Server no client reached"] = [[
local dst = sl.udp.Server(0, false)]],
    ["a udp.Client"] = [[
local srv = sl.udp.Server(0, false)
local dst = sl.udp.Client("127.0.0.1", srv:getPort(), false)]],
    ["a Prbs with rx disabled"] = [[
local dst = sl.utilities.Prbs()
dst:setRxEnable(false)]],
    ["a cycle of two Fifos and an absent peer"] = [[
local a, b = sl.stream.Fifo(10, 0, true), sl.stream.Fifo(10, 0, true)
_ = a >> b >> a
_ = b >> sl.stream.TcpClient("127.0.0.1", 1)
local dst = a]],
  }

  for name, make in pairs(shapes) do
    describe("a Fifo feeding " .. name, function()
      it("lets the script end", function()
        local out, err, rc = run(feeding(make))
        assert.are.equal(0, rc, err)
        assert.are.equal("end\n", out)
      end)

      it("returns from fifo:stop()", function()
        local out, err, rc = run(feeding(make, 'fifo:stop(); print("stopped")'))
        assert.are.equal(0, rc, err)
        assert.are.equal("stopped\nend\n", out)
      end)

      it("returns from the generator's stop()", function()
        local out, err, rc = run(feeding(make, 'gen:stop(); print("stopped")'))
        assert.are.equal(0, rc, err)
        assert.are.equal("stopped\nend\n", out)
      end)

      it("stops on SIGTERM in sl.run()", function()
        local out, err, rc = run(feeding(make, 'print("ready"); io.stdout:flush(); sl.run()'),
                                 "TERM")
        assert.are.equal(0, rc, err)
        assert.are.equal("ready\nend\n", out)
      end)
    end)
  end

  it("lets a script end while a StreamReader's downstream waits for a peer", function()
    local out, err, rc = run([[
local w = sl.utilities.StreamWriter()
w:open(dir .. "/rec.dat")
local g = sl.utilities.Prbs()
_ = g >> w:getChannel(0)
for _ = 1, 50 do g:genFrame(1024) end
w:close()
local r = sl.utilities.StreamReader()
_ = r >> sl.stream.TcpClient("127.0.0.1", 1)
r:open(dir .. "/rec.dat")
sl.sleep(0.2)
print("end")
]])
    assert.are.equal(0, rc, err)
    assert.are.equal("end\n", out)
  end)

  it("lets a script end while a bridge's delivery thread waits downstream", function()
    local out, err, rc = run([[
local srv = sl.stream.TcpServer("127.0.0.1", 0)
local cli = sl.stream.TcpClient("127.0.0.1", srv:getPort())
local chk = sl.utilities.Prbs()
chk:setRxEnable(false)
_ = srv >> chk
local g = sl.utilities.Prbs()
_ = g >> cli
for _ = 1, 20 do g:genFrame(1024) end
sl.sleep(0.2)
print("end")
]])
    assert.are.equal(0, rc, err)
    assert.are.equal("end\n", out)
  end)

  it("ends sl.run() on sl.stop() from a timer while frames wait for a peer", function()
    local out, err, rc = run(feeding([[
local dst = sl.stream.TcpClient("127.0.0.1", 1)]], [[
sl.after(0.1, function() sl.stop() end)
sl.run()]]))
    assert.are.equal(0, rc, err)
    assert.are.equal("end\n", out)
  end)

  describe("Ctrl-C", function()
    local blocking = {
      ["sendFrame into a TcpClient with no server"] = [[
local m = sl.stream.Master()
_ = m >> sl.stream.TcpClient("127.0.0.1", 1)
print("ready"); io.stdout:flush()
m:sendFrame(m:reqFrame(100))]],
      ["waitFrameCount without a timeout"] = [[
local w = sl.utilities.StreamWriter()
w:open(dir .. "/w.dat")
print("ready"); io.stdout:flush()
w:getChannel(0):waitFrameCount(10)]],
      ["a memory readU32 whose slave never answers"] = [[
local srv = sl.memory.TcpServer("127.0.0.1", 0)
local cli = sl.memory.TcpClient("127.0.0.1", srv:getPort())
local m = sl.memory.Master()
_ = m >> cli
_ = srv >> sl.memory.Slave{doTransaction = function() end}
m:setTimeout(100e6)
print("ready"); io.stdout:flush()
m:readU32(0)]],
      ["a memory _waitTransaction whose slave never answers"] = [[
local m = sl.memory.Master()
_ = m >> sl.memory.Slave{doTransaction = function() end}
m:setTimeout(100e6)
local id = m:_reqTransaction(0, 4, sl.memory.Read)
print("ready"); io.stdout:flush()
m:_waitTransaction(id)]],
      ["removeSlave while a Fifo's delivery waits for a peer"] = [[
local cli = sl.stream.TcpClient("127.0.0.1", 1)
local fifo = sl.stream.Fifo(10, 0, true)
local m = sl.stream.Master()
_ = m >> fifo >> cli
m:sendFrame(m:reqFrame(10))
sl.sleep(0.2)
print("ready"); io.stdout:flush()
fifo:removeSlave(cli)]],
      ["waitReady of a memory TcpClient with no server"] = [[
local cli = sl.memory.TcpClient("127.0.0.1", 1)
print("ready"); io.stdout:flush()
cli:waitReady(1000, 10)]],
      ["sendFrame from a timer inside sl.run()"] = [[
local m = sl.stream.Master()
_ = m >> sl.stream.TcpClient("127.0.0.1", 1)
sl.after(0, function() print("ready"); io.stdout:flush(); m:sendFrame(m:reqFrame(10)) end)
sl.run()
print("after run")]],
    }

    for name, body in pairs(blocking) do
      it("interrupts " .. name, function()
        local out, err, rc = run(body, "INT")
        if body:find("sl.run()", 1, true) then
          -- the loop's own Ctrl-C: a clean stop; the callback was interrupted
          assert.are.equal(0, rc, err)
          assert.are.equal("ready\nafter run\n", out)
        else
          assert.are.equal(1, rc, err)
          assert.are.equal("ready\n", out)
        end
        assert.truthy(err:find("interrupted"), err)
      end)
    end

    it("interrupts a blocked sendFrame under the plain lua5.4 interpreter", function()
      if os.getenv("STREAMLUA_SANITIZED") then return end   -- the module needs its runtime
      local build = os.getenv("STREAMLUA_BUILD") or "build"
      local out, err, rc = run(blocking["sendFrame into a TcpClient with no server"], "INT",
                               "LUA_CPATH=" .. q(build .. "/?.so;;") .. " lua5.4")
      assert.are.equal(1, rc, err)
      assert.are.equal("ready\n", out)
      assert.truthy(err:find("interrupted"), err)
    end)

    it("at the REPL ends the blocked call and the session goes on", function()
      local fifo, out, err = dir .. "/in", dir .. "/repl.out", dir .. "/repl.err"
      local cmd = string.format([[
mkfifo %s
%s -i <%s >%s 2>%s & pid=$!
(sleep 30 && kill -9 $pid) >/dev/null 2>&1 & dog=$!
exec 3>%s
printf 'm = sl.stream.Master(); _ = m >> sl.stream.TcpClient("127.0.0.1", 1)\n' >&3
printf 'print("ready"); io.stdout:flush(); m:sendFrame(m:reqFrame(8))\n' >&3
i=0; while [ $i -lt 300 ] && ! grep -q ready %s; do sleep 0.1; i=$((i+1)); done
sleep 0.3; kill -INT $pid
printf 'print("alive")\n' >&3
exec 3>&-
wait $pid; r=$?; kill $dog 2>/dev/null; echo $r]], q(fifo), q(BIN), q(fifo), q(out), q(err), q(fifo), q(out))
      local p = assert(io.popen(cmd))
      local rc = tonumber(p:read("a"):match("(%d+)%s*$"))
      p:close()
      local o, e = slurp(out, ""), slurp(err, "")
      assert.are.equal(0, rc, e)
      assert.truthy(o:find("ready\n", 1, true), o)
      assert.truthy(o:find("alive\n", 1, true), o)
      assert.truthy(e:find("interrupted"), e)
    end)
  end)
end)
