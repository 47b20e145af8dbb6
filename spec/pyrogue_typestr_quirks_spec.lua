-- sl.pyrogue: a variable's typeStr (§2.1), and quirks Q24 (error texts
-- print a block's address as its low 32 bits) and Q26 (Double has no range
-- check; integer bounds are compared as doubles) in a started tree.
local sl = require "streamlua"
local ph = require "spec.pyrogue_helper"

local pr = sl.pyrogue

local function tree(offset)
  local rec = ph.recorder()
  local root = pr.Root{name = "Top"}
  local dev = pr.Device{name = "Dev", offset = offset or 0x1000, memBase = rec.slave}
  root:add(dev)
  return root, dev, rec
end

describe("sl.pyrogue typeStr", function()
  it("is the Model's name for a scalar", function()
    local _, dev = tree()
    dev:add{
      pr.RemoteVariable{name = "U", offset = 0x0},
      pr.RemoteVariable{name = "I", offset = 0x4, bitSize = 8, base = pr.Int},
      pr.RemoteVariable{name = "B", offset = 0x8, bitSize = 1, base = pr.Bool},
      pr.RemoteVariable{name = "S", offset = 0x10, bitSize = 64, base = pr.String},
      pr.RemoteVariable{name = "Be", offset = 0x18, base = pr.UIntBE},
      pr.RemoteVariable{name = "F", offset = 0x1c, base = pr.Float},
      pr.RemoteVariable{name = "D", offset = 0x20, bitSize = 64, base = pr.Double},
      pr.RemoteVariable{name = "Fx", offset = 0x28, bitSize = 16, base = pr.Fixed(16, 8)},
      pr.RemoteVariable{name = "W", offset = 0x30, bitSize = 128},
    }
    local got = {}
    for _, n in ipairs{"U", "I", "B", "S", "Be", "F", "D", "Fx", "W"} do got[#got + 1] = dev[n].typeStr end
    assert.same({"UInt32", "Int8", "Bool", "String(8)", "UIntBE32", "Float32", "Double64",
                  "Fixed_16_8", "UInt128"}, got)
  end)

  it("is the numpy type of the list's Model and its length for a list", function()
    local _, dev = tree()
    local function list(name, off, n, bits, stride, base)
      dev:add(pr.RemoteVariable{name = name, offset = off, numValues = n, valueBits = bits,
                                valueStride = stride, base = base})
      return dev[name].typeStr
    end
    -- the §2.5 lists: 4 x 8 bits, 8 Bool bits, 2 x 12-bit Int
    assert.equal("uint32(4,)", list("Tbl", 0x40, 4, 8, 16))
    assert.equal("bool(8,)", list("Bits", 0x28, 8, 1, 1, pr.Bool))
    assert.equal("int32(2,)", list("Pair", 0x30, 2, 12, 16, pr.Int))
    assert.equal("uint32(2,)", list("Words", 0x50, 2, 32, 32))
    assert.equal("uint64(2,)", list("Wide", 0x60, 2, 40, 64))
    assert.equal("int64(2,)", list("SWide", 0x70, 2, 64, 64, pr.Int))
    assert.equal("uint32(2,)", list("Big", 0x80, 2, 16, 16, pr.UIntBE))
    assert.equal("float32(2,)", list("Fl", 0x90, 2, 32, 32, pr.Float))
    assert.equal("float64(2,)", list("Db", 0xa0, 2, 64, 64, pr.Double))
    assert.equal("float64(2,)", list("Fix", 0xb0, 2, 16, 16, pr.Fixed(16, 8)))
  end)

  it("is not the type an unindexed get returns (Q10)", function()
    local root, dev, rec = tree()
    dev:add(pr.RemoteVariable{name = "Tbl", offset = 0x40, numValues = 4, valueBits = 8,
                              valueStride = 16})
    root:start()
    rec:poke(0x1040, ph.unhex("0100020003000400"))
    assert.same({1, 2, 3, 4}, dev.Tbl:get())
    assert.equal("uint32(4,)", dev.Tbl.typeStr)
    root:stop()
  end)
end)

describe("sl.pyrogue Q24: error texts print a block address's low 32 bits", function()
  it("in a transaction error, a verify error and an overlap error", function()
    local root, dev, rec = tree(0x100001000)
    rec.fail = function(_, a) if a == 0x100001008 then return "boom" end end
    rec.corrupt = function(ty, a, d)
      if ty == sl.memory.Verify and a == 0x100001004 then return "\x11" .. d:sub(2) end
    end
    dev:add(pr.RemoteVariable{name = "A", offset = 0x4})
    dev:add(pr.RemoteVariable{name = "B", offset = 0x8})
    root:start()
    assert.equal(0x100001008, dev.B.address)
    local errs = {}
    ph.captureLog("", function()
      errs[1] = select(2, pcall(dev.B.get, dev.B))
      errs[2] = select(2, pcall(dev.A.set, dev.A, 0x10))
    end)
    assert.equal("Block::checkTransaction: General Error: Transaction error for block Top.Dev.B " ..
                 "with address 0x00001008. Error boom", errs[1])
    assert.equal("Block::checkTransaction: General Error: Verify error for block Top.Dev.A " ..
                 "with address 0x00001004. Byte: 0. Got: 0x11, Exp: 0x10, Mask: 0xff", errs[2])
    -- the bus saw the whole address
    assert.same({"R 0x100001008 4", "W 0x100001004 4 10000000", "V 0x100001004 4 11000000"},
                rec:take())
    root:stop()
    local root2, dev2 = tree(0x200003000)
    dev2:add(pr.RemoteVariable{name = "X", offset = 0x0, bitSize = 8})
    dev2:add(pr.RemoteVariable{name = "Y", offset = 0x0, bitSize = 8, bitOffset = 4})
    local ok, err = pcall(root2.start, root2)
    assert.is_false(ok)
    assert.equal("Block::addVariables: General Error: Variable bit overlap detected for block " ..
                 "Top.Dev.X with address 0x00003000 and variable Y", err)
  end)
end)

describe("sl.pyrogue Q26: Double has no range check; integer bounds are doubles", function()
  it("a Double takes any float, infinities too, with no range error", function()
    local root, dev, rec = tree()
    dev:add(pr.RemoteVariable{name = "D", offset = 0x20, bitSize = 64, base = pr.Double})
    root:start()
    assert.equal(-math.huge, dev.D.minimum)
    assert.equal(math.huge, dev.D.maximum)
    for _, v in ipairs{1.7e308, -1.7e308, math.huge, -math.huge} do
      dev.D:set(v)
      assert.equal(v, dev.D:get())
    end
    local log = rec:take()
    assert.equal("W 0x1020 8 " .. ph.hex(string.pack("<d", 1.7e308)), log[1])
    assert.equal("W 0x1020 8 000000000000f07f", log[7])     -- +inf on the bus
    root:stop()
  end)

  it("a 64-bit UInt's maximum is 2^64 as a double: every 64-bit value passes", function()
    local root, dev, rec = tree()
    dev:add(pr.RemoteVariable{name = "U", offset = 0x0, bitSize = 64})
    root:start()
    assert.equal(2.0 ^ 64, dev.U.maximum)
    dev.U:set("0xffffffffffffffff")
    assert.equal("W 0x1000 8 ffffffffffffffff", rec:take()[1])
    assert.equal("0xffffffffffffffff", dev.U:get())
    dev.U:set(math.maxinteger)
    assert.equal(math.maxinteger, dev.U:get())
    root:stop()
  end)

  it("a value that rounds onto a given bound passes; beyond the rounding it is refused", function()
    local root, dev, rec = tree()
    dev:add(pr.RemoteVariable{name = "U", offset = 0x0, bitSize = 64, maximum = 1 << 53})
    dev:add(pr.RemoteVariable{name = "I", offset = 0x8, bitSize = 64, base = pr.Int,
                              minimum = -(1 << 53), maximum = 1 << 53})
    root:start()
    dev.U:set((1 << 53) + 1)                    -- 2^53 + 1 is 2^53 as a double
    dev.I:set(-(1 << 53) - 1)
    rec:take()
    local ok, err
    ph.captureLog("", function() ok, err = pcall(dev.U.set, dev.U, (1 << 53) + 2) end)
    assert.is_false(ok)
    assert.equal("Block::setUInt: General Error: Value range error for U. Value=9007199254740994, " ..
                 "Min=0.000000, Max=9007199254740992.000000", err)
    ph.captureLog("", function() ok, err = pcall(dev.I.set, dev.I, (1 << 53) + 2) end)
    assert.is_false(ok)
    assert.equal("Block::setInt: General Error: Value range error for I. Value=9007199254740994, " ..
                 "Min=-9007199254740992.000000, Max=9007199254740992.000000", err)
    assert.same({}, rec:take())
    root:stop()
  end)
end)
