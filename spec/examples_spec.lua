-- Every example runs here, so none of them rots.
local bin = STREAMLUA_BIN

-- Runs the program on an example; its output (stderr merged) and exit code.
local function example(cmd)
  local out, _, rc = run(bin .. " " .. cmd, {timeout = 30, merged = true})
  return out, rc
end

describe("examples", function()
  it("demo.lua moves frames and reports them", function()
    local out, rc = example("examples/demo.lua 2000 128")
    assert.are.equal(0, rc, out)
    assert.matches("sent     2000 frames of 128 bytes", out)
    assert.matches("sink     2000 frames, 256000 bytes %(pool: 0 buffers live%)", out)
    assert.matches("checker  2000 frames, 0 out of order or wrong size", out)
  end)

  it("demo.lua runs with its defaults", function()
    local out, rc = example("examples/demo.lua")
    assert.are.equal(0, rc, out)
    assert.matches("sent     1000 frames of 256 bytes", out)
  end)

  it("fanout.lua shows secondaries first and the primary last", function()
    local out, rc = example("examples/fanout.lua")
    assert.are.equal(0, rc, out)
    assert.matches("slaves: 3", out)
    assert.matches("delivery order: monitorB%(64%) monitorA%(64%) primary%(64%)", out)
    assert.matches("payload after send: 0", out)
  end)

  it("monitor_tap.lua checks every frame and samples a few", function()
    local out, rc = example("examples/monitor_tap.lua 0.6 4096")
    assert.are.equal(0, rc, out)
    local gen = tonumber(out:match("generated (%d+) frames"))
    local checked, errors = out:match("checked   (%d+) frames, (%d+) errors")
    assert.is_true(gen > 0)
    assert.are.equal(gen, tonumber(checked))
    assert.are.equal("0", errors)
    assert.matches("main fifo 0 dropped", out)
    local sampled = tonumber(out:match("debug     (%d+) frames sampled"))
    assert.is_true(sampled >= 1 and sampled < gen)   -- about one per 0.1 s
    assert.matches("debug: seq %d+, 64 bytes kept of a 4096%-byte frame", out)
    assert.matches("gen %-> main%*, tap", out)
  end)

  it("axiversion.lua drives a register tree over SrpV3 to an emulated firmware", function()
    local out, rc = example("examples/axiversion.lua 2")
    assert.are.equal(0, rc, out)
    assert.matches("FpgaVersion 0x2030400\n", out)
    assert.matches("BuildStamp  AxiVersion: Vivado v2023.1, emulated, streamlua\n", out)
    assert.matches("ScratchPad  0x001234 %(read back 0x1234%)\n", out)
    assert.matches("note: hello from the tree\n", out)
    assert.matches("%d%d:%d%d:%d%d Top%.AxiVersion: UpTimeCnt=%d+ seconds\n", out)
    local up = tonumber(out:match("UpTimeCnt   (%d+) seconds %(polled%)"))
    assert.is_true(up >= 2, out)
    assert.matches("Device%(Top%.AxiVersion%)\n  enable       True\n  FpgaVersion  0x2030400\n" ..
                   "  ScratchPad   0x001234\n  UpTimeCnt    %d+ seconds\n  UserReset%(%)\n" ..
                   "  BuildStamp   AxiVersion: Vivado v2023%.1, emulated, streamlua\n" ..
                   "  Note         hello from the tree\n", out)
    assert.matches("\nTop%.AxiVersion %-> SrpV3%*\n", out)
    assert.matches("\nTop%.AxiVersion@0x800 %-> Top%.AxiVersion%*", out)
    assert.matches("\nSrpV3 %-> SrpV3Emulation%*", out)
  end)

  it("axiversion_tcp.lua runs the tree and the firmware in two processes", function()
    local dir = temp_dir()
    local srvOut = dir .. "/server.out"
    -- the server in the background (it bounds its own run); the client
    -- once it listens; then SIGTERM to the server (each wait bounded)
    local p = assert(io.popen(string.format([[
      %s examples/axiversion_tcp.lua server 0 60 >%s 2>&1 &
      pid=$!
      i=0; until grep -q listening %s || [ $i -ge 3000 ]; do sleep 0.01; i=$((i+1)); done
      port=$(sed -n 's/^listening //p' %s)
      timeout 60 %s examples/axiversion_tcp.lua client "$port" 2 2>&1
      echo "@client=$?"
      kill -TERM $pid
      i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done
      if kill -0 $pid 2>/dev/null; then kill -9 $pid; fi
      wait $pid; echo "@server=$?"]], shell_quote(bin), shell_quote(srvOut), shell_quote(srvOut),
      shell_quote(srvOut), shell_quote(bin))))
    local out = p:read("a")
    p:close()
    local srv = slurp(srvOut, "")
    remove_dir(dir)
    assert.matches("@client=0\n", out)
    assert.matches("@server=0\n", out)
    assert.matches("ScratchPad  0x001234 %(read back 0x1234%)\n", out)
    assert.matches("UpTimeCnt   %d+ seconds %(polled%)", out)
    assert.matches("  FpgaVersion  0x2030400\n", out)
    assert.matches("\nTop%.AxiVersion %-> TcpClient%*\n", out)
    assert.matches("^listening %d+\nserved (%d+) requests\n$", srv)
    assert.is_true(tonumber(srv:match("served (%d+)")) >= 10, srv)
  end)
end)

