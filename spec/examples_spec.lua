-- Every example runs here, so none of them rots.
local bin = os.getenv("STREAMLUA_BIN") or "build/streamlua"

local function run(cmd)
  local p = io.popen("timeout 30 " .. bin .. " " .. cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out, rc
end

describe("examples", function()
  it("demo.lua moves frames and reports them", function()
    local out, rc = run("examples/demo.lua 2000 128")
    assert.are.equal(0, rc, out)
    assert.matches("sent     2000 frames of 128 bytes", out)
    assert.matches("sink     2000 frames, 256000 bytes %(pool: 0 buffers live%)", out)
    assert.matches("checker  2000 frames, 0 out of order or wrong size", out)
  end)

  it("demo.lua runs with its defaults", function()
    local out, rc = run("examples/demo.lua")
    assert.are.equal(0, rc, out)
    assert.matches("sent     1000 frames of 256 bytes", out)
  end)

  it("fanout.lua shows secondaries first and the primary last", function()
    local out, rc = run("examples/fanout.lua")
    assert.are.equal(0, rc, out)
    assert.matches("slaves: 3", out)
    assert.matches("delivery order: monitorB%(64%) monitorA%(64%) primary%(64%)", out)
    assert.matches("payload after send: 0", out)
  end)
end)
