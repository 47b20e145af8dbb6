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
end)
