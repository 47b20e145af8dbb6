-- sl.pyrogue errors: start-time checks, constructor checks, transaction,
-- verify, retry and timeout texts, and where errors are logged (§3.9).
local sl = require "streamlua"
local ph = require "spec.pyrogue_helper"

local pr = sl.pyrogue

local function tree(rec, opts)
  local root = pr.Root{name = "Top", timeout = opts and opts.timeout,
                       initRead = opts and opts.initRead}
  local dev = pr.Device{name = "Dev", offset = 0x1000, memBase = rec.slave}
  root:add(dev)
  return root, dev
end

describe("sl.pyrogue start-time errors", function()
  it("refuses RemoteVariables without a memBase", function()
    local root = pr.Root{name = "Bad"}
    local s = pr.Device{name = "S"}
    root:add(s)
    s:add(pr.RemoteVariable{name = "V", offset = 0})
    assert.has_error(function() root:start() end,
      "Device 'Bad.S' has RemoteVariables or RemoteCommands but no memBase. Pass memBase= when creating this device or when adding it to the tree.")
  end)

  it("checks block sizes against an address-root hub's range", function()
    local rec = ph.recorder()
    local root = pr.Root{name = "HM"}
    local d = pr.Device{name = "D", offset = 0x2000, memBase = rec.slave, hubMin = 4, hubMax = 8}
    root:add(d)
    d:add(pr.RemoteVariable{name = "W", offset = 0, bitSize = 128})
    assert.has_error(function() root:start() end,
      "'Memory Error for HM.D at address 0x002000 Block size 16 is not in the range: 4 - 8'")
  end)

  it("refuses blocks of two devices overlapping on one memBase", function()
    local rec = ph.recorder()
    local root = pr.Root{name = "Ov"}
    local s1 = pr.Device{name = "S1", memBase = rec.slave}
    local s2 = pr.Device{name = "S2", memBase = rec.slave}
    root:add(s1); root:add(s2)
    s1:add(pr.RemoteVariable{name = "Stat", offset = 4, mode = "RO"})
    s2:add(pr.RemoteVariable{name = "Cfg", offset = 4})
    assert.has_error(function() root:start() end,
      "Ov.S2.Cfg at address=0x4 overlaps Ov.S1.Stat at address=0x4 with size=4")
  end)

  it("refuses shared bits unless both variables allow it", function()
    local function try(aOv, bOv)
      local rec = ph.recorder()
      local root = pr.Root{name = "R"}
      local d = pr.Device{name = "D", memBase = rec.slave}
      root:add(d)
      d:add(pr.RemoteVariable{name = "X", offset = 0, bitSize = 8, overlapEn = aOv})
      d:add(pr.RemoteVariable{name = "Y", offset = 0, bitSize = 4, bitOffset = 4, overlapEn = bOv})
      return pcall(root.start, root)
    end
    assert.same({false, "Block::addVariables: General Error: Variable bit overlap detected for block R.D.X with address 0x00000000 and variable Y"},
                {try(false, false)})
    assert.same({false, "Block::addVariables: General Error: Variable bit mask overlap detected for block R.D.X with address 0x00000000"},
                {try(true, false)})
    assert.is_true((try(true, true)))
  end)

  it("sizes a split field from its last piece (Q7)", function()
    local rec = ph.recorder()
    local root, dev = tree(rec)
    dev:add(pr.RemoteVariable{name = "Split", offset = {0x14, 0x10}, bitOffset = {0, 16},
                              bitSize = {8, 8}})
    assert.has_error(function() root:start() end,
      "Block::addVariables: General Error: Variable bit overlap detected for block Top.Dev.Split with address 0x00001010 and variable Split")
  end)

  it("checks constructor arguments", function()
    assert.has_error(function() pr.RemoteVariable{name = "V", offset = 0, mode = "CMD"} end,
                     "Invalid variable mode CMD. Supported: RW, RO, WO")
    assert.has_error(function() pr.RemoteVariable{name = "V", offset = 0, bitSize = 0} end,
                     "BitSize of 0 is invalid")
    assert.has_error(function() pr.RemoteVariable{name = "V", offset = {0, 4}, bitSize = {8, 0}} end,
                     "BitSize of 0 is invalid")
    assert.has_error(function()
      pr.RemoteVariable{name = "V", offset = 0, numValues = 2, valueBits = 16, valueStride = 8}
    end, "ValueBits 16 is greater than valueStrude 8")
    assert.has_error(function()
      pr.RemoteVariable{name = "V", offset = 0, numValues = 2, valueBits = 8, valueStride = 8,
                        bitSize = {8, 8}}
    end, "BitSize array must have a length of one when numValues > 0")
    assert.has_error(function() pr.RemoteVariable{name = "V"} end,
                     "pr.RemoteVariable: argument 'offset' is required")
  end)
end)

