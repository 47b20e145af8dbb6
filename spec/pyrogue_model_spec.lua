-- streamlua.pyrogue.model: Models, Python's str.format, Python literals and
-- the display helpers. Expected strings come from python3 (the generated
-- fixture) and from the pyrogue reference's tables.
local model = require "streamlua.pyrogue.model"
local fixture = dofile("spec/fixtures/pyrogue_model_fixture.lua")

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function unhex(h) return (h:gsub("%s", ""):gsub("..", function(b) return string.char(tonumber(b, 16)) end)) end

-- the exact error text of f(...)
local function err(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  return e
end

-- deep equality that tells -0.0 from 0.0 and treats nan as equal to nan
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false end
    if a ~= a then return b ~= b end
    return a == b and (a ~= 0 or 1 / a == 1 / b)
  end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

describe("pyrogue models", function()
  it("are cached instances with pyrogue's names, types and ranges", function()
    local M = model
    assert.are.equal(M.UInt(32), M.UInt(32))
    assert.are.equal(M.Fixed(16, 8), M.Fixed(16, 8))
    assert.are_not.equal(M.UInt(32), M.UIntBE(32))
    local rows = {
      {M.UInt(32), "UInt32", "int", "{:#x}", 0, 0xffffffff, true},
      {M.Int(8), "Int8", "int", "{:d}", -128, 127, true},
      {M.UIntBE(32), "UIntBE32", "int", "{:#x}", 0, 0xffffffff, true},
      {M.IntBE(16), "IntBE16", "int", "{:d}", -32768, 32767, true},
      {M.UIntReversed(8), "UIntReversed8", "int", "{:#x}", 0, 255, true},
      {M.String(64), "String(8)", "str", "{}", nil, nil, false},
      {M.Bytes(32), "Bytes(4)", "bytes", "{}", nil, nil, false},
      {M.Float(32), "Float32", "float", "{:f}", -3.4e38, 3.4e38, true},
      {M.FloatBE(32), "FloatBE32", "float", "{:f}", -3.4e38, 3.4e38, true},
      {M.Double(64), "Double64", "float", "{:f}", -math.huge, math.huge, true},
      {M.DoubleBE(64), "DoubleBE64", "float", "{:f}", -math.huge, math.huge, true},
      {M.Fixed(16, 8), "Fixed_16_8", "float", "{}", -128.0, 32767 / 256, true},
      {M.UFixed(16, 4), "UFixed_16_4", "float", "{}", 0.0, 65535 / 16, true},
      {M.Fixed(8, 4), "Fixed_8_4", "float", "{}", -8.0, 7.9375, true},
      {M.UInt(128), "UInt128", "int", "{:#x}", nil, nil, false},
      {M.UInt(64), "UInt64", "int", "{:#x}", 0, 2.0 ^ 64 - 1, true},
      {M.Int(64), "Int64", "int", "{:d}", math.mininteger, math.maxinteger, true},
    }
    for _, r in ipairs(rows) do
      local m = r[1]
      assert.are.equal(r[2], m.typeStr)
      assert.are.equal(r[2], m.name)
      assert.are.equal(r[3], m.pytype)
      assert.are.equal(r[4], m.defaultDisp)
      assert.are.equal(r[5], m.minValue)
      assert.are.equal(r[6], m.maxValue)
      assert.are.equal(r[7], m.isInt)
    end
    local b = M.Bool(1)
    assert.are.equal("Bool", b.typeStr)
    assert.are.equal("bool", b.pytype)
    assert.are.same({[false] = "False", [true] = "True"}, b.defaultDisp)
    assert.is_true(M.UIntBE(32).bigEndian and not M.UInt(32).bigEndian)
    assert.are.equal(8, M.Fixed(16, 8).binPoint)
    assert.are.equal("The bitSize param of Model Bool must be 1", err(M.Bool, 2):match("The .*"))
    assert.are.equal("The bitSize param of Model Float must be 32", err(M.Float, 64):match("The .*"))
    assert.are.equal("The bitSize param of Model Double must be 64", err(M.Double, 32):match("The .*"))
    assert.is_truthy(err(M.UInt, 0):find("bitSize", 1, true))
    assert.is_truthy(err(M.Fixed, 16):find("binPoint", 1, true))
  end)

  it("resolves classes with the field width and uses instances as given", function()
    assert.are.equal(model.UInt(12), model.resolve(model.UInt, 12))
    assert.are.equal(model.Fixed(16, 8), model.resolve(model.Fixed(16, 8), 32))
    assert.is_true(model.isClass(model.UInt) and not model.isClass(model.UInt(8)))
    assert.is_true(model.isModel(model.UInt(8)) and not model.isModel(model.UInt))
    assert.is_truthy(err(model.resolve, "UInt", 8):find("resolve", 1, true))
  end)

  it("limits a variable's minimum and maximum to the model's", function()
    local u = model.UInt(16)
    assert.are.same({0, 65535}, {u:limits(nil, nil)})
    assert.are.same({0, 100}, {u:limits(-5, 100)})
    assert.are.same({10, 65535}, {u:limits(10, 70000)})
    assert.are.same({-1, 5}, {model.String(8):limits(-1, 5)})
    assert.are.same({nil, nil}, {model.String(8):limits(nil, nil)})
  end)

  -- §2.5 of the reference: value -> bits of the field (raw as the block takes it)
  it("converts the reference's worked examples to raw bits", function()
    local M = model
    local function le(raw, nbits)   -- the field bytes of an integer raw
      local nb = (nbits + 7) // 8
      return hex(string.pack("<i8", raw):sub(1, nb))
    end
    assert.are.equal("78563412", le(M.UInt(32):toRaw(0x12345678, 32), 32))
    assert.are.equal("fd", le(M.Int(8):toRaw(-3, 8), 8))
    assert.are.equal("452301efcdab", le(M.UInt(48):toRaw(0xABCDEF012345, 48), 48))
    assert.are.equal("68656c6c6f000000", hex(M.String(64):toRaw("hello", 64)))
    assert.are.equal("6162636465666700", hex(M.String(64):toRaw("abcdefghij", 64)))
    assert.are.equal("80fe", le(M.Fixed(16, 8):toRaw(-1.5, 16), 16))
    assert.are.equal("00ffffff", le(M.Fixed(16, 8):toRaw(-1.0, 32), 32))   -- Q8
    assert.are.equal("cdcccc3d", le(M.Float(32):toRaw(0.1, 32), 32))
    assert.are.equal("00000000000004c0", le(M.Double(64):toRaw(-2.5, 64), 64))
    assert.are.equal("11223344", le(M.UIntBE(32):toRaw(0x11223344, 32), 32))
    assert.are.equal("0a0c", le(M.UIntBE(12):toRaw(0xABC, 12) & 0xfff, 12))   -- Q9
    assert.are.equal("80", le(M.UIntReversed(8):toRaw(1, 8), 8))
    assert.are.equal("01", le(M.Bool(1):toRaw(true, 1), 1))
    assert.are.equal("00", le(M.Bool(1):toRaw(false, 1), 1))
    assert.are.equal("3412" .. string.rep("00", 13) .. "80",
                     hex(M.UInt(128):toRaw("0x80000000000000000000000000001234", 128)))
    assert.are.equal("0500" .. string.rep("00", 14), hex(M.UInt(128):toRaw(5, 128)))
    assert.are.equal(string.rep("ff", 12), hex(M.Int(96):toRaw(-1, 96)))
    assert.are.equal("0000803f", le(M.FloatBE(32):toRaw(4.600602988224807e-41, 32), 32))
    assert.are.equal("3f800000", le(M.FloatBE(32):toRaw(1.0, 32), 32))
    assert.are.equal("3ff0000000000000", le(M.DoubleBE(64):toRaw(1.0, 64), 64))
    assert.are.equal("01020304", hex(M.Bytes(32):toRaw("\1\2\3\4\5", 32)))
    assert.are.equal("0102000000", hex(M.Bytes(40):toRaw("\1\2", 40)))
    local r72 = M.UIntReversed(72)
    assert.are.equal("000000000000000080", hex(r72:toRaw(1, 72)))
    assert.are.equal("000000000000008001", hex(r72:toRaw(0x180, 72)))
    assert.are.equal(0x180, r72:fromRaw(r72:toRaw(0x180, 72), 72))
    assert.are.equal(1, r72:fromRaw(unhex("000000000000000080"), 72))
  end)

  it("converts the reference's read-back examples to values", function()
    local M = model
    assert.are.equal(2, M.UInt(3):fromRaw(2, 3))
    assert.are.equal(-3, M.Int(8):fromRaw(0xfd, 8))
    assert.are.equal(-3, M.Int(8):fromRaw(-3, 8))        -- getInt's sign-extended raw too
    assert.are.equal(-1, M.Int(12):fromRaw(0xfff, 12))
    assert.are.equal(0xabcdef012345, M.UInt(48):fromRaw(0xabcdef012345, 48))
    assert.are.equal("hello", M.String(64):fromRaw(unhex("68656c6c6f000000")))
    assert.are.equal(-1.5, M.Fixed(16, 8):fromRaw(0xfe80, 16))
    assert.are.equal(-0.0625, M.Fixed(8, 4):fromRaw(0xff, 8))
    assert.are.equal(-1.0, M.Fixed(16, 8):fromRaw(0xffffff00, 32))
    assert.are.equal(0x11223344, M.UIntBE(32):fromRaw(0x44332211, 32))
    assert.are.equal(0xa0c, M.UIntBE(12):fromRaw(0xc0a, 12))
    assert.are.equal(-2, M.IntBE(32):fromRaw(0xfeffffff, 32))
    assert.are.equal(1, M.UIntReversed(8):fromRaw(0x80, 8))
    assert.are.equal(0.10000000149011612, M.Float(32):fromRaw(0x3dcccccd, 32))
    assert.are.equal(-2.5, M.Double(64):fromRaw(string.unpack("<i8", unhex("00000000000004c0")), 64))
    assert.are.equal(1.0, M.DoubleBE(64):fromRaw(0xf03f, 64))
    assert.is_true(M.Bool(1):fromRaw(1, 1))
    assert.is_false(M.Bool(1):fromRaw(0, 1))
    local raw128 = unhex("3412" .. string.rep("00", 13) .. "80")
    local v = M.UInt(128):fromRaw(raw128, 128)
    assert.are.equal("0x80000000000000000000000000001234", v)
    assert.are.equal("0x80000000000000000000000000001234", model.format("{:#x}", v))
    assert.are.equal(5, M.UInt(128):fromRaw("\5" .. string.rep("\0", 15), 128))
    assert.are.equal(-1, M.Int(96):fromRaw(string.rep("\255", 12), 96))
    assert.are.equal("-0x800000000000000000000000", M.Int(96):fromRaw(string.rep("\0", 11) .. "\128", 96))
    assert.are.equal(-1, M.Int(70):fromRaw(string.rep("\255", 8) .. "\63", 70))
    assert.are.equal("0xffffffffffffffff", M.UInt(64):fromRaw(-1, 64))
    assert.are.equal(-1, M.UInt(64):toRaw("0xffffffffffffffff", 64))
    assert.are.equal(math.maxinteger, M.UInt(64):fromRaw(math.maxinteger, 64))
    assert.are.equal(math.mininteger, M.Int(64):fromRaw(math.mininteger, 64))
    assert.are.equal("\1\2", M.Bytes(16):fromRaw("\1\2"))
  end)

  it("converts big values to and from bytes", function()
    assert.are.equal("0x80000000000000000000000000001234",
                     model.bigFromBytes("\x34\x12" .. string.rep("\0", 13) .. "\x80", false))
    assert.are.equal("-0x80000000000000000000000000000000",
                     model.bigFromBytes(string.rep("\0", 15) .. "\x80", true))
    assert.are.equal(-1, model.bigFromBytes("\xff\xff", true))
    assert.are.equal(65535, model.bigFromBytes("\xff\xff", false))
    assert.are.equal("\xff\xff\xff", model.bigToBytes(-1, 3, true))
    assert.are.equal("\1\0\0\0\0\0\0\0\1", model.bigToBytes("0x10000000000000001", 9, false))
    assert.are.same({nil, "int too big to convert"}, {model.bigToBytes(256, 1, false)})
    assert.are.same({nil, "can't convert negative int to unsigned"}, {model.bigToBytes(-1, 1, false)})
    assert.is_true(model.isBig("-0x1f"))
    assert.is_false(model.isBig("0x"))
    assert.is_false(model.isBig(5))
  end)

  it("round-trips every width of UInt and Int", function()
    for n = 1, 64 do
      local u, s = model.UInt(n), model.Int(n)
      local umax = n == 64 and -1 or (1 << n) - 1
      local smin = -(1 << (n - 1))
      for _, v in ipairs({0, 1, umax, umax >> 1}) do
        local raw = u:toRaw(v, n) & umax
        local back = u:fromRaw(raw, n)
        if n == 64 and v < 0 then assert.are.equal("0xffffffffffffffff", back)
        else assert.are.equal(v, back) end
      end
      for _, v in ipairs({0, -1, smin, ~smin}) do
        local raw = s:toRaw(v, n)
        if n < 64 then raw = raw & ((1 << n) - 1) end
        assert.are.equal(v, s:fromRaw(raw, n))
      end
    end
  end)

  it("matches Python's single-precision round trips", function()
    local f = model.Float(32)
    for _, c in ipairs(fixture.float32) do
      assert.are.equal(c[2], f:toRaw(c[1], 32))
      assert.is_true(same(c[3], f:fromRaw(c[2], 32)))
    end
  end)

  it("rounds Fixed halves away from zero", function()
    for _, c in ipairs(fixture.fixed) do
      local n, b, v, raw, bits, back = table.unpack(c)
      local m = model.Fixed(n, b)
      assert.are.equal(raw, m:toRaw(v, n))
      assert.are.equal(back, m:fromRaw(bits, n))
    end
    assert.are.equal(17, model.Fixed(8, 4):toRaw(1.03125, 8))
    assert.are.equal(1.0625, model.Fixed(8, 4):fromRaw(17, 8))
    assert.are.equal(-1, model.Fixed(8, 4):toRaw(-0.03125, 8))
    assert.are.equal(3, model.roundHalfAway(2.5))
    assert.are.equal(-3, model.roundHalfAway(-2.5))
    assert.are.equal(40, model.UFixed(8, 4):toRaw(2.5, 8))
    assert.are.equal(15.9375, model.UFixed(8, 4):fromRaw(0xff, 8))
  end)
end)

describe("pyrogue model checks", function()
  it("raise the reference's range and type texts", function()
    local M = model
    local u16 = M.UInt(16)
    assert.are.equal("Block::setUInt: General Error: Value range error for Half. Value=70000, " ..
                     "Min=0.000000, Max=65535.000000", err(u16.check, u16, 70000, 0, 65535, "Half"))
    assert.are.equal("can't convert negative value to unsigned int", err(u16.check, u16, -1, 0, 65535, "Half"))
    assert.are.equal("Block::setUIntPy: General Error: Failed to extract value for Half.",
                     err(u16.check, u16, 1.5, 0, 65535, "Half"))
    assert.are.equal("Block::setUIntPy: General Error: Failed to extract value for Half.",
                     err(u16.check, u16, 2.0, 0, 65535, "Half"))
    assert.are.equal("Block::setUIntPy: General Error: Failed to extract value for Half.",
                     err(u16.check, u16, "abc", 0, 65535, "Half"))
    u16:check(65535, 0, 65535, "Half")
    u16:check(true, 0, 65535, "Half")
    u16:check(70000, 0, 0, "Half")       -- no check when both are zero
    local i8 = M.Int(8)
    assert.are.equal("Block::setInt: General Error: Value range error for X. Value=-129, " ..
                     "Min=-128.000000, Max=127.000000", err(i8.check, i8, -129, -128, 127, "X"))
    assert.are.equal("Block::setIntPy: General Error: Failed to extract value for X.",
                     err(i8.check, i8, 0.5, -128, 127, "X"))
    i8:check(-128, -128, 127, "X")
    local f = M.Float(32)
    assert.are.equal("Block::setFloat: General Error: Value range error for F. Value=2.500000, " ..
                     "Min=0.000000, Max=2.000000", err(f.check, f, 2.5, 0, 2, "F"))
    assert.are.equal("Block::setFloatPy: General Error: Failed to extract value for F.",
                     err(f.check, f, "x", -3.4e38, 3.4e38, "F"))
    f:check(5, -3.4e38, 3.4e38, "F")
    local d = M.Double(64)
    d:check(1e308, -math.huge, math.huge, "D")
    d:check(0 / 0, -math.huge, math.huge, "D")
    assert.are.equal("Block::setDouble: General Error: Value range error for D. Value=-1.000000, " ..
                     "Min=0.000000, Max=1.000000", err(d.check, d, -1.0, 0, 1, "D"))
    local x = M.Fixed(8, 4)
    assert.are.equal("Block::setFixed: General Error: Value range error for Fx. Value=7.990000, " ..
                     "Min=-8.000000, Max=7.937500", err(x.check, x, 7.99, x.minValue, x.maxValue, "Fx"))
    assert.are.equal("Block::setFixed: General Error: Value range error for Fx. Value=8.000000, " ..
                     "Min=-8.000000, Max=7.937500", err(x.check, x, 8.0, x.minValue, x.maxValue, "Fx"))
    assert.is_truthy(err(x.check, x, 8.0, 0, 0, "Fx"):find(
      "^Block::setFixed: General Error: Fixed point overflow for Fx%. Value=8%.000000"))
    local uf = M.UFixed(8, 4)
    assert.are.equal("Block::setUFixed: General Error: Value range error for U. Value=-1.000000, " ..
                     "Min=0.000000, Max=15.937500", err(uf.check, uf, -1.0, uf.minValue, uf.maxValue, "U"))
    assert.are.equal("Block::setUFixed: General Error: Unsigned fixed-point underflow for U. " ..
                     "Value=-1.000000", err(uf.check, uf, -1.0, 0, 0, "U"))
    local b = M.Bool(1)
    b:check(true, 0, 1, "B"); b:check(1, 0, 1, "B")
    assert.are.equal("Block::setBoolPy: General Error: Failed to extract value for B.",
                     err(b.check, b, "True", 0, 1, "B"))
    local s = M.String(64)
    s:check("abc", nil, nil, "S")
    assert.are.equal("Block::setStringPy: General Error: Failed to extract value for S.",
                     err(s.check, s, 5, nil, nil, "S"))
  end)

  it("compare the 64-bit UInt maximum as a double (Q26)", function()
    local u = model.UInt(64)
    u:check(math.maxinteger, 0, 2.0 ^ 64 - 1, "W")
    u:check("0xffffffffffffffff", 0, 2.0 ^ 64 - 1, "W")
    assert.are.equal("can't convert negative value to unsigned int",
                     err(u.check, u, "-0x1", 0, 2.0 ^ 64 - 1, "W"))
  end)

  it("check wide integers by their byte width", function()
    local u = model.UInt(128)
    u:check("0xffffffffffffffffffffffffffffffff", nil, nil, "W")
    assert.are.equal("int too big to convert",
                     err(u.check, u, "0x1ffffffffffffffffffffffffffffffff", nil, nil, "W"))
    assert.are.equal("can't convert negative value to unsigned int", err(u.check, u, -1, nil, nil, "W"))
    local i = model.Int(96)
    i:check(-1, nil, nil, "W")
    i:check("-0x800000000000000000000000", nil, nil, "W")
    assert.are.equal("int too big to convert", err(i.check, i, "0x800000000000000000000000", nil, nil, "W"))
  end)
end)

describe("model.format", function()
  it("matches Python's str.format on the fixture", function()
    local bad = {}
    for _, c in ipairs(fixture.format) do
      local fmt, value, want, werr, big = c[1], c[2], c[3], c[4], c[5]
      local ok, got = pcall(model.format, fmt, value, big and "int" or nil)
      if model.isBig(value) and not big and fmt:match("[dnxXobc]}$") then
        -- a str that reads as a big int is formatted as one where Python raises
        assert.is_true(ok)
      elseif want ~= nil then
        if not ok or got ~= want then
          bad[#bad + 1] = string.format("%q %s: want %q got %q", fmt, model.repr(value), want, tostring(got))
        end
      elseif ok or got ~= werr then
        bad[#bad + 1] = string.format("%q %s: want error %q got %q", fmt, model.repr(value), werr, tostring(got))
      end
    end
    assert.are.equal("", table.concat(bad, "\n"))
  end)

  it("formats the cases of the brief", function()
    local F = model.format
    assert.are.equal("0x1234", F("{:#x}", 0x1234))
    assert.are.equal("0x001234", F("{:#08x}", 0x1234))
    assert.are.equal("5 counts", F("{:d} counts", 5))
    assert.are.equal("0.10000000149011612", F("{}", model.Float(32):fromRaw(0x3dcccccd)))
    assert.are.equal("[1, 2]", F("{}", {1, 2}))
    assert.are.equal("None", F("{}", nil))
    assert.are.equal("{}", F("{{}}", 1))
    assert.are.equal("340282366920938463463374607431768211455",
                     F("{:d}", "0xffffffffffffffffffffffffffffffff"))
    assert.are.equal("0x1234", F("{}", "0x1234"))               -- a str stays a str
    assert.are.equal("4660", F("{}", "0x1234", "int"))          -- unless the type is int
    assert.is_truthy(err(F, 5):find("format", 1, true))
  end)

  it("repr gives Python's shortest round-trip floats", function()
    for _, c in ipairs(fixture.format) do
      if c[1] == "{}" and math.type(c[2]) == "float" then
        assert.are.equal(c[3], model.repr(c[2]))
      end
    end
    assert.are.equal("'it\\'s \"x\"'", model.repr("it's \"x\""))
    assert.are.equal("[1, 'a', [True], 0.5]", model.repr({1, "a", {true}, 0.5}))
    assert.are.equal("{1: 'x', 'a': 2.0}", model.repr({[1] = "x", a = 2.0}))
  end)
end)

describe("model.literal", function()
  it("evaluates Python literals like ast.literal_eval", function()
    local bad = {}
    for _, c in ipairs(fixture.literal) do
      local s, want, etype, emsg = c[1], c[2], c[3], c[4]
      local ok, got = pcall(model.literal, s)
      if etype == nil then
        if not ok or not same(want, got) then
          bad[#bad + 1] = string.format("%q: want %s got %s", s, model.repr(want), ok and model.repr(got) or got)
        end
      elseif ok or got ~= emsg then
        bad[#bad + 1] = string.format("%q: want error %q got %s", s, emsg, ok and model.repr(got) or got)
      end
    end
    assert.are.equal("", table.concat(bad, "\n"))
  end)

  it("rejects what is not a string", function()
    assert.is_truthy(err(model.literal, 5):find("literal", 1, true))
  end)
end)

describe("display helpers", function()
  -- f's result and the last log record's message
  local function logged(f)
    local sl = require "streamlua"
    sl.logging.setFilter("pyrogue.Variable.ModelSpec", sl.logging.Warning)
    sl.logging.setEmit(false)
    local ok, e = pcall(f)
    sl.logging.setEmit(true)
    local h = sl.logging.history(1)
    return ok, e, h[1] and h[1]:match("^%S+ %S+ [^:]+: (.*)$")
  end

  it("build enums from disp, enum and value (§4.1)", function()
    local e, r, d = model.enumFrom({[0] = "Off", [1] = "On"}, nil, nil)
    assert.are.same({[0] = "Off", [1] = "On"}, e)
    assert.are.same({Off = 0, On = 1}, r)
    assert.are.equal("enum", d)
    e, r, d = model.enumFrom({0, 1, 2}, nil, nil)
    assert.are.same({[0] = "0", [1] = "1", [2] = "2"}, e)
    assert.are.same({["0"] = 0, ["1"] = 1, ["2"] = 2}, r)
    e, r, d = model.enumFrom("{}", nil, true)
    assert.are.same({[false] = "False", [true] = "True"}, e)
    assert.are.same({False = false, True = true}, r)
    assert.are.equal("enum", d)
    e, r, d = model.enumFrom("{:#x}", {[1] = "A", [2] = "B"}, 1)
    assert.are.same({A = 1, B = 2}, r)
    assert.are.equal("enum", d)
    e, r, d = model.enumFrom("{:#x}", nil, 5)
    assert.is_nil(e); assert.is_nil(r)
    assert.are.equal("{:#x}", d)
    e, r, d = model.enumFrom(model.Bool(1).defaultDisp, nil, nil)
    assert.are.same({[false] = "False", [true] = "True"}, e)
  end)

  it("genDisp formats values, lists and enums", function()
    local var = {disp = "{:#08x}", path = "ModelSpec.Dev.V", name = "V"}
    assert.are.equal("0x001234", model.genDisp(var, 0x1234))
    assert.are.equal("[0x000001, 0x000002]", model.genDisp({disp = "{:#08x}", numValues = 2}, {1, 2}))
    assert.are.equal("[1, 2]", model.genDisp({disp = "{}", nativeType = "list"}, {1, 2}))
    assert.are.equal("['a', 'b']", model.genDisp({disp = "{}", nativeType = "list"}, {"a", "b"}))
    assert.are.equal("[enum, enum]", model.genDisp({disp = "enum", enum = {}, numValues = 2}, {true, false}))
    assert.are.equal("", model.genDisp({disp = ""}, 5))
    local e, r = model.enumFrom({[0] = "Off", [1] = "On"})
    local ev = {disp = "enum", enum = e, revEnum = r, path = "ModelSpec.Dev.E", name = "E"}
    assert.are.equal("On", model.genDisp(ev, 1))
    assert.are.equal("On", model.genDisp(ev, true))       -- True == 1
    local bv = {disp = "enum", enum = {[false] = "False", [true] = "True"}, path = "ModelSpec.Dev.B"}
    assert.are.equal("True", model.genDisp(bv, true))
    assert.are.equal("False", model.genDisp(bv, 0))
    local ok, text, rec = logged(function() return model.genDisp(ev, 3) end)
    assert.is_true(ok)
    assert.are.equal("INVALID: 3", text)
    assert.are.equal("Invalid enum value 3 in variable 'ModelSpec.Dev.E'", rec)
    assert.are.equal("0x80000000000000000000000000001234",
                     model.genDisp({disp = "{:#x}"}, "0x80000000000000000000000000001234"))
    assert.are.equal("0.100000", model.genDisp({disp = "{:f}"}, 0.1))
    local ok2, e2, rec2 = logged(function() return model.genDisp({disp = "{:d}", path = "ModelSpec.Dev.F"}, 0.5) end)
    assert.is_false(ok2)
    assert.are.equal("Unknown format code 'd' for object of type 'float'", e2)
    assert.are.equal("Error generating disp for value 0.5 with type <class 'float'> in variable ModelSpec.Dev.F", rec2)
  end)

  it("parseDisp parses as pyrogue does (§4.2)", function()
    local iv = {disp = "{:#x}", name = "V", path = "ModelSpec.Dev.V", pytype = "int"}
    assert.are.equal(16, model.parseDisp(iv, "0x10"))
    assert.are.equal(5, model.parseDisp(iv, 5))                -- non-strings unchanged
    assert.are.equal(4095, model.parseDisp({disp = "{:d}", pytype = "int"}, "0xFFF"))
    assert.are.same({1, 2}, model.parseDisp(iv, "[1, 2]"))
    assert.are.equal("0x10", model.parseDisp({disp = "{}", pytype = "str", name = "S"}, "0x10"))
    local e, r = model.enumFrom({[0] = "Off", [1] = "On"})
    local ev = {disp = "enum", enum = e, revEnum = r, name = "E", path = "ModelSpec.Dev.E", pytype = "int"}
    assert.are.equal(1, model.parseDisp(ev, "On"))
    local ok, msg, rec = logged(function() return model.parseDisp(ev, "Maybe") end)
    assert.is_false(ok)
    assert.are.equal("Invalid value Maybe for variable E with type <class 'int'>: 'Maybe'", msg)
    assert.are.equal(msg, rec)
    ok, msg = logged(function() return model.parseDisp(iv, "abc") end)
    assert.are.equal("Invalid value abc for variable V with type <class 'int'>: " ..
                     "malformed node or string on line 1: <ast.Name object>", msg)
    local lv = {disp = "{}", name = "L", numValues = 4, pytype = "int"}
    assert.are.same({1, 2, 3}, model.parseDisp(lv, "[1, 2, 3]"))
    assert.are.equal(7, model.parseDisp(lv, "7"))
    ok, msg = logged(function() return model.parseDisp(lv, "[1,") end)
    assert.are.equal("Invalid value [1, for variable L with type <class 'numpy.ndarray'>: " ..
                     "'[' was never closed (<unknown>, line 1)", msg)
    local blv = {disp = "enum", name = "B", numValues = 2, pytype = "bool"}
    assert.are.same({true, false}, model.parseDisp(blv, "[1, 0]"))
    local fv = {disp = "{:f}", name = "F", model = model.Float(32)}
    assert.are.equal(1.5, model.parseDisp(fv, "1.5"))
    assert.are.equal(true, model.parseDisp({disp = "enum", revEnum = {True = true, False = false}}, "True"))
  end)
end)

describe("hostile input", function()
  -- an error from the parser itself names no Lua source position
  local function clean(f, ...)
    local ok, e = pcall(f, ...)
    if not ok then
      assert.are.equal("string", type(e))
      assert.is_nil(e:find("model.lua:", 1, true), e)
    end
    return ok, e
  end

  it("literal: nesting and digit counts are bounded as Python bounds them", function()
    assert.are.equal(200, #(function()
      local t = model.literal(string.rep("[", 200) .. string.rep("]", 200))
      local n = 0
      while type(t) == "table" do n = n + 1; t = t[1] end
      return string.rep("x", n)
    end)())
    assert.are.equal("too many nested parentheses (<unknown>, line 1)",
                     err(model.literal, string.rep("[", 201) .. string.rep("]", 201)))
    assert.are.equal("too many nested parentheses (<unknown>, line 1)", err(model.literal, string.rep("{", 100000)))
    assert.is_truthy(err(model.literal, string.rep("1", 4301)):find("^Exceeds the limit %(4300 digits%)"))
    assert.are.equal(4300 * 4 // 4, #model.literal("0x" .. string.rep("f", 4300)) - 2)
    assert.are.equal("malformed node or string on line 1: <ast.UnaryOp object>",
                     err(model.literal, string.rep("-", 100000) .. "1"))
    assert.is_truthy(err(model.format, "{:d}", "0x" .. string.rep("f", 4000)):find("^Exceeds the limit"))
  end)

  it("literal and format raise only their own errors on random input", function()
    local alphabet = "0123456789xXoObBeE_.+-jJ'\"\\[](){}:,# \t\nTrueFalseNoneabcrbu"
    local seed = 14
    local function rnd(n)   -- a small LCG: the same cases every run
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    for _ = 1, 3000 do
      local t = {}
      for i = 1, rnd(12) do
        local k = rnd(#alphabet)
        t[i] = alphabet:sub(k, k)
      end
      clean(model.literal, table.concat(t))
    end
    local specs = "<>=^+- #0123456789,_.bcdeEfFgGnoxX%sz{}!r"
    for _ = 1, 3000 do
      local t = {"{:"}
      for i = 1, rnd(6) do
        local k = rnd(#specs)
        t[#t + 1] = specs:sub(k, k)
      end
      t[#t + 1] = "}"
      local f = table.concat(t)
      for _, v in ipairs({5, -5, 0.5, "ab", true, "0x123456789abcdef01"}) do clean(model.format, f, v) end
    end
  end)
end)