-- Runs a server example in the background until it prints "listening
-- <port>" (its arguments bound its run), then `client` (a command where
-- "$port" is the port) in the foreground; then SIGTERM to the server
-- unless it ends by itself (each wait bounded). Returns the client's output (its exit code as
-- "@client=N"), the server's exit code as "@server=N", and the server's output.
local function serverAndClient(server, client, terminate)
  local dir = temp_dir()
  local srvOut = dir .. "/server.out"
  local p = assert(io.popen(string.format([[
    %s %s >%s 2>&1 &
    pid=$!
    i=0; until grep -q listening %s || [ $i -ge 3000 ]; do sleep 0.01; i=$((i+1)); done
    port=$(sed -n 's/^listening //p' %s)
    timeout 60 %s %s 2>&1
    echo "@client=$?"
    %s
    i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done
    if kill -0 $pid 2>/dev/null; then kill -9 $pid; fi
    wait $pid; echo "@server=$?"]], shell_quote(bin), server, shell_quote(srvOut),
    shell_quote(srvOut), shell_quote(srvOut), shell_quote(bin), client,
    terminate and "kill -TERM $pid" or "")))
  local out = p:read("a")
  p:close()
  local srv = slurp(srvOut, "")
  remove_dir(dir)
  return out, srv
end