describe("sl.pyrogue transaction errors", function()
  it("wraps a transaction error with the block and logs the variable's message", function()
    local rec = ph.recorder()
    rec.fail = function(_, a) if a == 0x1008 then return "boom" end end
    local root, dev = tree(rec)
    dev:add(pr.RemoteVariable{name = "Plain", offset = 8})
    root:start()
    local err
    local logged = ph.captureLog("Top.Dev.Plain", function()
      err = select(2, pcall(dev.Plain.get, dev.Plain))
    end)
    assert.equal("Block::checkTransaction: General Error: Transaction error for block Top.Dev.Plain with address 0x00001008. Error boom", err)
    assert.equal(1, #logged)
    assert.truthy(logged[1]:find("Error reading value from variable Top.Dev.Plain", 1, true))
    logged = ph.captureLog("Top.Dev.Plain", function()
      err = select(2, pcall(dev.Plain.set, dev.Plain, 5))
    end)
    assert.truthy(logged[1]:find("Error setting value 5 to variable Top.Dev.Plain with type UInt32. Exception=Block::checkTransaction", 1, true))
    root:stop()
  end)

  it("reports a verify mismatch with the first differing byte", function()
    local rec = ph.recorder()
    rec.corrupt = function(ty, _, d)
      if ty == sl.memory.Verify then return "\x11" .. d:sub(2) end
    end
    local root, dev = tree(rec)
    dev:add(pr.RemoteVariable{name = "Plain", offset = 8})
    root:start()
    local err
    ph.captureLog("", function() err = select(2, pcall(dev.Plain.set, dev.Plain, 0x10)) end)
    assert.equal("Block::checkTransaction: General Error: Verify error for block Top.Dev.Plain with address 0x00001008. Byte: 0. Got: 0x11, Exp: 0x10, Mask: 0xff", err)
    root:stop()
  end)

  it("compares only verified bits (Q23): RO and verify=false bits are masked", function()
    local rec = ph.recorder()
    rec.corrupt = function(ty, _, d)
      if ty == sl.memory.Verify then return "\xf0\xff" .. d:sub(3) end
    end
    local root, dev = tree(rec)
    dev:add(pr.RemoteVariable{name = "A", offset = 0, bitSize = 4})
    dev:add(pr.RemoteVariable{name = "B", offset = 0, bitSize = 4, bitOffset = 4, mode = "RO"})
    dev:add(pr.RemoteVariable{name = "C", offset = 1, bitSize = 8, verify = false})
    root:start()
    dev.A:set(0)
    assert.equal("\x0f\x00\x00\x00", dev._blocks[1]._mask)
    assert.same({"W 0x1000 4 00000000", "V 0x1000 4 f0ff0000"}, rec:take())
    assert.equal(0, dev.A:value())   -- the shadow keeps the written value
    root:stop()
  end)

  it("reports a failed write only through its verify (Q4)", function()
    local rec = ph.recorder()
    rec.fail = function(ty) if ty == sl.memory.Write then return "lost" end end
    local root, dev = tree(rec)
    dev:add(pr.RemoteVariable{name = "Plain", offset = 8})
    root:start()
    local ok, err = pcall(function()
      ph.captureLog("", function() dev.Plain:set(0x10) end)
    end)
    assert.is_false(ok)
    assert.equal("Block::checkTransaction: General Error: Verify error for block Top.Dev.Plain with address 0x00001008. Byte: 0. Got: 0x00, Exp: 0x10, Mask: 0xff", err)
    root:stop()
  end)

  it("retries retryCount times, logging each try, then raises the last error", function()
    local rec = ph.recorder()
    rec.fail = function(ty) if ty == sl.memory.Write then return "nope" end end
    local root, dev = tree(rec)
    dev:add(pr.RemoteVariable{name = "R", offset = 0xc, retryCount = 2})
    root:start()
    sl.logging.setFilter("pyrogue.memory.block.Top.Dev.R", "Warning")
    local err
    local logged = ph.captureLog("memory.block", function()
      err = select(2, pcall(dev.R.set, dev.R, 1))
    end)
    assert.same({"W 0x100c 4 01000000", "W 0x100c 4 01000000", "W 0x100c 4 01000000"}, rec:take())
    assert.equal("Block::checkTransaction: General Error: Transaction error for block Top.Dev.R with address 0x0000100c. Error nope", err)
    assert.equal(3, #logged)
    assert.truthy(logged[1]:find("WARNING", 1, true))
    assert.truthy(logged[1]:find("Error on try 1 out of 3: Block::checkTransaction", 1, true))
    assert.truthy(logged[3]:find("ERROR", 1, true))
    root:stop()
  end)

  it("fails transactions on an unconnected bus with Rogue's text", function()
    local root = pr.Root{name = "U"}
    root:add(pr.RemoteVariable{name = "V", offset = 0})
    root:start()
    local err
    ph.captureLog("", function() err = select(2, pcall(root.V.get, root.V)) end)
    assert.equal("Block::checkTransaction: General Error: Transaction error for block U.V with address 0x00000000. Error Unsupported transaction using unconnected memory bus", err)
    root:stop()
  end)

  it("times out after the Root's timeout and logs initRead errors without raising", function()
    local rec = ph.recorder()
    rec.hold = true
    local root, dev = tree(rec, {timeout = 0.05, initRead = true})
    dev:add(pr.RemoteVariable{name = "A", offset = 0})
    local logged = ph.captureLog("Root", function() root:start() end)
    assert.is_true(root.running)
    assert.equal(1, #logged)
    assert.truthy(logged[1]:find("Transaction error for block Top.Dev.A with address 0x00001000. Error", 1, true))
    local err
    ph.captureLog("", function() err = select(2, pcall(dev.A.get, dev.A)) end)
    assert.truthy(err:find("^Block::checkTransaction: General Error: Transaction error for block Top.Dev.A"))
    root:stop()
    rec.hold = false
    rec:release()
  end)

  it("raises list errors: overflow, index range, list into a scalar", function()
    local rec = ph.recorder()
    local root, dev = tree(rec)
    dev:add(pr.RemoteVariable{name = "Thresh[0]", offset = 0})
    dev:add(pr.RemoteVariable{name = "L", offset = 4, numValues = 2, valueBits = 8, valueStride = 8})
    root:start()
    local function err(f, ...)
      local args, r = table.pack(...), nil
      ph.captureLog("", function() r = select(2, pcall(f, table.unpack(args, 1, args.n))) end)
      return r
    end
    assert.equal("Block::setUIntPy: General Error: Overflow error for passed list with length 2 at index 0. Variable length = 0 for Thresh[0]",
                 err(dev.Thresh[0].set, dev.Thresh[0], {1, 2}))
    assert.equal("Block::setUIntPy: General Error: Overflow error for passed list with length 2 at index 1. Variable length = 2 for L",
                 err(dev.L.set, dev.L, {1, 2}, {index = 1}))
    assert.equal("Block::setBytes: General Error: Index 2 is out of range for L",
                 err(dev.L.set, dev.L, 1, {index = 2}))
    assert.equal("Block::getBytes: General Error: Index 2 is out of range for L",
                 err(dev.L.get, dev.L, {index = 2, read = false}))
    assert.same({}, rec:take())
    root:stop()
  end)
end)
