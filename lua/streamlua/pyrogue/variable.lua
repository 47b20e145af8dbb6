-- streamlua.pyrogue.variable: BaseVariable, the common part of every
-- variable and command, and RemoteVariable, a bit field of a block.
--
-- BaseVariable{name=, description=, mode='RW', value=, disp='{}', enum=,
-- units=, hidden=, groups=, minimum=, maximum=, lowWarning=, lowAlarm=,
-- highWarning=, highAlarm=, pollInterval=0, updateNotify=true,
-- typeStr='Unknown', typeCheck=true, bulkOpEn=true, guiGroup=}.
--
-- Properties are plain fields: name, path, mode, disp, enum, revEnum, units,
-- minimum, maximum, lowWarning, lowAlarm, highWarning, highAlarm,
-- pollInterval, updateNotify, bulkOpEn, typeStr, nativeType, typeCheck,
-- _default (the `value` argument), _block (the variable's block, or nil),
-- _listeners (functions and variables, in add order), _dependencies.
-- Unknown constructor arguments are kept in _extra (getExtraAttribute).
--
-- Hooks, overridden by each kind (opts is the trailing table of pyrogue's
-- keyword arguments; every field optional):
--   var:get(opts)          opts.read (true), index (-1), wait (true)
--   var:set(value, opts)   opts.write (true), index (-1), verify (true), wait (true)
--   var:post(value, opts)  opts.index
--   var:write(opts)        opts.verify, wait
--   var:_finishInit()      at start: applies _default with setDisp(v, {write=false})
--   var:_queueUpdate()     queues a listener update (root._queueUpdate when present)
-- Provided here on top of them: value(index), getDisp(opts), valueDisp(index),
-- setDisp(s, opts), genDisp(v), parseDisp(s), addListener(f), delListener(f),
-- addDependency(v), getExtraAttribute(name), setPollInterval(s).
--
-- RemoteVariable{name=, offset=, bitSize=32, bitOffset=0, base=pr.UInt,
-- mode='RW', value=, disp=, enum=, units=, minimum=, maximum=, ...,
-- pollInterval=0, updateNotify=true, overlapEn=false, bulkOpEn=true,
-- verify=true, retryCount=0, numValues=0, valueBits=0, valueStride=0}
-- (§2.1 of the reference): its value lives in its block's shadow (block.lua).
local sl = require "streamlua"
local node = require "streamlua.pyrogue.node"
local math_type = math.type

local M = {}

local model = require "streamlua.pyrogue.model"

local function defaultModel() return model.UInt end

-- BaseVariable --------------------------------------------------------------

local BaseVariable = node.class("BaseVariable", node.Node)
BaseVariable._isVariable = true

local MODES = {RW = true, RO = true, WO = true}

local KNOWN = {}
for _, k in ipairs{"name", "description", "mode", "value", "disp", "enum", "units", "hidden",
                   "groups", "minimum", "maximum", "lowWarning", "lowAlarm", "highWarning",
                   "highAlarm", "pollInterval", "updateNotify", "typeStr", "typeCheck",
                   "bulkOpEn", "guiGroup", "expand", "offset", "bitSize", "bitOffset", "base",
                   "overlapEn", "verify", "retryCount", "numValues", "valueBits",
                   "valueStride", "localSet", "localGet", "variable", "dependencies",
                   "linkedGet", "linkedSet", "func", "retValue", "takesArg"} do
  KNOWN[k] = true
end
M.KNOWN = KNOWN

function BaseVariable:_init(args)
  node.Node._init(self, args)
  local mode = args.mode or "RW"
  if not MODES[mode] then
    error(("Invalid variable mode %s. Supported: RW, RO, WO"):format(tostring(mode)), 0)
  end
  self.mode = mode
  self._default = args.value
  self.disp = args.disp or "{}"
  self.units = args.units
  self.minimum = args.minimum
  self.maximum = args.maximum
  self.lowWarning, self.lowAlarm = args.lowWarning, args.lowAlarm
  self.highWarning, self.highAlarm = args.highWarning, args.highAlarm
  self.pollInterval = args.pollInterval or 0
  self.updateNotify = args.updateNotify ~= false
  self.bulkOpEn = args.bulkOpEn ~= false
  self.typeStr = args.typeStr or "Unknown"
  self.typeCheck = args.typeCheck ~= false
  self._listeners = {}
  self._dependencies = {}
  local extra = {}
  for k, v in pairs(args) do
    if type(k) == "string" and not KNOWN[k] then extra[k] = v end
  end
  self._extra = extra
  self:_setEnum(args.disp, args.enum, args.value)
end

-- enum/revEnum/disp per §4.1.
function BaseVariable:_setEnum(disp, enum, value)
  local e, r, d = model.enumFrom(disp, enum, value)
  self.enum, self.revEnum = e, r
  if d then self.disp = d end
end

function BaseVariable:getExtraAttribute(name) return self._extra[name] end

function BaseVariable:get() return nil end
function BaseVariable:set() end
function BaseVariable:post(value, opts) return self:set(value, opts) end
function BaseVariable:write() end

local NOREAD = {read = false}
function BaseVariable:value(index)
  if index == nil then return self:get(NOREAD) end
  return self:get{read = false, index = index}
end

function BaseVariable:genDisp(value) return model.genDisp(self, value) end
function BaseVariable:parseDisp(s) return model.parseDisp(self, s) end

function BaseVariable:getDisp(opts)
  return self:genDisp(self:get(opts))
end

function BaseVariable:valueDisp(index)
  return self:genDisp(self:value(index))
end

function BaseVariable:setDisp(s, opts)
  local v = self:parseDisp(s)
  return self:set(v, opts)
end

-- A built block counts its variables that have a listener (block.lua:
-- while none has and the Root has no listener, an update would call
-- nobody); a block is built at start from the variables' lists.
local function countListened(self, d)
  local blk = self._block
  local n = blk and blk._listened
  if n then blk._listened = n + d end
end

function BaseVariable:addListener(f)
  local l = self._listeners
  if l[1] == nil then countListened(self, 1) end
  l[#l + 1] = f
end

function BaseVariable:delListener(f)
  local l = self._listeners
  local had = l[1] ~= nil
  for i = #l, 1, -1 do
    if l[i] == f then table.remove(l, i) end
  end
  if had and l[1] == nil then countListened(self, -1) end
end

function BaseVariable:addDependency(v)
  self._dependencies[#self._dependencies + 1] = v
  v:addListener(self)
end

function BaseVariable:setPollInterval(s)
  self.pollInterval = s
  local root = self._root
  if root and root._pollAdd then root:_pollAdd(self) end
end

function BaseVariable:_queueUpdate()
  local root = self._root
  if root and root._queueUpdate then root:_queueUpdate(self) end
end

-- At start (§1.6 step 3): the default goes into the variable, unwritten.
function BaseVariable:_finishInit()
  if self._default ~= nil then
    self:setDisp(self._default, {write = false})
  end
end

-- RemoteVariable ------------------------------------------------------------

local blockmod = require "streamlua.pyrogue.block"
local READ, WRITE, POST, VERIFY = blockmod.READ, blockmod.WRITE, blockmod.POST, blockmod.VERIFY
-- the C block's calls of the fast paths, taken from its class (a method
-- looked up on the block itself is a call into C of its own)
local cb_readUInt, cb_writeUInt = sl.memory.Block.readUInt, sl.memory.Block.writeUInt
local generalError = blockmod.generalError

local RemoteVariable = node.class("RemoteVariable", BaseVariable)
RemoteVariable._isRemote = true

local function varError(text) error(text, 0) end

local function asList(x)
  if type(x) == "table" then
    local t = {}
    for i = 1, #x do t[i] = x[i] end
    return t
  end
  return {x}
end

-- A Model class is called with the width; an instance is used as given.
local function modelFor(base, nbits)
  return model.resolve(base or model.UInt, nbits)
end

-- The numpy type of a list's Model, as pyrogue shows it in typeStr
-- (`uint32(4,)`): UInt/Int are 32-bit up to a 32-bit Model, else 64-bit;
-- Fixed/UFixed and Double float64, Float float32. Not the type get()
-- returns (Q10: that follows valueBits).
local ND = {UInt = "uint", Int = "int", Bool = "bool", Float = "float32", Double = "float64",
            Fixed = "float64", UFixed = "float64"}

local function listTypeStr(m, valueBits, numValues)
  local kind = ND[m.kind] or ND[(m.kind or ""):gsub("BE$", "")]
  if kind == "uint" or kind == "int" then
    kind = kind .. ((m.bitSize or valueBits) <= 32 and "32" or "64")
  elseif kind == nil then
    kind = ("uint%d"):format(valueBits <= 8 and 8 or valueBits <= 16 and 16 or valueBits <= 32 and 32 or 64)
  end
  return ("%s(%d,)"):format(kind, numValues)
end

function RemoteVariable:_init(args)
  if args.offset == nil then
    error(("pr.%s: argument 'offset' is required"):format(self._className), 4)
  end
  BaseVariable._init(self, args)
  local numValues = args.numValues or 0
  local valueBits = args.valueBits or 0
  local valueStride = args.valueStride or 0
  local offs, bos, bss = asList(args.offset), asList(args.bitOffset or 0), asList(args.bitSize or 32)
  if numValues > 0 then
    if #bss > 1 then varError("BitSize array must have a length of one when numValues > 0") end
    if valueBits > valueStride then
      varError(("ValueBits %d is greater than valueStrude %d"):format(valueBits, valueStride))
    end
    bss = {numValues * valueBits}
  end
  local n = math.max(#offs, #bos, #bss)
  for _, l in ipairs{offs, bos, bss} do
    if #l == 1 then for i = 2, n do l[i] = l[1] end end
  end
  local total = 0
  for i = 1, n do
    if bss[i] == 0 then varError("BitSize of 0 is invalid") end
    total = total + bss[i]
  end
  local base = offs[1]
  for i = 2, n do if offs[i] < base then base = offs[i] end end
  for i = 1, n do bos[i] = bos[i] + (offs[i] - base) * 8 end
  self.offset = base
  self._bitOffset, self._bitSize = bos, bss
  self.bitOffset, self.bitSize = #bos == 1 and bos[1] or bos, #bss == 1 and bss[1] or bss
  self._numValues, self._valueBits, self._valueStride = numValues, valueBits, valueStride
  self.numValues, self.valueBits, self.valueStride = numValues, valueBits, valueStride
  local m = modelFor(args.base, numValues > 0 and valueBits or total)
  if numValues > 0 and m.pytype == "str" then
    varError(("Invalid base type %s with numValues = %d"):format(m.typeStr, numValues))
  end
  self._model, self.base = m, m
  self._nbits = numValues > 0 and valueBits or total
  self.typeStr = numValues > 0 and listTypeStr(m, valueBits, numValues) or m.typeStr
  if args.disp == nil and args.enum == nil then
    local d = m.defaultDisp
    if type(d) == "table" then self:_setEnum(d, nil, nil) else self.disp = d or "{}" end
  end
  self.minimum, self.maximum = m:limits(args.minimum, args.maximum)
  self.nativeType = numValues > 0 and "ndarray" or m.pytype
  self.pytype = m.pytype
  self.overlapEn = args.overlapEn or false
  self.verify = args.verify ~= false
  self.verifyEn = self.verify
  self.retryCount = args.retryCount or 0
  self.bulkEn = self.bulkOpEn
  self._stale = false
  self._staleLow, self._staleHigh = 0, 0
  self._index = nil
end

-- Alignment to the device's min access m (§3.1 step 1) and byte ranges (§3.2).
function RemoteVariable:_shiftOffsetDown(shift, m)
  if shift ~= 0 then
    self.offset = self.offset - shift
    for i = 1, #self._bitOffset do self._bitOffset[i] = self._bitOffset[i] + 8 * shift end
  end
  self._m = m
  local bo, bs = self._bitOffset, self._bitSize
  if self._numValues > 0 then
    self._low = (bo[1] // (8 * m)) * m
    local lastEnd = bo[1] + (self._numValues - 1) * self._valueStride + self._valueBits
    self._high = ((lastEnd + 8 * m - 1) // (8 * m)) * m - 1
  else
    self._low = (bo[1] // (8 * m)) * m
    self._high = ((bo[#bo] + bs[#bs] + 8 * m - 1) // (8 * m)) * m - 1
  end
  self.varBytes = self._high + 1
  if not self._stale then self._staleLow, self._staleHigh = self._low, self._high end
  self.bitOffset = #bo == 1 and bo[1] or bo
  local m = self._model
  self._fast = self._numValues == 0 and #bo == 1 and m.isInt and self._nbits <= 64
  self._n = self._high - self._low + 1
  -- a plain unsigned field below 64 bits: raw value == value
  self._ident = self._fast and m.kind == "UInt" and self._nbits < 64
    and math_type(self.minimum) == "integer" and math_type(self.maximum) == "integer"
  self._imin, self._imax = self.minimum, self.maximum
  self._bo = bo[1]
end

function RemoteVariable:_elementRange(i)
  local m = self._m
  local b = self._bitOffset[1] + i * self._valueStride
  return (b // (8 * m)) * m, ((b + self._valueBits + 8 * m - 1) // (8 * m)) * m - 1
end

-- Shadow access ----------------------------------------------------------------

local function setName(m)
  local n = (m.kind or "UInt"):gsub("BE$", "")
  return n
end

-- Puts raw (an integer or a byte string) at the pieces of the variable.
local function putRaw(cb, bos, bss, raw)
  if type(raw) == "string" then
    local src = 0
    for i = 1, #bos do
      cb:setBits(bos[i], bss[i], raw, src)
      src = src + bss[i]
    end
  else
    local src = 0
    for i = 1, #bos do
      cb:setUInt(bos[i], bss[i], src < 64 and raw >> src or 0)
      src = src + bss[i]
    end
  end
end

local mem_bitCopy = sl.memory.bitCopy

local function getRaw(cb, bos, bss, isInt)
  if #bos == 1 then
    if isInt then return cb:getUInt(bos[1], bss[1]) end
    return cb:getBits(bos[1], bss[1])
  end
  if isInt then
    local raw, dst = 0, 0
    for i = 1, #bos do
      raw = raw | (cb:getUInt(bos[i], bss[i]) << dst)
      dst = dst + bss[i]
    end
    return raw
  end
  local s, dst = "", 0
  for i = 1, #bos do
    s = mem_bitCopy(s, dst, cb:getBits(bos[i], bss[i]), 0, bss[i])
    dst = dst + bss[i]
  end
  return s
end

-- Converts, range checks and stores value (element `index` of a list, or
-- the whole variable), then marks the variable stale (§3.4).
function RemoteVariable:_stage(value, index)
  local blk = self._block
  local cb, m = blk._cb, self._model
  local nv = self._numValues
  if nv == 0 then
    if type(value) == "table" then
      generalError(("Block::set%sPy"):format(setName(m)),
        ("Overflow error for passed list with length %d at index 0. Variable length = 0 for %s")
        :format(#value, self.name))
    end
    local raw = m:encode(value, self.minimum, self.maximum, self.name, self._nbits)
    if self._fast then
      cb:setUInt(self._bitOffset[1], self._nbits, raw)
    else
      putRaw(cb, self._bitOffset, self._bitSize, raw)
    end
    if self.mode ~= "RO" then
      self._stale, self._staleLow, self._staleHigh = true, self._low, self._high
      blk.stale = true
    end
    return
  end
  local first, list = index, value
  if type(value) ~= "table" then
    list = {value}
    if first < 0 then first = 0 end
  elseif first < 0 then
    first = 0
  end
  if first >= nv then
    generalError("Block::setBytes", ("Index %d is out of range for %s"):format(first, self.name))
  end
  if first + #list > nv then
    generalError(("Block::set%sPy"):format(setName(m)),
      ("Overflow error for passed list with length %d at index %d. Variable length = %d for %s")
      :format(#list, first, nv, self.name))
  end
  local stride, vb, bo0 = self._valueStride, self._valueBits, self._bitOffset[1]
  for i = 1, #list do
    m:check(list[i], self.minimum, self.maximum, self.name, vb)
  end
  for i = 1, #list do
    local raw = m:toRaw(list[i], vb)
    local bo = bo0 + (first + i - 1) * stride
    if type(raw) == "string" then cb:setBits(bo, vb, raw, 0) else cb:setUInt(bo, vb, raw) end
  end
  if self.mode ~= "RO" then
    local lo = self:_elementRange(first)
    local _, hi = self:_elementRange(first + #list - 1)
    if self._stale then
      if lo < self._staleLow then self._staleLow = lo end
      if hi > self._staleHigh then self._staleHigh = hi end
    else
      self._stale, self._staleLow, self._staleHigh = true, lo, hi
    end
    blk.stale = true
  end
end

-- The value from the shadow: element `index`, or the whole variable.
function RemoteVariable:_getValue(index)
  local cb, m = self._block._cb, self._model
  if self._fast then
    return m:fromRaw(cb:getUInt(self._bitOffset[1], self._nbits), self._nbits)
  end
  local nv = self._numValues
  if nv == 0 then
    return m:fromRaw(getRaw(cb, self._bitOffset, self._bitSize, m.isInt), self._nbits)
  end
  local stride, vb, bo0 = self._valueStride, self._valueBits, self._bitOffset[1]
  local isInt = m.isInt
  local function elem(i)
    local bo = bo0 + i * stride
    return m:fromRaw(isInt and cb:getUInt(bo, vb) or cb:getBits(bo, vb), vb)
  end
  if index ~= nil and index >= 0 then
    if index >= nv then
      generalError("Block::getBytes", ("Index %d is out of range for %s"):format(index, self.name))
    end
    return elem(index)
  end
  local t = {}
  for i = 0, nv - 1 do t[i + 1] = elem(i) end
  return t
end

-- Access -------------------------------------------------------------------------

local function logName(self) return "pyrogue.Variable.RemoteVariable." .. self.path end

local function fmtValue(v)
  if type(v) == "table" then
    local t = {}
    for i = 1, #v do t[i] = tostring(v[i]) end
    return "[" .. table.concat(t, ", ") .. "]"
  end
  return tostring(v)
end

-- The per-variable transactions go through the device's bulk methods when
-- it overrides them (strobes, page selects), else straight to the block.
local function doSet(self, value, write, verify, wait, index)
  self:_stage(value, index)
  if not write then return end
  if self._direct then
    local blk = self._block
    local each = self._waitEach
    blk:startTransaction(WRITE, true, each, self, index)
    if verify then blk:startTransaction(VERIFY, false, each, self, index) end
    if wait then blk:check() end
  else
    local dev = self._parent
    dev:writeBlocks{force = true, recurse = false, variable = self, index = index}
    if verify then dev:verifyBlocks{recurse = false, variable = self} end
    if wait then dev:waitBlocks{recurse = false, variable = self} end
  end
end

local function doGet(self, read, wait, index)
  if read then
    if self._direct then
      local blk = self._block
      blk:startTransaction(READ, false, self._waitEach, self, index)
      if wait then blk:check() end
    else
      local dev = self._parent
      dev:readBlocks{recurse = false, variable = self, index = index}
      if wait then dev:waitBlocks{recurse = false, variable = self} end
    end
  end
  return self:_getValue(index)
end

local function setFailed(self, value, err)
  sl.logging.log(logName(self), "Error",
    ("Error setting value %s to variable %s with type %s. Exception=%s")
    :format(fmtValue(value), self.path, self.typeStr, tostring(err)))
  error(err, 0)
end

-- The fast paths below serve the common case of a variable whose block is
-- accessed directly (no device override, no waitEach, no retries): get is
-- one Read of the variable's range; set of an in-range integer into a plain
-- unsigned field is the forced Write of the stale range and its Verify.
-- Both then wait and check (Block:waitCheck, which returns the error text).
-- An options table the fast set path serves: the defaults, verify aside.
local function plainSetOpts(opts)
  local index = opts.index
  return opts.write ~= false and opts.wait ~= false and opts.check ~= false
     and (index == nil or index == -1)
end

-- The fast set of an enabled, writable block with no verify pending a
-- check: value into the shadow, the forced Write of the stale range and
-- (verify) its Verify, waited for and checked, in one call to the block.
local function quickSet(self, blk, value, verify)
  local low, high = self._low, self._high
  self._staleLow, self._staleHigh = low, high
  if blk.stale then
    self._stale = true
    low, high = blk:_writeRange(self)
  end
  blk.stale = false
  local verifyEn = blk.verifyEn
  verify = verify and verifyEn and blk.mode == "RW"
  blk._verifyPending = verifyEn
  local a, got, exp, m = cb_writeUInt(blk._cb, self._bo, self._nbits, value, low,
                                      high - low + 1, verify and blk._mask or nil)
  if a == nil then
    if verify then blk._verifyPending = false end
    if blk.updateNotify then blk:_notify() end
    return
  end
  if type(a) == "string" then setFailed(self, value, blk:_transactionError(a)) end
  blk._verifyPending = false
  setFailed(self, value, blk:_verifyError(a, got, exp, m))
end

function RemoteVariable:set(value, opts)
  if self._quick and self._ident and math_type(value) == "integer"
     and value >= self._imin and value <= self._imax
     and (opts == nil or plainSetOpts(opts)) then
    local blk = self._block
    if blk.enabled and not blk._doVerify and self.mode ~= "RO" and blk.mode ~= "RO" then
      return quickSet(self, blk, value, opts == nil or opts.verify ~= false)
    end
  end
  if opts == nil and self._quick and self._ident and math_type(value) == "integer"
     and value >= self._imin and value <= self._imax then
    local blk = self._block
    blk._cb:setUInt(self._bo, self._nbits, value)
    if self.mode == "RO" then return end
    self._stale, self._staleLow, self._staleHigh = true, self._low, self._high
    blk.stale = true
    blk:_writeVerify(self)
    local err = blk:waitCheck()
    if err ~= nil then setFailed(self, value, err) end
    return
  end
  local write, verify, wait, index = true, true, true, -1
  if opts ~= nil then
    if opts.write == false then write = false end
    if opts.verify == false then verify = false end
    if opts.wait == false or opts.check == false then wait = false end
    index = opts.index or -1
  end
  local ok, err = pcall(doSet, self, value, write, verify, wait, index)
  if not ok then setFailed(self, value, err) end
end

local function getFailed(self, err)
  sl.logging.log(logName(self), "Error",
    ("Error reading value from variable %s"):format(self.path))
  error(err, 0)
end

function RemoteVariable:get(opts)
  local blk = self._block
  if opts == nil and self._quick and self._fast and blk._plainRead and not blk.stale
     and blk.enabled and not blk._doVerify then
    local raw, err = cb_readUInt(blk._cb, self._low, self._n, self._bo, self._nbits)
    if raw == nil then getFailed(self, blk:_transactionError(err)) end
    if blk.updateNotify then blk:_notify() end
    if self._ident then return raw end
    return self._model:fromRaw(raw, self._nbits)
  end
  local read, wait, index = true, true, -1
  if opts ~= nil then
    if opts.read == false then read = false end
    if opts.wait == false or opts.check == false then wait = false end
    index = opts.index or -1
  end
  if not read then return self:_getValue(index) end
  local ok, v = pcall(doGet, self, read, wait, index)
  if not ok then getFailed(self, v) end
  return v
end

function RemoteVariable:value(index)
  if index == nil and self._ident then
    return self._block._cb:getUInt(self._bo, self._nbits)
  end
  return self:_getValue(index or -1)
end

local function doPost(self, value, index)
  self:_stage(value, index)
  local blk = self._block
  blk:startTransaction(POST, true, self._waitEach, self, index)
  blk:check()
end

function RemoteVariable:post(value, opts)
  local index = opts and opts.index or -1
  local ok, err = pcall(doPost, self, value, index)
  if not ok then
    sl.logging.log(logName(self), "Error",
      ("Error posting value %s to variable %s with type %s. Exception=%s")
      :format(fmtValue(value), self.path, self.typeStr, tostring(err)))
    error(err, 0)
  end
end

local function doWrite(self, verify, wait)
  local dev = self._parent
  dev:writeBlocks{force = true, recurse = false, variable = self}
  if verify then dev:verifyBlocks{recurse = false, variable = self} end
  if wait then dev:waitBlocks{recurse = false, variable = self} end
end

function RemoteVariable:write(opts)
  local verify, wait = true, true
  if opts ~= nil then
    if opts.verify == false then verify = false end
    if opts.wait == false or opts.check == false then wait = false end
  end
  local ok, err = pcall(doWrite, self, verify, wait)
  if not ok then
    sl.logging.log(logName(self), "Error",
      ("Error writing variable %s. Exception=%s"):format(self.path, tostring(err)))
    error(err, 0)
  end
end

M.RemoteVariable = RemoteVariable
M.BaseVariable = BaseVariable
M.defaultModel = defaultModel
M.model = model
return M
