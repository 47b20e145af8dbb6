--[[
streamlua.pyrogue.model: pyrogue's value Models, Python's str.format for a
variable's `disp`, Python literal parsing, and the display helpers a
variable uses (genDisp, parseDisp, enumFrom). Pure Lua: no bus, no loop.

  local model = require "streamlua.pyrogue.model"

Models. A model class is callable with a bit width and returns one cached
instance per argument list (`model.UInt(32) == model.UInt(32)`); Fixed and
UFixed take (bitSize, binPoint) and are normally passed as instances.

  UInt Int UIntBE IntBE UIntReversed Bool String Bytes
  Float FloatBE Double DoubleBE Fixed(n, b) UFixed(n, b)

  model.isClass(x), model.isModel(x)   -- a class / an instance
  model.resolve(base, bits)            -- a class -> base(bits); an instance as given

Every instance has these fields:

  name, typeStr  pyrogue's model name: UInt32, Int8, UIntBE32, UIntReversed8,
                 Bool, String(8) (bytes), Bytes(8), Float32, FloatBE32,
                 Double64, Fixed_16_8, UFixed_16_4, UInt128
  kind           the class name: "UInt", "Fixed", ...
  bitSize        the width given (for Fixed/UFixed only the range uses it)
  binPoint       Fixed/UFixed: bits after the binary point, else 0
  pytype         "int", "float", "bool", "str" or "bytes"
  defaultDisp    a format string, or for Bool the enum {[false]="False", [true]="True"}
  minValue, maxValue  nil when the model has none (String, Bytes, >64-bit
                 integers); Double's are -math.huge / math.huge (so no check)
  bigEndian, signed, bitReverse
  isInt          true: the raw value is a Lua integer holding the field's bits
                 (write it with Block:setUInt, read it with Block:getUInt or
                 getInt); false: the raw value is a byte string of
                 ceil(nbits/8) bytes, value bit 0 at bit 0 of byte 1
                 (Block:setBits/getBits). isInt holds for every model of at
                 most 64 bits except String and Bytes.

and these methods, where `nbits` is the field width (a list element's
valueBits; a Model instance such as Fixed(16, 8) in a 32-bit field gets 32):

  m:check(value, minimum, maximum, varName [, nbits])
      raises, as error(text, 0), exactly what pyrogue raises for a value the
      model cannot take (wrong type, negative into UInt, out of
      [minimum, maximum] when either is non-zero, Fixed overflow); returns
      nothing. minimum/maximum are the variable's (see m:limits).
  m:toRaw(value, nbits)   -> the raw value (integer or byte string, as above);
      expects a value that passed check
  m:encode(value, minimum, maximum, varName [, nbits]) -> check, then toRaw,
      in one call (the set path: about one math.type call for UInt/Int)
  m:fromRaw(raw, nbits)   -> the value. Int/IntBE/Fixed sign-extend from
      nbits, so a zero-extended raw is fine.
  m:limits(minimum, maximum) -> the variable's effective min, max: a given
      bound beyond the model's is replaced by the model's; nil -> the model's

Big-endian models reverse the value's ceil(nbits/8) bytes (for widths that
are not a multiple of 8 this does not round-trip: UIntBE 12 bits 0xABC reads
back 0xa0c, as pyrogue does). Fixed rounds halves away from zero. Float
returns the single-precision value widened to a double.

Integers wider than Lua's. An int value that does not fit a signed 64-bit
Lua integer (UInt64 values from 2^63, >64-bit UInt/Int) is a "big" value: a
Lua string "0x" followed by lowercase hex digits without leading zeros, with
"-" in front when negative ("0x80000000000000000000000000001234"). Values
that fit are Lua integers whatever the model width. model.literal returns
big values for integer literals that do not fit; model.format formats them
as integers (`{:#x}` -> 0x8000...1234, `{:d}` in decimal): always under an
integer presentation type (d n x X o b c; where Python would raise for a
str), and under the others when format's `pytype` argument is "int" (genDisp
passes the variable's), else as the str it is.

  model.isBig(v)                        -- v is a big value
  model.bigFromBytes(s, signed)         -- little-endian bytes -> integer or big
  model.bigToBytes(v, nbytes, signed)   -- -> nbytes little-endian bytes, or
                                        --    nil and why it does not fit
  model.roundHalfAway(x)                -- C's round()

Display.

  model.format(fmt, value [, pytype])  Python's fmt.format(value): replacement
      fields `{}`/`{0}` with the format mini-language ([[fill]align][sign]
      [z][#][0][width][,|_][.precision][type], conversions !s !r), literal text,
      `{{`/`}}`. Lua values map to Python's: integer -> int, float -> float,
      boolean -> bool, nil -> None, string -> str (or big int), table ->
      list. Raises Python's error text on a bad spec. Beyond Python: a
      precision above 99 or a width above 100000 is refused.
  model.repr(value)       Python's repr (floats shortest round-trip: 0.1, 1e+16)
  model.str(value)        Python's str (a string as is, else repr)
  model.literal(s)        Python's ast.literal_eval: numbers (0x10 0b101 0o17
      1_000 -3 +5 1.5e3 .5), True False None, strings (quotes, escapes,
      prefixes r/b/u, adjacent ones joined), lists and tuples (Lua arrays),
      dicts (Lua tables); returns the value, or raises error(reason, 0) with
      Python's reason (object addresses left out). Bounded as Python is:
      nesting at most 200 deep, decimal ints at most 4300 digits.
  model.enumFrom(disp, enum, value) -> enum, revEnum, disp as BaseVariable
      builds them: a disp table whose values are all strings is an enum; a disp
      table of other values is a list of choices ({x: str(x)}); a boolean
      value without enum gets {[false]="False", [true]="True"}; any enum makes
      disp "enum". Boolean and 0/1 keys match each other (Python's True == 1).
  model.enumLookup(enum, value) -> text or nil
  model.genDisp(var, value)  the display string of value for a variable
      (fields disp, enum, path, optionally nativeType and pytype/model): a
      table value is an array (a numpy array in pyrogue) whose elements are
      each formatted with disp, "[e0, e1]", unless nativeType is "list" (a
      Python list: formatted whole, elements by repr). A format error is
      logged ("Error generating disp for value ...") and raised. Enum misses give
      "INVALID: <v>" and log a warning on the variable's logger (var.logName,
      else "pyrogue.Variable.<path>"; nothing is logged unless the streamlua
      module is loaded).
  model.parseDisp(var, s)    s parsed as pyrogue does (non-strings returned
      unchanged; enum text -> key through revEnum; str variables -> s;
      otherwise model.literal). Failures raise (and log as an error)
      "Invalid value <s> for variable <name> with type <class 'T'>: <reason>".
      var fields: disp, revEnum, name, path, nativeType or pytype (or the
      pytype of the model in var.model, var.base or var._base), numValues.
      nativeType, when set, is a Python type name: "int", "float", "bool",
      "str", "list" (a Python list) or "ndarray" (a list variable).
]]
local M = {}

local mtype, floor, huge = math.type, math.floor, math.huge
local sfmt, spack, sunpack = string.format, string.pack, string.unpack
local sbyte, schar, srep, ssub = string.byte, string.char, string.rep, string.sub
local concat, tointeger = table.concat, math.tointeger

-- a record on the variable's logger: var.logName, else pyrogue.Variable.<path>
local function log(level, var, msg)
  local sl = package.loaded.streamlua
  if type(sl) == "table" and sl.logging then
    local name = var.logName or ("pyrogue.Variable." .. tostring(var.path or var.name))
    sl.logging.log(name, level, msg)
  end
end

---------------------------------------------------------------------------
-- Big integers: "0x..." / "-0x..." strings, magnitudes as hex digit strings.

local BIG = "^(%-?)0x(%x+)$"

local function isbig(v)
  return type(v) == "string" and v:match(BIG) ~= nil
end

local function big_norm(neg, hex)
  hex = hex:lower():gsub("^0+", "")
  if hex == "" then return 0 end
  if #hex <= 16 then
    local u = tointeger(tonumber(hex, 16)) or 0
    if #hex < 16 or (not neg and u >= 0) then return neg and -u or u end
    if neg and u == math.mininteger then return u end
  end
  return (neg and "-0x" or "0x") .. hex
end

-- magnitude hex digits and sign of an integer or big value
local function int_parts(v)
  if mtype(v) == "integer" then
    if v < 0 then return sfmt("%x", -v), true end  -- %x of mininteger is 2^63
    return sfmt("%x", v), false
  end
  local neg, hex = v:match(BIG)
  return hex:lower():gsub("^0+", ""), neg == "-"
end

-- Python's bound on decimal conversions of ints (sys.get_int_max_str_digits)
local MAX_DIGITS = 4300

