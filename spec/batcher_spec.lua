-- sl.batcher: SplitterV1/V2, InverterV1/V2, CombinerV1(width)/V2 from Lua,
-- against the bytes of the batch_* vectors (the C test reads the files).
local sl = require "streamlua"
local batcher = sl.batcher

-- The three frames of every batch_* vector: data, channel, firstUser, lastUser.
local RECS = {{unhex("A1 B2 C3"), 1, 0x02, 0x01},
              {unhex("10 11 12 13 14 15 16 17"), 2, 0, 0},
              {unhex("EE"), 255, 0x33, 0x44}}
local BATCH_V1_W2 = unhex([[21 00 00 00 00 00 00 00 a1 b2 c3 00 00 00 00 00
  03 00 00 00 01 02 01 02 10 11 12 13 14 15 16 17 08 00 00 00 02 00 00 02
  ee 00 00 00 00 00 00 00 01 00 00 00 ff 33 44 02]])
local BATCH_V2 = unhex([[02 00 a1 b2 c3 03 00 00 00 01 02 01 10 11 12 13
  14 15 16 17 08 00 00 00 02 00 00 ee 01 00 00 00 ff 33 44]])

local function send(m, data, ch, fu, lu, err)
  local f = m:reqFrame(#data, true)
  f:write(data)
  f:setChannel(ch or 0)
  f:setFirstUser(fu or 0)
  f:setLastUser(lu or 0)
  if err then f:setError(err) end
  m:sendFrame(f)
end

-- node between a plain master and a collector.
local function rig(node)
  local m, cap, got = sl.stream.Master(), collector()
  _ = m >> node >> cap
  return m, got
end

local function combined(node)
  local m, got = rig(node)
  for _, r in ipairs(RECS) do send(m, table.unpack(r)) end
  assert.are.equal(3, node:getCount())
  node:sendBatch()
  assert.are.equal(0, node:getCount())
  assert.are.equal(1, #got)
  return got[1].data
end

describe("sl.batcher", function()
  it("CombinerV1(2) and CombinerV2() build the vectors' bytes", function()
    assert.are.equal(hex(BATCH_V1_W2), hex(combined(batcher.CombinerV1(2))))
    assert.are.equal(hex(BATCH_V2), hex(combined(batcher.CombinerV2())))
  end)

  it("SplitterV1 and SplitterV2 give back the records with their metadata", function()
    for _, case in ipairs{{batcher.SplitterV1(), BATCH_V1_W2}, {batcher.SplitterV2(), BATCH_V2}} do
      local m, got = rig(case[1])
      send(m, case[2])
      assert.are.equal(3, #got)
      for i, r in ipairs(RECS) do
        assert.are.equal(hex(r[1]), hex(got[i].data))
        assert.are.equal(r[2], got[i].channel)
        assert.are.equal(r[3] | r[4] << 8, got[i].flags)
      end
      local c = case[1]:counters()
      assert.are.equal(1, c.rxFrames)
      assert.are.equal(3, c.txFrames)
    end
  end)

  it("every width round-trips through a combiner and a splitter", function()
    for w = 0, 5 do
      local comb, split = batcher.CombinerV1(w), batcher.SplitterV1()
      local m, cap, got = sl.stream.Master(), collector()
      _ = m >> comb >> split >> cap
      for _, r in ipairs(RECS) do send(m, table.unpack(r)) end
      comb:sendBatch()
      comb:sendBatch()                 -- nothing queued: nothing sent
      assert.are.equal(3, #got)
      assert.are.equal(1, comb:counters().txFrames)
    end
  end)

  it("InverterV1 and InverterV2 rewrite the super-frame as Rogue's do", function()
    local m, got = rig(batcher.InverterV1())
    send(m, BATCH_V1_W2)
    assert.are.equal(hex(unhex([[03 00 00 00 01 02 01 02 a1 b2 c3 00 00 00 00 00
      08 00 00 00 02 00 00 02 10 11 12 13 14 15 16 17 01 00 00 00 ff 33 44 02
      ee 00 00 00 00 00 00 00]])), hex(got[1].data))
    m, got = rig(batcher.InverterV2())
    send(m, BATCH_V2)
    assert.are.equal(hex(unhex([[03 00 a1 b2 c3 08 00 00 00 01 02 01 10 11 12 13
      14 15 16 17 01 00 00 00 02 00 00 ee 01 00 00 00 ff]])), hex(got[1].data))
    -- width 0: header and tail differ in size, nothing comes out
    local inv = batcher.InverterV1()
    m, got = rig(inv)
    send(m, combined(batcher.CombinerV1(0)))
    assert.are.equal(0, #got)
    assert.are.equal(1, inv:counters().skipped)
  end)

  it("counts and logs every refused super-frame, and a record of size 0 is one", function()
    sl.logging.setFilter("pyrogue.batcher", sl.logging.Warning)
    local split = batcher.SplitterV1()
    local m, got = rig(split)
    send(m, BATCH_V1_W2, 0, 0, 0, 1)
    send(m, BATCH_V1_W2:sub(1, 15))
    send(m, "\x23" .. BATCH_V1_W2:sub(2))
    send(m, "\x61" .. BATCH_V1_W2:sub(2))
    send(m, BATCH_V1_W2:sub(1, 48) .. "\xff\xff\xff\xff\xff\x33\x44\x02")
    send(m, "\x01" .. string.rep("\0", 15))
    assert.are.equal(0, #got)
    local c = split:counters()
    assert.are.same({6, 1, 1, 1, 1, 1, 1, 0},
      {c.drops, c.errored, c.short, c.badVersion, c.badWidth, c.noRoom, c.emptyRecord, c.txFrames})
    assert.truthy(logged("batcher.CoreV1: Dropping frame due to error: 0x1"))
    assert.truthy(logged("batcher.CoreV1: Dropping small frame size = 15"))
    assert.truthy(logged("batcher.CoreV1: Version mismatch. Got 3"))
    assert.truthy(logged("batcher.CoreV1: Invalid AXIS Type Detected. Got 6"))
    assert.truthy(logged("Not enough space %(40%) for frame %(4294967296%)"))
    assert.truthy(logged("batcher.CoreV1: Dropping record of size 0 at offset 8"))
    local split2 = batcher.SplitterV2()
    m, got = rig(split2)
    send(m, "\x02\x00" .. string.rep("\0", 10))
    assert.are.equal(0, #got)
    assert.are.equal(1, split2:counters().emptyRecord)
    assert.truthy(logged("batcher.CoreV2: Dropping record of size 0 at offset 5"))
  end)

  it("drops empty frames at the combiner and numbers its super-frames", function()
    local comb = batcher.CombinerV2()
    local m, got = rig(comb)
    send(m, "")
    assert.are.equal(0, comb:getCount())
    assert.are.equal(1, comb:counters().drops)
    for i = 0, 2 do
      send(m, "x", 3)
      comb:sendBatch()
      assert.are.equal(i, got[#got].data:byte(2))
    end
  end)

  it("bound the super-frame at 64 MiB, or lower with setMaxSize: past it a frame is dropped, counted, logged",
    function()
      local comb = batcher.CombinerV2()
      assert.are.equal(64 * 1024 * 1024, comb:getMaxSize())
      -- the vector's super-frame (35 bytes) fits exactly; a fourth frame does not
      comb:setMaxSize(#BATCH_V2)
      assert.are.equal(#BATCH_V2, comb:getMaxSize())
      local m, got = rig(comb)
      local level = sl.logging.getLevel()
      sl.logging.setLevel(sl.logging.Warning)
      sl.logging.setEmit(false)
      for _, r in ipairs(RECS) do send(m, table.unpack(r)) end
      send(m, "x")
      sl.logging.setEmit(true)
      sl.logging.setLevel(level)
      assert.are.equal(3, comb:getCount())
      assert.are.equal(1, comb:counters().drops)
      assert.truthy(logged("ERROR batcher%.CombinerV2: Dropping a 1%-byte frame: " ..
        "the super%-frame would be too large"))
      comb:sendBatch()
      assert.are.equal(hex(BATCH_V2), hex(got[1].data))
      assert.has_error(function() comb:setMaxSize(64 * 1024 * 1024 + 1) end,
        "bad argument #1 to 'setMaxSize' (bytes from the header's size to 67108864 expected)")
      assert.has_error(function() comb:setMaxSize(1) end)
      assert.has_error(function() comb:setMaxSize("big") end)
      assert.are.equal(#BATCH_V2, comb:getMaxSize())
    end)

  it("raises on misuse, naming the argument", function()
    assert.has_error(function() batcher.CombinerV1(6) end,
      "bad argument #1 to 'CombinerV1' (Invalid width 6 (0 to 5))")
    assert.has_error(function() batcher.CombinerV1(-1) end)
    assert.has_error(function() batcher.CombinerV1("x") end)
    assert.has_error(function() batcher.CombinerV1() end)
    assert.has_error(function() batcher.CombinerV1.sendBatch(batcher.SplitterV1()) end,
      "bad argument #1 to 'sendBatch' (batcher combiner expected, got streamlua.batcher.SplitterV1)")
    assert.has_error(function() batcher.CombinerV2.getCount(42) end)
  end)

  it("shows in the graph with its kind and counters", function()
    local split, comb = batcher.SplitterV2(), batcher.CombinerV1(1)
    _ = comb >> split
    assert.are.equal("batcher.SplitterV2", split:kind())
    assert.are.equal("batcher.CombinerV1", comb:kind())
    for _, k in ipairs{"SplitterV1", "SplitterV2", "InverterV1", "InverterV2"} do
      assert.are.equal("batcher." .. k, batcher[k]():kind())
    end
    local found = 0
    for _, n in ipairs(sl.graph().nodes) do
      if rawequal(n.object, split) or rawequal(n.object, comb) then
        found = found + 1
        assert.is_number(n.counters.drops)
      end
    end
    assert.are.equal(2, found)
  end)
end)