describe("examples of the register bus and the echo clients", function()
  it("register_srp.lua reads and writes registers through SrpV3 to an emulation", function()
    local out, rc = example("examples/register_srp.lua 50")
    assert.are.equal(0, rc, out)
    assert.matches("registers   50 written and read back, 0 wrong\n", out, 1, true)
    assert.matches("64-bit      0x0123456789abcdef\n", out, 1, true)
    assert.matches('block       "register bus over SRPv3!"\n', out, 1, true)
    assert.matches("verify      ok\n", out, 1, true)
    assert.matches("split       10240 bytes in 3 requests, read back equal\n", out, 1, true)
    assert.matches("callback    ok 0xa5000000\n", out, 1, true)
    assert.matches("error       readU32: 4 bytes at 0x00001002: Transaction address 0x1002 " ..
                   "is not aligned to min size 4\n", out, 1, true)
    -- 100 registers, 2 of 64 bits, 3 of the block, 6 split, 1 callback: all answered
    assert.matches("SrpV3       112 requests, 112 responses, 0 errors, 0 drops\n", out, 1, true)
    assert.matches("\ncpu -> SrpV3*\n", out, 1, true)
    assert.matches("\ndma -> hub*\n", out, 1, true)
  end)

  it("register_bridge.lua runs the register bus across two processes", function()
    -- 400 round trips through both processes' threads, one after another:
    -- under qemu-user or a sanitizer on a loaded host one of them can take
    -- longer than Rogue's 1 s, so there each gets 10 s
    local slow = os.getenv("STREAMLUA_EMULATOR") or os.getenv("STREAMLUA_SANITIZED")
    local out, srv = serverAndClient("examples/register_bridge.lua server 0 60",
                                     "examples/register_bridge.lua client \"$port\" 200" ..
                                     (slow and " 10" or ""), true)
    assert.matches("@client=0\n", out, 1, true)
    assert.matches("@server=0\n", out, 1, true)
    assert.matches("registers   200 written and read back, 0 wrong\n", out, 1, true)
    assert.matches("pipelined   200 reads answered, 0 in flight\n", out, 1, true)
    assert.matches("block       904 bytes written and verified\n", out, 1, true)
    assert.matches("\ncpu -> TcpClient*", out, 1, true)
    assert.matches("^listening %d+\nmemory      2 pages of 4 KiB written\n$", srv)
  end)

  it("tcp_echo_client.lua checks every frame tcp_echo.lua echoes, then stops it", function()
    local out, srv = serverAndClient("examples/tcp_echo.lua 0 50",
                                     "examples/tcp_echo_client.lua \"$port\" 500 3000")
    assert.matches("@client=0\n", out, 1, true)
    assert.matches("@server=0\n", out, 1, true)
    assert.matches("sent 500 frames of 3000 bytes, 500 echoed, 0 wrong, [%d.]+ MB/s both ways\n", out)
    assert.matches("^listening %d+\nechoed 500 frames\n$", srv)
  end)

  it("udp_echo_client.lua checks every datagram udp_echo.lua echoes, then stops it", function()
    local out, srv = serverAndClient("examples/udp_echo.lua 0 50",
                                     "examples/udp_echo_client.lua \"$port\" 500 1000")
    assert.matches("@client=0\n", out, 1, true)
    assert.matches("@server=0\n", out, 1, true)
    local resent = out:match("sent 500 datagrams of 1000 bytes, 500 echoed, 0 wrong, (%d+) sent again, [%d.]+ MB/s both ways\n")
    assert.is_truthy(resent, out)
    -- the server echoed each datagram it got: each once, a resent one again
    -- unless the first was lost on the way there
    local echoed = tonumber(srv:match("^listening %d+\nechoed (%d+) frames\n$"))
    assert.is_true(echoed >= 500 and echoed <= 500 + tonumber(resent), srv)
  end)

  it("a client without a server says so and exits 1", function()
    local out, rc = example("examples/tcp_echo_client.lua 1 1 8 0")
    assert.are.equal(1, rc, out)
    assert.matches("no server on port 1", out, 1, true)
    out, rc = example("examples/tcp_echo_client.lua")
    assert.are.equal(2, rc, out)
    assert.matches("usage: tcp_echo_client.lua PORT", out, 1, true)
  end)
end)

describe("the porting guide's scripts", function()
  it("port_stream.lua moves and checks PRBS frames and counts them", function()
    local out, rc = example("examples/port_stream.lua")
    assert.are.equal(0, rc, out)
    assert.are.equal("checked 1000 frames, 0 errors\ncounted 1000 frames, 1024000 bytes\n" ..
                     "counted 1001 frames, 1024005 bytes\n", out)
  end)

  it("port_register.lua drives a tree over an emulated memory", function()
    local out, rc = example("examples/port_register.lua")
    assert.are.equal(0, rc, out)
    assert.matches("^note: \n4660\t0x001234\n2\tFast\nnote: hello\n0\tC\nTop:\n", out)
    assert.matches("\n  Regs:\n    enable: True\n    ScratchPad: 0x001234\n    Mode: Fast\n" ..
                   "    Note: hello\n", out, 1, true)
  end)

  it("port_udp_srp.lua drives a tree over SRPv3 over UDP", function()
    local out, rc = example("examples/port_udp_srp.lua")
    assert.are.equal(0, rc, out)
    assert.are.equal("0xcafe\t300\nFpga:\n  enable: True\n  Scratch: 0xcafe\n  Thresh[0]: 0x0\n" ..
                     "  Thresh[1]: 0x64\n  Thresh[2]: 0xc8\n  Thresh[3]: 0x12c\n\n", out)
  end)

  it("the README quotes them as they are", function()
    local readme = slurp("README.md")
    local section = readme:match("\n## Porting guide\n(.-)\n## ")
    assert.is_truthy(section, "no Porting guide section")
    local quoted = {}
    for name, code in section:gmatch("`examples/([%w_]+%.lua)`[^\n]*\n+```lua\n(.-)```") do
      local file = slurp("examples/" .. name)
      assert.is_truthy(file:find(code, 1, true), name .. " is not quoted as it is")
      quoted[#quoted + 1] = name
    end
    assert.same({"port_stream.lua", "port_register.lua", "port_udp_srp.lua"}, quoted)
  end)
end)