-- hex digits -> decimal digits (repeated division by 10^7)
local function hex_to_dec(hex)
  if #hex > 3572 then   -- 16^3572 > 10^4300: more digits than Python converts
    error("Exceeds the limit (4300 digits) for integer string conversion; " ..
          "use sys.set_int_max_str_digits() to increase the limit", 0)
  end
  local d = {}
  for i = 1, #hex do d[i] = tonumber(ssub(hex, i, i), 16) end
  local out = {}
  while #d > 0 do
    local rem, q = 0, {}
    for i = 1, #d do
      local cur = rem * 16 + d[i]
      local qd = cur // 10000000
      rem = cur % 10000000
      if #q > 0 or qd > 0 then q[#q + 1] = qd end
    end
    out[#out + 1] = rem
    d = q
  end
  local s = { tostring(out[#out] or 0) }
  for i = #out - 1, 1, -1 do s[#s + 1] = sfmt("%07d", out[i]) end
  s = concat(s)
  if #s > MAX_DIGITS then
    error("Exceeds the limit (4300 digits) for integer string conversion; " ..
          "use sys.set_int_max_str_digits() to increase the limit", 0)
  end
  return s
end

-- decimal digits -> hex digits
local function dec_to_hex(dec)
  local h = {0}   -- little-endian base 2^24 limbs
  for i = 1, #dec do
    local carry = sbyte(dec, i) - 48
    for j = 1, #h do
      local x = h[j] * 10 + carry
      h[j] = x & 0xffffff
      carry = x >> 24
    end
    if carry > 0 then h[#h + 1] = carry end
  end
  local s = { sfmt("%x", h[#h]) }
  for j = #h - 1, 1, -1 do s[#s + 1] = sfmt("%06x", h[j]) end
  return concat(s)
end

-- an integer or big value as a Lua float
local function int_float(v)
  if mtype(v) == "integer" then return v + 0.0 end
  local hex, neg = int_parts(v)
  local f = 0.0
  for i = 1, #hex do f = f * 16 + tonumber(ssub(hex, i, i), 16) end
  return neg and -f or f
end

-- two's complement little-endian bytes of an integer or big value, or nil
-- and a reason when it does not fit nbytes (signed: as a signed number)
local function int_bytes(v, nbytes, signed)
  local hex, neg = int_parts(v)
  if neg and not signed then return nil, "can't convert negative int to unsigned" end
  if #hex % 2 == 1 then hex = "0" .. hex end
  local n = #hex // 2
  local b = {}
  for i = 1, n do b[i] = tonumber(ssub(hex, 2 * (n - i) + 1, 2 * (n - i) + 2), 16) end
  if n > nbytes then return nil, "int too big to convert" end
  for i = n + 1, nbytes do b[i] = 0 end
  if neg then   -- negate: invert and add one
    local carry = 1
    for i = 1, nbytes do
      local x = (b[i] ~ 0xff) + carry
      b[i] = x & 0xff
      carry = x >> 8
    end
    if nbytes > 0 and b[nbytes] < 0x80 then return nil, "int too big to convert" end
  elseif signed and nbytes > 0 and b[nbytes] >= 0x80 then
    return nil, "int too big to convert"
  end
  return schar(table.unpack(b, 1, nbytes))
end

-- the value of little-endian bytes (signed: two's complement)
local function bytes_int(s, signed)
  local n = #s
  local b = { sbyte(s, 1, n) }
  local neg = signed and n > 0 and b[n] >= 0x80
  if neg then
    local carry = 1
    for i = 1, n do
      local x = (b[i] ~ 0xff) + carry
      b[i] = x & 0xff
      carry = x >> 8
    end
  end
  local h = {}
  for i = n, 1, -1 do h[#h + 1] = sfmt("%02x", b[i]) end
  return big_norm(neg, concat(h))
end

M.bigFromBytes = bytes_int
M.bigToBytes = int_bytes
M.isBig = isbig

---------------------------------------------------------------------------
-- Errors

local function gen_error(src, text)
  error(src .. ": General Error: " .. text, 0)
end

local function range_error(src, name, v, mn, mx, isfloat)
  local vs
  if isfloat or mtype(v) ~= "integer" then vs = sfmt("%f", v) else vs = sfmt("%d", v) end
  gen_error(src, sfmt("Value range error for %s. Value=%s, Min=%f, Max=%f",
                      tostring(name), vs, mn, mx))
end

local function extract_error(kind, name)
  gen_error("Block::set" .. kind .. "Py", "Failed to extract value for " .. tostring(name) .. ".")
end

---------------------------------------------------------------------------
-- Models

local Model = {}
Model.__index = Model
Model.__name = "streamlua.pyrogue.Model"
function Model:__tostring() return "Model(" .. self.typeStr .. ")" end

local Class = {}
Class.__index = Class
function Class:__tostring() return "ModelClass(" .. self.name .. ")" end

local function class_call(cls, bits, binPoint)
  if mtype(bits) ~= "integer" or bits < 1 then
    error(cls.name .. ": bitSize must be a positive integer, got " .. tostring(bits), 2)
  end
  if cls.needsBinPoint and mtype(binPoint) ~= "integer" then
    error(cls.name .. ": binPoint must be an integer, got " .. tostring(binPoint), 2)
  end
  local key = binPoint and (bits .. "_" .. binPoint) or bits
  local m = cls.cache[key]
  if m then return m end
  if cls.width and bits ~= cls.width then
    error(sfmt("The bitSize param of Model %s must be %d", cls.name, cls.width), 2)
  end
  m = setmetatable({kind = cls.name, class = cls, bitSize = bits, binPoint = binPoint or 0,
                    bigEndian = cls.bigEndian or false, signed = cls.signed or false,
                    bitReverse = cls.bitReverse or false, pytype = cls.pytype,
                    defaultDisp = cls.defaultDisp, limits = Model.limits}, Model)
  cls.build(m, bits, binPoint)
  cls.cache[key] = m
  return m
end

local function new_class(name, t)
  t.name = name
  t.cache = {}
  t.isModelClass = true
  setmetatable(t, {__index = Class, __call = class_call,
                   __tostring = Class.__tostring, __name = "streamlua.pyrogue.ModelClass"})
  M[name] = t
  return t
end

function M.isClass(x) return type(x) == "table" and rawget(x, "isModelClass") == true end
function M.isModel(x) return getmetatable(x) == Model end

function M.resolve(base, bits)
  if M.isModel(base) then return base end
  if M.isClass(base) then return base(bits) end
  error("resolve: base must be a model class or instance, got " .. tostring(base), 2)
end

function Model:encode(v, mn, mx, name, nbits)
  self:check(v, mn, mx, name, nbits)
  return self:toRaw(v, nbits)
end

function Model:limits(minimum, maximum)
  local mn, mx = self.minValue, self.maxValue
  if minimum ~= nil and (mn == nil or minimum >= mn) then mn = minimum end
  if maximum ~= nil and (mx == nil or maximum <= mx) then mx = maximum end
  return mn, mx
end

local function pow2(n) return 2.0 ^ n end

-- min/max of n-bit integers: Lua integers where they fit, floats otherwise
local function uint_max(n) if n < 64 then return (1 << n) - 1 end return pow2(n) - 1 end
local function int_min(n) if n <= 64 then return -(1 << (n - 1)) end return -pow2(n - 1) end
local function int_max(n) if n <= 64 then return (1 << (n - 1)) - 1 end return pow2(n - 1) - 1 end

-- Whether integer v is outside [mn, mx], compared as doubles as pyrogue's
-- C++ block does (Q26: a 64-bit UInt's maximum 2^64-1 is 2^64 there, and
-- a bound near 2^63 lets through the integers that round onto it).
local function out_of_range(v, mn, mx)
  local fv = v + 0.0
  return fv > mx + 0.0 or fv < mn + 0.0
end

local function in_range(v, mn, mx)
  mn, mx = mn or 0, mx or 0
  return (mn == 0 and mx == 0) or (v <= mx and v >= mn)
end

-- sign extension of the low n bits of an integer (n <= 64)
local function sext(raw, n)
  if n >= 64 then return raw end
  local sign = 1 << (n - 1)
  return ((raw & ((1 << n) - 1)) ~ sign) - sign
end

-- reverse the low nb bytes of an integer
local rev_fmt = {}
for nb = 1, 8 do rev_fmt[nb] = {">I" .. nb, "<I" .. nb} end
local function byte_reverse(raw, nbits)
  local nb = (nbits + 7) // 8
  if nb < 8 then raw = raw & ((1 << (nb * 8)) - 1) end
  local f = rev_fmt[nb]
  return (sunpack(f[2], spack(f[1], raw)))
end

local function bit_reverse(raw, nbits)
  local r = 0
  for _ = 1, nbits do
    r = (r << 1) | (raw & 1)
    raw = raw >> 1
  end
  return r
end

local function reverse_string(s) return s:reverse() end

-- bits 0..nbits-1 of a little-endian byte string in reverse order
local function reverse_bits_string(s, nbits)
  local nb = (nbits + 7) // 8
  local out = {}
  for i = 1, nb do out[i] = 0 end
  for i = 0, nbits - 1 do
    if (sbyte(s, i // 8 + 1) or 0) >> (i % 8) & 1 == 1 then
      local j = nbits - 1 - i
      out[j // 8 + 1] = out[j // 8 + 1] | (1 << (j % 8))
    end
  end
  return schar(table.unpack(out))
end

-- Integers -------------------------------------------------------------

local function int_check_value(self, v, name, src)
  local t = mtype(v)
  if t == "integer" then return v end
  if type(v) == "boolean" then return v and 1 or 0 end
  if isbig(v) then return v end
  extract_error(src, name)
end

local function uint_check(self, v, mn, mx, name)
  if mtype(v) ~= "integer" then v = int_check_value(self, v, name, "UInt")
  elseif v >= 0 and mn and mx and v >= mn and v <= mx then return end
  if type(v) == "string" then   -- big
    if v:sub(1, 1) == "-" then error("can't convert negative value to unsigned int", 0) end
    if self.isInt then
      if #int_parts(v) > 16 then error("Python int too large to convert to C unsigned long", 0) end
      if not in_range(int_float(v), mn, mx) then range_error("Block::setUInt", name, v, mn, mx, true) end
    elseif not int_bytes(v, (self.bitSize + 7) // 8, false) then
      error("int too big to convert", 0)
    end
    return
  end
  if v < 0 then error("can't convert negative value to unsigned int", 0) end
  if self.isInt then
    mn, mx = mn or 0, mx or 0
    if (mn ~= 0 or mx ~= 0) and out_of_range(v, mn, mx) then
      range_error("Block::setUInt", name, v, mn, mx)
    end
  end
end

local function int_check(self, v, mn, mx, name)
  if mtype(v) ~= "integer" then v = int_check_value(self, v, name, "Int")
  elseif mn and mx and v >= mn and v <= mx then return end
  if not self.isInt then
    if not int_bytes(v, (self.bitSize + 7) // 8, true) then error("int too big to convert", 0) end
    return
  end
  if type(v) == "string" then error("Python int too large to convert to C long", 0) end
  mn, mx = mn or 0, mx or 0
  if (mn ~= 0 or mx ~= 0) and out_of_range(v, mn, mx) then
    range_error("Block::setInt", name, v, mn, mx)
  end
end

local function int_to_raw(self, v, nbits)
  if mtype(v) == "integer" then return v end
  if type(v) == "boolean" then return v and 1 or 0 end
  local s = assert(int_bytes(v, 8, v:sub(1, 1) == "-"))   -- big into 64 bits
  return (sunpack("<i8", s))
end

local function uint_from_raw(self, raw)
  if raw >= 0 then return raw end
  return "0x" .. sfmt("%x", raw)   -- a 64-bit value from 2^63
end

local function sint_from_raw(self, raw, nbits) return sext(raw, nbits or self.bitSize) end

local function wide_to_raw(self, v, nbits)
  if type(v) == "boolean" then v = v and 1 or 0 end
  local nb = ((nbits or self.bitSize) + 7) // 8
  local s = int_bytes(v, nb, true) or int_bytes(v, nb, false)
  if not s then error("int too big to convert", 0) end
  if self.bigEndian then s = reverse_string(s) end
  return s
end

local function wide_from_raw(self, raw, nbits)
  nbits = nbits or self.bitSize
  local nb = (nbits + 7) // 8
  raw = ssub(raw .. srep("\0", nb), 1, nb)
  if self.bigEndian then raw = reverse_string(raw) end
  if self.signed and nbits % 8 ~= 0 then    -- sign-extend from nbits
    local top = sbyte(raw, nb)
    local keep = nbits % 8
    local sign = 1 << (keep - 1)
    top = top & ((1 << keep) - 1)
    if top & sign ~= 0 then top = top | (0xff & ~((1 << keep) - 1)) end
    raw = ssub(raw, 1, nb - 1) .. schar(top)
  end
  return bytes_int(raw, self.signed)
end

local function be_to_raw(self, v, nbits)
  return byte_reverse(int_to_raw(self, v, nbits), nbits or self.bitSize)
end
local function ube_from_raw(self, raw, nbits)
  return uint_from_raw(self, byte_reverse(raw, nbits or self.bitSize))
end
local function sbe_from_raw(self, raw, nbits)
  nbits = nbits or self.bitSize
  return sext(byte_reverse(raw, nbits), nbits)
end

local function build_int(m, bits, signed)
  m.name = m.kind .. bits
  m.typeStr = m.name
  m.isInt = bits <= 64
  if signed then
    m.minValue, m.maxValue = int_min(bits), int_max(bits)
    m.check = int_check
  else
    m.minValue, m.maxValue = 0, uint_max(bits)
    m.check = uint_check
  end
  if not m.isInt then
    m.minValue, m.maxValue = nil, nil
    m.toRaw, m.fromRaw = wide_to_raw, wide_from_raw
    if m.bitReverse then
      m.toRaw = function(self, v, nbits)
        nbits = nbits or self.bitSize
        return reverse_bits_string(wide_to_raw(self, v, nbits), nbits)
      end
      m.fromRaw = function(self, raw, nbits)
        nbits = nbits or self.bitSize
        return wide_from_raw(self, reverse_bits_string(raw, nbits), nbits)
      end
    end
  elseif m.bitReverse then
    m.toRaw = function(self, v, nbits)
      nbits = nbits or self.bitSize
      return bit_reverse(int_to_raw(self, v, nbits), nbits)
    end
    m.fromRaw = function(self, raw, nbits)
      return uint_from_raw(self, bit_reverse(raw, nbits or self.bitSize))
    end
  elseif m.bigEndian then
    m.toRaw = be_to_raw
    m.fromRaw = signed and sbe_from_raw or ube_from_raw
  else
    m.toRaw = int_to_raw
    m.fromRaw = signed and sint_from_raw or uint_from_raw
    local check = m.check
    local lo = signed and math.mininteger or 0
    m.encode = function(self, v, mn, mx, name, nbits)
      if mtype(v) == "integer" and v >= lo and v >= mn and v <= mx then return v end
      check(self, v, mn, mx, name, nbits)
      return int_to_raw(self, v, nbits)
    end
  end
end

new_class("UInt", {pytype = "int", defaultDisp = "{:#x}",
                   build = function(m, bits) build_int(m, bits, false) end})
new_class("Int", {pytype = "int", defaultDisp = "{:d}", signed = true,
                  build = function(m, bits) build_int(m, bits, true) end})
new_class("UIntBE", {pytype = "int", defaultDisp = "{:#x}", bigEndian = true,
                     build = function(m, bits) build_int(m, bits, false) end})
new_class("IntBE", {pytype = "int", defaultDisp = "{:d}", signed = true, bigEndian = true,
                    build = function(m, bits) build_int(m, bits, true) end})
new_class("UIntReversed", {pytype = "int", defaultDisp = "{:#x}", bitReverse = true,
                           build = function(m, bits) build_int(m, bits, false) end})

-- Bool -------------------------------------------------------------------

new_class("Bool", {pytype = "bool", width = 1,
  defaultDisp = setmetatable({[false] = "False", [true] = "True"}, {}),
  build = function(m)
    m.name, m.typeStr, m.isInt = "Bool", "Bool", true
    m.minValue, m.maxValue = 0, 1
    m.check = function(self, v, mn, mx, name)
      local t = type(v)
      if t ~= "boolean" and mtype(v) ~= "integer" then extract_error("Bool", name) end
    end
    m.toRaw = function(self, v)
      if v == true then return 1 elseif v == false then return 0 end
      return v ~= 0 and 1 or 0
    end
    m.fromRaw = function(self, raw) return raw & 1 ~= 0 end
  end})

-- String and Bytes --------------------------------------------------------

local function bytes_of(v, nbits, terminated)
  local nb = (nbits + 7) // 8
  local keep = terminated and nb - 1 or nb
  if #v > keep then v = ssub(v, 1, keep) end
  return v .. srep("\0", nb - #v)
end

new_class("String", {pytype = "str", defaultDisp = "{}",
  build = function(m, bits)
    m.name = sfmt("String(%d)", bits // 8)
    m.typeStr, m.isInt = m.name, false
    m.check = function(self, v, mn, mx, name)
      if type(v) ~= "string" then extract_error("String", name) end
    end
    m.toRaw = function(self, v, nbits) return bytes_of(v, nbits or self.bitSize, true) end
    m.fromRaw = function(self, raw)
      local z = raw:find("\0", 1, true)
      return z and ssub(raw, 1, z - 1) or raw
    end
  end})

new_class("Bytes", {pytype = "bytes", defaultDisp = "{}",
  build = function(m, bits)
    m.name = sfmt("Bytes(%d)", (bits + 7) // 8)
    m.typeStr, m.isInt = m.name, false
    m.check = function(self, v, mn, mx, name)
      if type(v) ~= "string" then extract_error("ByteArray", name) end
    end
    m.toRaw = function(self, v, nbits) return bytes_of(v, nbits or self.bitSize, false) end
    m.fromRaw = function(self, raw) return raw end
  end})

-- Floats ------------------------------------------------------------------

-- the number a float-valued model takes, range checked; src names the setter
local function checked_number(src, v, mn, mx, name)
  if type(v) == "boolean" then v = v and 1 or 0 end
  if type(v) ~= "number" then
    if isbig(v) then v = int_float(v) else extract_error(src, name) end
  end
  mn, mx = mn or 0, mx or 0
  if (mn ~= 0 or mx ~= 0) and (v > mx or v < mn) then
    range_error("Block::set" .. src, name, v, mn, mx, true)
  end
  return v
end

local function float_check(src)
  return function(self, v, mn, mx, name) checked_number(src, v, mn, mx, name) end
end

local function numeric(v)
  if type(v) == "number" then return v end
  if type(v) == "boolean" then return v and 1 or 0 end
  return int_float(v)
end

local function build_float(m, bits, fmt, ifmt, src)
  m.name = m.kind .. bits
  m.typeStr, m.isInt = m.name, true
  m.check = float_check(src)
  m.toRaw = function(self, v) return (sunpack(ifmt, spack(fmt, numeric(v)))) end
  m.fromRaw = function(self, raw)
    if bits == 32 then raw = raw & 0xffffffff end
    return (sunpack(fmt, spack(ifmt, raw)))
  end
end

new_class("Float", {pytype = "float", defaultDisp = "{:f}", width = 32, build = function(m)
  build_float(m, 32, "<f", "<I4", "Float")
  m.minValue, m.maxValue = -3.4e38, 3.4e38
end})
new_class("FloatBE", {pytype = "float", defaultDisp = "{:f}", width = 32, bigEndian = true,
  build = function(m)
    build_float(m, 32, ">f", "<I4", "Float")
    m.minValue, m.maxValue = -3.4e38, 3.4e38
  end})
new_class("Double", {pytype = "float", defaultDisp = "{:f}", width = 64, build = function(m)
  build_float(m, 64, "<d", "<i8", "Double")
  m.minValue, m.maxValue = -huge, huge
end})
new_class("DoubleBE", {pytype = "float", defaultDisp = "{:f}", width = 64, bigEndian = true,
  build = function(m)
    build_float(m, 64, ">d", "<i8", "Double")
    m.minValue, m.maxValue = -huge, huge
  end})

-- Fixed point -------------------------------------------------------------

-- C's round(): halves away from zero
local function round_away(x)
  if x >= 0 then return floor(x + 0.5) end
  return -floor(-x + 0.5)
end
M.roundHalfAway = round_away

local function build_fixed(m, bits, bp, signed)
  local src = signed and "Fixed" or "UFixed"
  m.name = sfmt("%s_%d_%d", src, bits, bp)
  m.typeStr, m.isInt = m.name, true
  local scale = pow2(bp)
  if signed then
    m.minValue, m.maxValue = -pow2(bits - 1) / scale, (pow2(bits - 1) - 1) / scale
  else
    m.minValue, m.maxValue = 0.0, (pow2(bits) - 1) / scale
  end
  m.check = function(self, v, mn, mx, name, nbits)
    v = checked_number(src, v, mn, mx, name)
    nbits = nbits or bits
    local raw = round_away(v * scale)
    if signed then
      local lo, hi = -pow2(nbits - 1), pow2(nbits - 1) - 1
      if raw < lo or raw > hi then
        gen_error("Block::setFixed", sfmt("Fixed point overflow for %s. Value=%f, Min=%f, Max=%f",
                  tostring(name), v, lo / scale, hi / scale))
      end
    elseif raw < 0 then
      gen_error("Block::setUFixed", sfmt("Unsigned fixed-point underflow for %s. Value=%f",
                tostring(name), v))
    elseif raw > pow2(nbits) - 1 then
      gen_error("Block::setUFixed", sfmt("Fixed point overflow for %s. Value=%f, Min=%f, Max=%f",
                tostring(name), v, 0.0, (pow2(nbits) - 1) / scale))
    end
  end
  m.toRaw = function(self, v)
    local r = round_away(numeric(v) * scale)
    return tointeger(r) or 0
  end
  if signed then
    m.fromRaw = function(self, raw, nbits) return sext(raw, nbits or bits) / scale end
  else
    m.fromRaw = function(self, raw, nbits)
      nbits = nbits or bits
      if nbits < 64 then raw = raw & ((1 << nbits) - 1) end
      if raw < 0 then return (raw + pow2(64)) / scale end
      return raw / scale
    end
  end
end

new_class("Fixed", {pytype = "float", defaultDisp = "{}", signed = true, needsBinPoint = true,
  build = function(m, bits, bp) build_fixed(m, bits, bp, true) end})
new_class("UFixed", {pytype = "float", defaultDisp = "{}", needsBinPoint = true,
  build = function(m, bits, bp) build_fixed(m, bits, bp, false) end})

---------------------------------------------------------------------------
-- Python repr

local E_FMT = {[14] = "%.14e", [15] = "%.15e", [16] = "%.16e"}

local function float_digits(x, prec)
  -- significant digits and decimal exponent of |x|; prec nil = shortest
  local s
  if prec then
    s = sfmt("%." .. (prec - 1) .. "e", x)
  else
    -- a 15-digit rendering that round-trips is the shortest one with its
    -- zeros stripped (normal doubles hold more than 15 digits); else the
    -- nearest 16-digit one if it round-trips, else 17 digits always do
    for p = x < 2.2250738585072014e-308 and 0 or 14, 16 do
      s = sfmt(E_FMT[p] or ("%." .. p .. "e"), x)
      if tonumber(s) == x then break end
    end
  end
  local m, e = s:match("^%-?([%d%.]+)e([-+]%d+)$")
  local d = m:gsub("%.", ""):gsub("0+$", "")
  if d == "" then d = "0" end
  return d, tonumber(e)
end

local function sci(d, e, upper)
  local s = ssub(d, 1, 1)
  if #d > 1 then s = s .. "." .. ssub(d, 2) end
  return s .. (upper and "E" or "e") .. (e < 0 and "-" or "+") .. sfmt("%02d", math.abs(e))
end

local function fixed(d, e)
  if e >= 0 then
    if #d <= e + 1 then return d .. srep("0", e + 1 - #d) .. ".0" end
    return ssub(d, 1, e + 1) .. "." .. ssub(d, e + 2)
  end
  return "0." .. srep("0", -e - 1) .. d
end

local G_FMT = {"%.15g", "%.16g", "%.17g"}

-- repr of a float, through %g when that is already Python's text: a
-- normal number whose shortest digits print without an exponent or with
-- one outside [-4, 16)
local function float_repr_fast(x)
  if x ~= x or x == huge or x == -huge or x == 0 then return nil end
  local a = x < 0 and -x or x
  if a < 2.2250738585072014e-308 then return nil end
  for i = 1, 3 do
    local s = sfmt(G_FMT[i], x)
    if tonumber(s) == x then
      local e = s:find("e", 1, true)
      if e then
        local ex = tonumber(ssub(s, e + 1))
        if ex >= -4 and ex < 16 then return nil end
        return s
      end
      if a >= 1e16 then return nil end   -- 17 digits without an exponent
      if s:find(".", 1, true) then return s end
      return s .. ".0"
    end
  end
  return nil
end

-- repr of a finite or infinite float, without sign handling beyond '-'
-- alt: '#', which keeps prec digits and the point of a one-digit mantissa
local function float_repr(x, prec, alt)
  if not prec and not alt then
    local s = float_repr_fast(x)
    if s then return s end
  end
  if x ~= x then return "nan" end
  if x == huge then return "inf" elseif x == -huge then return "-inf" end
  local neg = x < 0 or (x == 0 and 1 / x < 0)
  local d, e = float_digits(math.abs(x), prec)
  if alt and prec and #d < prec then d = d .. srep("0", prec - #d) end
  local limit = prec and (prec - 1) or 16
  local s
  if e + 1 <= -4 or e + 1 > limit then
    s = sci(d, e)
    if alt and #d == 1 then s = s:gsub("e", ".e", 1) end
  else s = fixed(d, e) end
  return neg and ("-" .. s) or s
end

local function str_repr(s)
  local q = "'"
  if s:find("'", 1, true) and not s:find('"', 1, true) then q = '"' end
  local out = s:gsub("[%c\\'\"\127]", function(c)
    if c == "\\" then return "\\\\" end
    if c == q then return "\\" .. c end
    if c == "'" or c == '"' then return c end
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t"
    elseif c == "\r" then return "\\r" end
    return sfmt("\\x%02x", sbyte(c))
  end)
  return q .. out .. q
end

local repr
local function table_repr(t, seen)
  seen = seen or {}
  if seen[t] then return "[...]" end
  seen[t] = true
  local n = #t
  local isList = true
  for k in pairs(t) do
    if mtype(k) ~= "integer" or k < 1 or k > n then isList = false break end
  end
  local parts = {}
  if isList then
    for i = 1, n do parts[i] = repr(t[i], seen) end
    seen[t] = nil
    return "[" .. concat(parts, ", ") .. "]"
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) < type(b)
  end)
  for i, k in ipairs(keys) do parts[i] = repr(k, seen) .. ": " .. repr(t[k], seen) end
  seen[t] = nil
  return "{" .. concat(parts, ", ") .. "}"
end

repr = function(v, seen)
  local t = type(v)
  if t == "nil" then return "None"
  elseif t == "boolean" then return v and "True" or "False"
  elseif t == "number" then
    if mtype(v) == "integer" then return sfmt("%d", v) end
    return float_repr(v)
  elseif t == "string" then return str_repr(v)
  elseif t == "table" then return table_repr(v, seen) end
  return tostring(v)
end
M.repr = function(v) return repr(v) end

local function str(v)
  if type(v) == "string" then return v end
  return repr(v)
end
M.str = str

---------------------------------------------------------------------------
-- The format mini-language

local function fmt_error(kind, text) error(text, 0) end

local function parse_spec(spec)
  local p = {fill = nil, align = nil, sign = nil, alt = false, zero = false,
             width = nil, group = nil, prec = nil, type = nil}
  local i = 1
  local c1, c2 = ssub(spec, 1, 1), ssub(spec, 2, 2)
  -- a fill may be any (UTF-8) character
  local ch = spec:match("^[\0-\127\194-\244][\128-\191]*")
  if ch and #spec > #ch and ssub(spec, #ch + 1, #ch + 1):match("[<>=^]") then
    p.fill, p.align, i = ch, ssub(spec, #ch + 1, #ch + 1), #ch + 2
  elseif c1:match("[<>=^]") then
    p.align, i = c1, 2
  end
  local c = ssub(spec, i, i)
  if c == "+" or c == "-" or c == " " then p.sign, i = c, i + 1; c = ssub(spec, i, i) end
  if c == "z" then p.z, i = true, i + 1; c = ssub(spec, i, i) end
  if c == "#" then p.alt, i = true, i + 1; c = ssub(spec, i, i) end
  if c == "0" then p.zero, i = true, i + 1 end
  local w = spec:match("^%d+", i)
  if w then p.width, i = tonumber(w), i + #w end
  if p.width and p.width > 100000 then
    fmt_error("ValueError", "format: widths above 100000 are not supported")
  end
  c = ssub(spec, i, i)
  if c == "," or c == "_" then
    p.group, i = c, i + 1
    local c2 = ssub(spec, i, i)
    if (c2 == "," or c2 == "_") then
      fmt_error("ValueError", c2 == c and "Cannot specify '" .. c .. "' with '" .. c .. "'."
                                       or "Cannot specify both ',' and '_'.")
    end
  end
  if ssub(spec, i, i) == "." then
    local pr = spec:match("^%d+", i + 1)
    if not pr then fmt_error("ValueError", "Format specifier missing precision") end
    p.prec, i = tonumber(pr), i + 1 + #pr
    if p.prec > 99 then fmt_error("ValueError", "format: precisions above 99 are not supported") end
  end
  if i <= #spec then
    p.type = ssub(spec, i, i)
    if i < #spec then p.invalid = true; return p end   -- raised naming the value's type
  end
  if p.zero and not p.fill then p.fill = "0" end
  return p
end

local function ulen(s) return utf8.len(s) or #s end

-- the separator check of Python's spec parser; default: the object's type
-- for a spec without one ("s" for str, "d" for int, nil for float)
local function check_group(p, default)
  local t = p.type or default
  if p.group and t and not t:match("^[defgEGF%%]$") and
     not (p.group == "_" and t:match("^[boxX]$")) then
    fmt_error("ValueError", "Cannot specify '" .. p.group .. "' with '" .. t .. "'.")
  end
end

local function pad(body, prefix, p, default_align)
  -- prefix: sign and base prefix, kept before '=' padding
  local width = p.width or 0
  local n = ulen(body) + ulen(prefix)
  if n >= width then return prefix .. body end
  local fill = p.fill or " "
  local k = width - n
  local align = p.align or (p.zero and default_align == ">" and "=") or default_align
  if align == "<" then return prefix .. body .. srep(fill, k)
  elseif align == ">" then return srep(fill, k) .. prefix .. body
  elseif align == "^" then
    local l = k // 2
    return srep(fill, l) .. prefix .. body .. srep(fill, k - l)
  end
  return prefix .. srep(fill, k) .. body   -- '='
end

local function group_digits(digits, sep, every)
  if not sep then return digits end
  local out = {}
  local n = #digits
  local first = n % every
  if first == 0 then first = every end
  out[1] = ssub(digits, 1, first)
  for i = first + 1, n, every do out[#out + 1] = ssub(digits, i, i + every - 1) end
  return concat(out, sep)
end

-- digits grouped, zero-padded (with separators) when the fill is '0' and '='
local function grouped_number(intpart, rest, prefix, p, every)
  if p.group and (p.align or (p.zero and "=")) == "=" and p.fill == "0" and p.width then
    local s = group_digits(intpart, p.group, every) .. rest
    while ulen(s) + ulen(prefix) < p.width do
      intpart = "0" .. intpart
      s = group_digits(intpart, p.group, every) .. rest
    end
    return s
  end
  return group_digits(intpart, p.group, every) .. rest
end

local function sign_prefix(neg, p)
  if neg then return "-" end
  if p.sign == "+" then return "+" elseif p.sign == " " then return " " end
  return ""
end

local function hex_to_base(hex, bits_per)
  local bin = hex:gsub(".", function(c)
    local v = tonumber(c, 16)
    return ((v >> 3) & 1) .. ((v >> 2) & 1) .. ((v >> 1) & 1) .. (v & 1)
  end)
  bin = bin:gsub("^0+", "")
  if bin == "" then return "0" end
  if bits_per == 1 then return bin end
  local r = #bin % 3
  if r > 0 then bin = srep("0", 3 - r) .. bin end
  local out = bin:gsub("...", function(g) return tostring(tonumber(g, 2)) end)
  out = out:gsub("^0+", "")
  return out == "" and "0" or out
end

local format_float

local function format_int(v, p, tname)
  check_group(p, "d")
  local t = p.type
  if t == nil or t == "d" or t == "n" or t == "x" or t == "X" or t == "o" or t == "b" or t == "c" then
    if p.prec then fmt_error("ValueError", "Precision not allowed in integer format specifier") end
    if p.z then
      fmt_error("ValueError", "Negative zero coercion (z) not allowed in integer format specifier")
    end
    local hex, neg = int_parts(v)
    if hex == "" then hex = "0" end
    if t == "c" then
      if p.sign then fmt_error("ValueError", "Sign not allowed with integer format specifier 'c'") end
      if p.alt then
        fmt_error("ValueError", "Alternate form (#) not allowed with integer format specifier 'c'")
      end
      if type(v) == "string" then fmt_error("OverflowError", "Python int too large to convert to C long") end
      local code = tointeger(v)
      if not code or code < 0 or code > 0x10ffff then
        fmt_error("OverflowError", "%c arg not in range(0x110000)")
      end
      return pad(utf8.char(code), "", p, ">")
    end
    local digits, base_prefix, every = nil, "", 3
    if t == "x" or t == "X" then
      digits, base_prefix, every = hex, "0x", 4
    elseif t == "o" then
      digits, base_prefix, every = hex_to_base(hex, 3), "0o", 4
    elseif t == "b" then
      digits, base_prefix, every = hex_to_base(hex, 1), "0b", 4
    else
      if mtype(v) == "integer" then digits = sfmt("%d", v):gsub("^%-", "")
      else digits = hex_to_dec(hex) end
    end
    if t == "X" then digits, base_prefix = digits:upper(), "0X" end
    local prefix = sign_prefix(neg, p) .. (p.alt and base_prefix or "")
    return pad(grouped_number(digits, "", prefix, p, every), prefix, p, ">")
  elseif t:match("[eEfFgG%%]") then
    return format_float(int_float(v), p, tname)
  end
  fmt_error("ValueError", "Unknown format code '" .. t .. "' for object of type '" .. tname .. "'")
end

format_float = function(x, p, tname)
  check_group(p, nil)
  local t = p.type
  local neg = x < 0 or (x == 0 and 1 / x < 0)
  local ax = math.abs(x)
  local body
  if t ~= nil and not t:match("[eEfFgG%%n]") then
    fmt_error("ValueError", "Unknown format code '" .. t .. "' for object of type '" .. tname .. "'")
  end
  if x ~= x or ax == huge then
    neg = x == -huge
    body = x ~= x and "nan" or "inf"
    if t and t:match("[EFG]") then body = body:upper() end
    if t == "%" then body = body .. "%" end
  elseif t == nil then
    if p.prec then body = float_repr(ax, p.prec == 0 and 1 or p.prec, p.alt)
    else body = float_repr(ax, nil, p.alt) end
  elseif t == "%" then
    body = sfmt("%" .. (p.alt and "#" or "") .. "." .. (p.prec or 6) .. "f", ax * 100) .. "%"
  else
    local ct = t == "n" and "g" or t == "F" and "f" or t
    body = sfmt("%" .. (p.alt and "#" or "") .. "." .. (p.prec or 6) .. ct, ax)
  end
  if neg and p.z and x == x and not body:find("[1-9]") then neg = false end
  if p.group then
    local intpart, rest = body:match("^(%d+)(.*)$")
    if intpart then
      local prefix = sign_prefix(neg, p)
      return pad(grouped_number(intpart, rest, prefix, p, 3), prefix, p, ">")
    end
  end
  local prefix = sign_prefix(neg, p)
  return pad(body, prefix, p, ">")
end

local function format_str(s, p)
  check_group(p, "s")
  if p.type ~= nil and p.type ~= "s" then
    fmt_error("ValueError", "Unknown format code '" .. p.type .. "' for object of type 'str'")
  end
  if p.sign == " " then fmt_error("ValueError", "Space not allowed in string format specifier")
  elseif p.sign then fmt_error("ValueError", "Sign not allowed in string format specifier") end
  if p.z then
    fmt_error("ValueError", "Negative zero coercion (z) not allowed in string format specifier")
  end
  if p.alt then fmt_error("ValueError", "Alternate form (#) not allowed in string format specifier") end
  if p.align == "=" then
    fmt_error("ValueError", "'=' alignment not allowed in string format specifier")
  end
  if p.prec and ulen(s) > p.prec then
    local cut = utf8.offset(s, p.prec + 1)
    s = cut and ssub(s, 1, cut - 1) or ssub(s, 1, p.prec)
  end
  return pad(s, "", p, "<")
end

-- A shortcut for the common specs, straight to string.format: integers
-- >= 0 under d/x/X/o (optionally '#' and zero padding) and finite numbers
-- under f/e/E/g/G (optionally width or zero padding); nil when it does not
-- apply, and the general path runs.
local INT_PREFIX = {x = "0x", X = "0X", o = "0o"}
local function fast_formatter(p)
  if p.invalid or p.z or (p.width and p.width > 99) then return nil end
  if p.group or (p.sign and p.sign ~= "-") or p.align or (p.fill and not p.zero) then return nil end
  local t = p.type
  if t == nil or t == "d" or t == "x" or t == "X" or t == "o" then
    if p.prec then return nil end
    if p.alt and t ~= "x" and t ~= "X" and t ~= "o" then return nil end
    local prefix = p.alt and INT_PREFIX[t] or ""
    local width = ""
    if p.width then
      if p.zero then
        if p.width - #prefix < 1 then return nil end
        width = "0" .. (p.width - #prefix)
      elseif prefix == "" then width = tostring(p.width)
      else return nil end
    end
    local cfmt = "%" .. width .. ((t == nil or t == "d") and "d" or t)
    return function(v)
      if mtype(v) == "integer" and v >= 0 then return prefix .. sfmt(cfmt, v) end
    end
  elseif t == "f" or t == "e" or t == "E" or t == "g" or t == "G" then
    if p.alt then return nil end
    local cfmt = "%" .. (p.zero and "0" or "") .. (p.width or "") .. "." .. (p.prec or 6) .. t
    return function(v)
      if type(v) == "number" and v == v and v ~= huge and v ~= -huge then return sfmt(cfmt, v) end
    end
  end
  return nil
end

local spec_cache, nspecs = {}, 0   -- parsed specs, emptied past 1000 (bounded)
local NO_FAST = function() return nil end

-- format one value with one format spec (the part after ':')
local function format_value(v, spec, pytype)
  local tv = type(v)
  if spec == "" then
    if tv == "string" then
      if pytype == "int" and isbig(v) then return format_int(v, parse_spec(""), "int") end
      return v
    end
    if tv == "number" and mtype(v) == "integer" then return sfmt("%d", v) end
    return str(v)
  end
  local p = spec_cache[spec]
  if not p then
    p = parse_spec(spec)
    p.fast = fast_formatter(p) or NO_FAST
    if nspecs >= 1000 then spec_cache, nspecs = {}, 0 end
    spec_cache[spec] = p
    nspecs = nspecs + 1
  end
  local r = p.fast(v)
  if r then return r end
  if p.invalid and tv ~= "nil" and tv ~= "table" then
    local tname = tv == "boolean" and "bool" or mtype(v) == "float" and "float" or
                  (mtype(v) == "integer" or (isbig(v) and (pytype == "int" or p.type:match("[dnxXobc]"))))
                  and "int" or "str"
    fmt_error("ValueError", "Invalid format specifier '" .. spec .. "' for object of type '" .. tname .. "'")
  end
  if tv == "number" then
    if mtype(v) == "integer" then return format_int(v, p, "int") end
    return format_float(v, p, "float")
  elseif tv == "boolean" then
    return format_int(v and 1 or 0, p, "bool")
  elseif tv == "string" then
    if isbig(v) and (pytype == "int" or (p.type and p.type:match("[dnxXobc]"))) then
      return format_int(v, p, "int")
    end
    return format_str(v, p)
  elseif tv == "nil" then
    fmt_error("TypeError", "unsupported format string passed to NoneType.__format__")
  elseif tv == "table" then
    fmt_error("TypeError", "unsupported format string passed to list.__format__")
  end
  return format_str(tostring(v), p)
end

-- the pieces of a format string: literal text and fields {spec=, conv=, index=}
local function compile(fmt)
  local parts = {}
  local lit = {}
  local i, n = 1, #fmt
  local auto = 0
  while i <= n do
    local c = ssub(fmt, i, i)
    if c == "{" then
      if ssub(fmt, i + 1, i + 1) == "{" then
        lit[#lit + 1] = "{"; i = i + 2
      else
        local depth, j = 1, i + 1
        while j <= n do
          local cj = ssub(fmt, j, j)
          if cj == "{" then depth = depth + 1
          elseif cj == "}" then depth = depth - 1; if depth == 0 then break end end
          j = j + 1
        end
        if j > n then
          if i == n then fmt_error("ValueError", "Single '{' encountered in format string") end
          fmt_error("ValueError", "expected '}' before end of string")
        end
        local field = ssub(fmt, i + 1, j - 1)
        local fname, rest = field:match("^([^!:]*)(.*)$")
        local conv, spec = nil, ""
        if ssub(rest, 1, 1) == "!" then
          conv = ssub(rest, 2, 2)
          rest = ssub(rest, 3)
          if conv ~= "s" and conv ~= "r" and conv ~= "a" then
            fmt_error("ValueError", "Unknown conversion specifier " .. conv)
          end
        end
        if ssub(rest, 1, 1) == ":" then spec = ssub(rest, 2)
        elseif rest ~= "" then fmt_error("ValueError", "expected ':' after conversion specifier") end
        local index
        if fname == "" then index = auto; auto = auto + 1
        elseif fname:match("^%d+$") then index = tonumber(fname)
        else fmt_error("KeyError", "'" .. fname .. "'") end
        if index ~= 0 then
          fmt_error("IndexError", "Replacement index " .. index .. " out of range for positional args tuple")
        end
        if spec:find("{", 1, true) then
          fmt_error("ValueError", "nested replacement fields are not supported")
        end
        if #lit > 0 then parts[#parts + 1] = concat(lit); lit = {} end
        parts[#parts + 1] = {spec = spec, conv = conv}
        i = j + 1
      end
    elseif c == "}" then
      if ssub(fmt, i + 1, i + 1) == "}" then lit[#lit + 1] = "}"; i = i + 2
      else fmt_error("ValueError", "Single '}' encountered in format string") end
    else
      local j = fmt:find("[{}]", i) or n + 1
      lit[#lit + 1] = ssub(fmt, i, j - 1)
      i = j
    end
  end
  if #lit > 0 then parts[#parts + 1] = concat(lit) end
  return parts
end

local compiled = {}
local ncompiled = 0

-- a format that is one field with a string.format shortcut gets it as .fast
local function compile_fast(parts)
  local f = parts[1]
  if #parts ~= 1 or type(f) ~= "table" or f.conv or f.spec == "" then return end
  local ok, p = pcall(parse_spec, f.spec)
  if ok then parts.fast = fast_formatter(p) end
end

function M.format(fmt, value, pytype)
  local parts = compiled[fmt]
  if parts then
    local fast = parts.fast
    if fast then
      local r = fast(value)
      if r then return r end
    end
  else
    if type(fmt) ~= "string" then error("format: fmt must be a string, got " .. type(fmt), 2) end
    parts = compile(fmt)
    compile_fast(parts)
    if ncompiled >= 1000 then compiled, ncompiled = {}, 0 end   -- bounded
    compiled[fmt] = parts
    ncompiled = ncompiled + 1
  end
  if #parts == 1 then
    local f = parts[1]
    if type(f) == "string" then return f end
    if f.conv then
      local s = f.conv == "s" and str(value) or repr(value)
      return format_value(s, f.spec)
    end
    return format_value(value, f.spec, pytype)
  end
  local out = {}
  for k, f in ipairs(parts) do
    if type(f) == "string" then out[k] = f
    elseif f.conv then out[k] = format_value(f.conv == "s" and str(value) or repr(value), f.spec)
    else out[k] = format_value(value, f.spec, pytype) end
  end
  return concat(out)
end

---------------------------------------------------------------------------
-- Python literals (ast.literal_eval)

local Lit = {}
Lit.__index = Lit

local function lit_fail(reason) error({reason = reason}, 0) end

function Lit:ws()
  local s = self.s
  local i = s:match("^[ \t\f]*()", self.i)
  local c = ssub(s, i, i)
  if c ~= "\n" and c ~= "\r" and c ~= "\\" and c ~= "#" then self.i = i; return end
  while true do
    local c = ssub(s, i, i)
    if c == " " or c == "\t" or c == "\f" or (self.depth > 0 and (c == "\n" or c == "\r")) then
      i = i + 1
    elseif c == "\\" and ssub(s, i + 1, i + 1) == "\n" then
      i = i + 2
    elseif c == "#" then
      local j = s:find("\n", i, true)
      i = j or #s + 1
    else break end
  end
  self.i = i
end

function Lit:peek() self:ws(); return ssub(self.s, self.i, self.i) end

local function syntax(reason) lit_fail(reason .. " (<unknown>, line 1)") end

local INT_FORMS = {
  {"^0[xX]", "^[_%x]*", 16, "hexadecimal"},
  {"^0[oO]", "^[_0-7]*", 8, "octal"},
  {"^0[bB]", "^[_01]*", 2, "binary"},
}

local function digits_value(ds, base)
  if base == 10 then
    if #ds <= 18 then return tointeger(tonumber(ds)) end
    return big_norm(false, dec_to_hex(ds))
  end
  if base == 16 then return big_norm(false, ds) end
  -- base 2 or 8 through hex
  local bits_per = base == 2 and 1 or 3
  local bin = ds:gsub(".", function(c)
    local v = tonumber(c)
    if bits_per == 1 then return tostring(v) end
    return ((v >> 2) & 1) .. ((v >> 1) & 1) .. (v & 1)
  end)
  local r = #bin % 4
  if r > 0 then bin = srep("0", 4 - r) .. bin end
  local hex = bin:gsub("....", function(g) return sfmt("%x", tonumber(g, 2)) end)
  return big_norm(false, hex)
end

local function check_underscores(body, kind)
  if body:find("__", 1, true) or body:find("_$") then syntax("invalid " .. kind .. " literal") end
end

function Lit:number()
  local s, i = self.s, self.i
  local prefixed = ssub(s, i, i) == "0" and ssub(s, i + 1, i + 1):match("[xXoObB]")
  for _, f in ipairs(prefixed and INT_FORMS or {}) do
    if s:find(f[1], i) then
      local body = s:match(f[2], i + 2)
      local after = ssub(s, i + 2 + #body, i + 2 + #body)
      if f[3] < 16 and after:match("%d") then
        syntax("invalid digit '" .. after .. "' in " .. f[4] .. " literal")
      end
      if body:gsub("_", "") == "" or after:match("[%w]") then
        syntax("invalid " .. f[4] .. " literal")
      end
      check_underscores(body, f[4])
      self.i = i + 2 + #body
      return digits_value(body:gsub("_", ""), f[3])
    end
  end
  local intpart = s:match("^%d[_%d]*", i) or ""
  local j = i + #intpart
  local frac, exp
  if ssub(s, j, j) == "." then
    frac = s:match("^%d[_%d]*", j + 1) or ""
    j = j + 1 + #frac
  end
  local e = s:match("^[eE][-+]?%d[_%d]*", j)
  if e then exp = e; j = j + #e end
  if intpart == "" and (frac == nil or frac == "") then syntax("invalid syntax") end
  local nxt = ssub(s, j, j)
  if nxt == "j" or nxt == "J" then lit_fail("complex numbers are not supported") end
  if nxt:match("[%a_]") then syntax("invalid decimal literal") end
  for _, part in ipairs({intpart, frac or "", exp or ""}) do check_underscores(part, "decimal") end
  self.i = j
  if frac == nil and exp == nil then
    local ds = intpart:gsub("_", "")
    if #ds > MAX_DIGITS then
      syntax(sfmt("Exceeds the limit (%d digits) for integer string conversion: value has " ..
                  "%d digits; use sys.set_int_max_str_digits() to increase the limit - " ..
                  "Consider hexadecimal for huge integer literals to avoid decimal " ..
                  "conversion limits.", MAX_DIGITS, #ds))
    end
    if #ds > 1 and ssub(ds, 1, 1) == "0" and ds:find("[1-9]") then
      syntax("leading zeros in decimal integer literals are not permitted; " ..
             "use an 0o prefix for octal integers")
    end
    return digits_value(ds, 10)
  end
  local text = (intpart .. "." .. (frac or "") .. (exp or "")):gsub("_", "")
  if ssub(text, 1, 1) == "." then text = "0" .. text end
  text = text:gsub("%.([eE])", ".0%1"):gsub("%.$", ".0")
  return tonumber(text) + 0.0
end

local ESC = {n = "\n", t = "\t", r = "\r", a = "\a", b = "\b", f = "\f", v = "\v",
             ["\\"] = "\\", ["'"] = "'", ['"'] = '"', ["\n"] = ""}

function Lit:string()
  local s, i = self.s, self.i
  local prefix = s:match("^[rRbBuU]*", i)
  local raw = prefix:lower():find("r", 1, true) ~= nil
  local isbytes = prefix:lower():find("b", 1, true) ~= nil
  i = i + #prefix
  local q = ssub(s, i, i)
  local triple = ssub(s, i, i + 2) == q:rep(3)
  local close = triple and q:rep(3) or q
  i = i + #close
  local out = {}
  while true do
    if i > #s then
      syntax(triple and "unterminated triple-quoted string literal"
                     or "unterminated string literal (detected at line 1)")
    end
    if ssub(s, i, i + #close - 1) == close then i = i + #close; break end
    local c = ssub(s, i, i)
    if c == "\n" and not triple then syntax("unterminated string literal (detected at line 1)") end
    if c == "\\" then
      local d = ssub(s, i + 1, i + 1)
      if raw then
        out[#out + 1] = c .. d; i = i + 2
      elseif ESC[d] then
        out[#out + 1] = ESC[d]; i = i + 2
      elseif d:match("[0-7]") then
        local o = s:match("^[0-7][0-7]?[0-7]?", i + 1)
        local v = tonumber(o, 8)
        out[#out + 1] = isbytes and schar(v & 0xff) or utf8.char(v); i = i + 1 + #o
      elseif d == "x" then
        local h = s:match("^%x%x", i + 2)
        if not h then lit_fail("(unicode error) truncated \\xXX escape") end
        local v = tonumber(h, 16)
        out[#out + 1] = isbytes and schar(v) or utf8.char(v); i = i + 4
      elseif (d == "u" or d == "U") and not isbytes then
        local n = d == "u" and 4 or 8
        local h = s:match("^" .. srep("%x", n), i + 2)
        if not h then lit_fail("(unicode error) truncated \\" .. d .. " escape") end
        out[#out + 1] = utf8.char(tonumber(h, 16)); i = i + 2 + n
      else
        out[#out + 1] = c .. d; i = i + 2
      end
    else
      local j = s:find("[\\\n" .. (q == "'" and "'" or '"') .. "]", i) or #s + 1
      if j == i then j = i + 1 end
      out[#out + 1] = ssub(s, i, j - 1)
      i = j
    end
  end
  self.i = i
  return concat(out), isbytes
end

local function malformed(what) lit_fail("malformed node or string on line 1: <ast." .. what .. " object>") end

-- Python's parser nests brackets at most 200 deep
function Lit:enter()
  self.nest = self.nest + 1
  if self.nest > 200 then syntax("too many nested parentheses") end
  self.depth = self.depth + 1
end

function Lit:sequence(open, close)
  self.i = self.i + 1
  self:enter()
  local items, isTuple = {}, open == "("
  local commas = 0
  while true do
    local c = self:peek()
    if c == close then self.i = self.i + 1; break end
    if c == "" then syntax("'" .. open .. "' was never closed") end
    items[#items + 1] = self:expr()
    c = self:peek()
    if c == "," then self.i = self.i + 1; commas = commas + 1
    elseif c ~= close then
      if c == "" then syntax("'" .. open .. "' was never closed") end
      syntax("invalid syntax. Perhaps you forgot a comma?")
    end
  end
  self.depth, self.nest = self.depth - 1, self.nest - 1
  if isTuple and #items == 1 and commas == 0 then return items[1], true end
  return items
end

function Lit:dict()
  self.i = self.i + 1
  self:enter()
  local t, n, isSet, set = {}, 0, nil, {}
  while true do
    local c = self:peek()
    if c == "}" then self.i = self.i + 1; break end
    if c == "" then syntax("'{' was never closed") end
    local k = self:expr()
    c = self:peek()
    if c == ":" and isSet ~= true then
      isSet = false
      self.i = self.i + 1
      local v = self:expr()
      if type(k) == "table" then lit_fail("unhashable type: 'list'") end
      if k == nil then k = "None" end
      t[k] = v
    elseif isSet ~= false then
      isSet = true
      n = n + 1; set[n] = k
    else syntax("invalid syntax") end
    c = self:peek()
    if c == "," then self.i = self.i + 1
    elseif c == "" then syntax("'{' was never closed")
    elseif c ~= "}" then syntax("invalid syntax. Perhaps you forgot a comma?") end
  end
  self.depth, self.nest = self.depth - 1, self.nest - 1
  if isSet then return set end
  return t
end

function Lit:atom()
  local c = self:peek()
  local s, i = self.s, self.i
  if c:match("%d") or (c == "." and ssub(s, i + 1, i + 1):match("%d")) then
    return self:number()
  end
  if c == "'" or c == '"' or (s:find("^[rRbBuU]+['\"]", i) and not s:find("^[uU][rRbB]", i)) then
    local parts, isbytes = {}, nil
    repeat
      local v, b = self:string()
      if isbytes ~= nil and b ~= isbytes then syntax("cannot mix bytes and nonbytes literals") end
      isbytes = b
      parts[#parts + 1] = v
      c = self:peek()
    until not (c == "'" or c == '"' or self.s:find("^[rRbBuU]+['\"]", self.i))
    return concat(parts)
  end
  if c == "[" then return (self:sequence("[", "]")) end
  if c == "(" then return (self:sequence("(", ")")) end
  if c == "{" then return self:dict() end
  local name = s:match("^[%a_][%w_]*", i)
  if name then
    self.i = i + #name
    if name == "True" then return true elseif name == "False" then return false
    elseif name == "None" then return nil end
    if self:peek() == "(" then malformed("Call") end
    malformed("Name")
  end
  if c == "" then syntax("invalid syntax") end
  syntax("invalid syntax")
end

function Lit:expr()
  local c = self:peek()
  if c == "-" or c == "+" then
    self.i = self.i + 1
    local nc = self:peek()
    if nc == "-" or nc == "+" then malformed("UnaryOp") end
    local v = self:atom()
    local vt = mtype(v)
    if vt == nil and not isbig(v) then malformed(type(v) == "table" and "List" or "Constant") end
    if c == "+" then return v end
    if vt == "integer" then
      if v == math.mininteger then return "0x8000000000000000" end
      return -v
    elseif vt == "float" then return -v end
    local neg, hex = v:match(BIG)
    return big_norm(neg ~= "-", hex)
  end
  local v = self:atom()
  local nc = self:peek()
  if nc ~= "" and nc:match("[-+*/%%&|^<>=@]") then malformed("BinOp") end
  return v
end

local SIMPLE = {True = true, False = false}

-- "[1, -2, 3]": a list of plain decimal integers, or nil
local function int_list(s)
  local body = s:match("^%[([%d, %-]*)%]$")
  if not body then return nil end
  local out, n = {}, 0
  body = body:gsub(", *$", "", 1)   -- one trailing comma
  for piece in (body .. ","):gmatch("([^,]*),") do
    local d = piece:match("^ *(%-?[1-9]%d*) *$") or piece:match("^ *(0) *$")
    if not d or #d > 18 then return nil end
    n = n + 1
    out[n] = tointeger(tonumber(d))
  end
  return out
end

-- the whole string as one expression (or a bare tuple)
function Lit:all()
  self.depth = 1          -- blank lines before the expression are skipped
  self:ws()
  self.depth = 0
  local c = self:peek()
  if c == "" then lit_fail("invalid syntax (<unknown>, line 0)") end
  local first = self:expr()
  if self:peek() == "," then   -- a bare tuple
    local items = {first}
    self.depth = self.depth + 1
    while self:peek() == "," do
      self.i = self.i + 1
      if self:peek() == "" then break end
      items[#items + 1] = self:expr()
    end
    self.depth = self.depth - 1
    first = items
  end
  self:ws()
  while ssub(self.s, self.i, self.i):match("[\r\n]") do self.i = self.i + 1; self:ws() end
  if self.i <= #self.s then syntax("invalid syntax") end
  return first
end

function M.literal(s)
  if type(s) ~= "string" then error("literal: expected a string, got " .. type(s), 2) end
  -- the common cases first: a plain decimal or hex integer, True, False
  if #s <= 18 then
    local d = s:match("^%-?[1-9]%d*$") or s:match("^0$")
    if d then return tointeger(tonumber(d)) end
    local sign, h = s:match("^(%-?)0[xX](%x+)$")
    if h and #h <= 15 then
      local v = tonumber(h, 16)
      return sign == "-" and -v or v
    end
    local b = SIMPLE[s]
    if b ~= nil then return b end
  end
  if ssub(s, 1, 1) == "[" then
    local t = int_list(s)
    if t then return t end
  end
  local p = setmetatable({s = s, i = 1, depth = 0, nest = 0}, Lit)
  local ok, v = pcall(Lit.all, p)
  if ok then return v end
  if type(v) == "table" then error(v.reason, 0) end
  error(v, 0)
end

---------------------------------------------------------------------------
-- Enums and display

local function enum_key(enum, value)
  local t = enum[value]
  if t ~= nil then return t end
  if value == true then return enum[1] elseif value == false then return enum[0]
  elseif value == 1 then return enum[true] elseif value == 0 then return enum[false] end
  return nil
end
M.enumLookup = enum_key

local function all_strings(t)
  local any = false
  for _, v in pairs(t) do
    if type(v) ~= "string" then return false end
    any = true
  end
  return any
end

function M.enumFrom(disp, enum, value)
  local e
  if type(disp) == "table" then
    if all_strings(disp) then e = disp
    else
      e = {}
      for _, k in ipairs(disp) do e[k] = str(k) end
    end
  elseif type(value) == "boolean" and enum == nil then
    e = {[false] = "False", [true] = "True"}
  else
    e = enum
  end
  if e == nil then return nil, nil, disp end
  local rev = {}
  for k, v in pairs(e) do rev[v] = k end
  return e, rev, "enum"
end

-- the Python type name of a variable's values: var.pytype, else its model's
-- (var.model, var.base or var._base)
local function var_pytype(var)
  if var.pytype then return var.pytype end
  local m = var.model
  if getmetatable(m) ~= Model then m = var.base end
  if getmetatable(m) ~= Model then m = var._base end
  if getmetatable(m) == Model then return m.pytype end
  return nil
end

local function gen_one(var, disp, value)
  if disp == "enum" then
    local t = var.enum and enum_key(var.enum, value)
    if t ~= nil then return t end
    log(30, var, sfmt("Invalid enum value %s in variable '%s'", str(value), tostring(var.path)))
    return "INVALID: " .. str(value)
  end
  return M.format(disp, value, var_pytype(var))
end

local function gen_disp(var, value)
  local disp = var.disp
  if disp == "" then return "" end
  if type(value) == "table" and var.nativeType ~= "list" then
    local out = {}
    for i = 1, #value do
      out[i] = disp == "enum" and "enum" or M.format(disp, value[i], var_pytype(var))
    end
    return "[" .. concat(out, ", ") .. "]"
  end
  return gen_one(var, disp, value)
end

local PY_TYPE = {boolean = "bool", string = "str", table = "list", ["nil"] = "NoneType"}

function M.genDisp(var, value)
  local parts = compiled[var.disp]     -- the shortcut never raises
  local fast = parts and parts.fast
  if fast then
    local r = fast(value)
    if r then return r end
  end
  local ok, r = pcall(gen_disp, var, value)
  if ok then return r end
  local tname = mtype(value) == "integer" and "int" or mtype(value) == "float" and "float"
                or PY_TYPE[type(value)] or type(value)
  log(40, var, sfmt("Error generating disp for value %s with type <class '%s'> in variable %s",
                    str(value), tname, tostring(var.path)))
  error(r, 0)
end

local function native_of(var)
  if var.nativeType then return var.nativeType end
  if (var.numValues or 0) > 0 then return "ndarray" end
  return var_pytype(var) or "int"
end

local CLASS_NAME = {ndarray = "numpy.ndarray"}

local function coerce(v, pytype)
  if pytype == "bool" then
    if type(v) == "number" then return v ~= 0 end
    return v
  elseif pytype == "float" and type(v) == "number" then return v + 0.0
  elseif pytype == "float" and type(v) == "boolean" then return v and 1.0 or 0.0
  elseif pytype == "int" and type(v) == "boolean" then return v and 1 or 0
  elseif pytype == "int" and mtype(v) == "float" then
    return tointeger(v < 0 and math.ceil(v) or floor(v)) or v
  end
  return v
end

local function parse_failed(var, s, native, reason)
  local msg = sfmt("Invalid value %s for variable %s with type <class '%s'>: %s", s,
                   tostring(var.name), CLASS_NAME[native] or native, tostring(reason))
  log(40, var, msg)
  error(msg, 0)
end

function M.parseDisp(var, s)
  if type(s) ~= "string" then return s end
  local native = native_of(var)
  if native ~= "ndarray" then
    if var.disp == "enum" then
      local k = var.revEnum and var.revEnum[s]
      if k == nil then parse_failed(var, s, native, repr(s)) end
      return k
    elseif native == "str" then
      return s
    end
  end
  local ok, x = pcall(M.literal, s)
  if not ok then parse_failed(var, s, native, x) end
  if native ~= "ndarray" then return x end
  local el = var_pytype(var)
  if type(x) == "table" then
    local out = {}
    for i = 1, #x do out[i] = coerce(x[i], el) end
    return out
  end
  return coerce(x, el)
end

return M
