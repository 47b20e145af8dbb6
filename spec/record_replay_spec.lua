-- examples/record_replay.lua, run with the streamlua program: it records a
-- stream into split files and replays them through a checking Lua slave.
-- The example's output (stderr merged) and exit code.
local function record_replay(args)
  local out, _, rc = run(STREAMLUA_BIN .. " examples/record_replay.lua " .. args, {merged = true})
  return out, rc
end

describe("examples/record_replay.lua", function()
  it("records, splits, replays and checks every frame", function()
    local out, rc = record_replay("1000 100 16384")
    assert.are.equal(0, rc, out)
    assert.matches("recorded 1000 frames, 100000 bytes of payload, 108000 bytes in 7 files", out)
    -- 151 records of 108 bytes fit in 16384; the rest go in the last file
    assert.matches("files    16308 16308 16308 16308 16308 16308 10152\n", out)
    assert.matches("replayed 1000 frames, 100000 bytes of payload from 7 files\n", out)
    assert.matches("checked  1000 frames, 100000 bytes, 0 mismatches", out)
  end)

  it("runs with its defaults", function()
    local out, rc = record_replay("")
    assert.are.equal(0, rc, out)
    assert.matches("replayed 1000 frames, 100000 bytes of payload from 7 files", out)
  end)

  it("exits non-zero when a replayed frame does not match", function()
    local out, rc = record_replay("300 64 4096 corrupt")
    assert.are.equal(1, rc, out)
    assert.matches("recorded 300 frames, 19200 bytes of payload, 21600 bytes in 6 files", out)
    assert.matches("checked  300 frames, 19200 bytes, 1 mismatches", out)
  end)
end)
