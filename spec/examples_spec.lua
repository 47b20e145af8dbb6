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
