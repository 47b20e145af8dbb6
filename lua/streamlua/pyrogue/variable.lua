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
local node = require "streamlua.pyrogue.node"

local M = {}

local model = node.optional("streamlua.pyrogue.model")

-- A minimal unsigned model, used only while streamlua.pyrogue.model is
-- absent; the same contract (toRaw/fromRaw/check, isInt, typeStr...).
local FallbackUInt = {}
do
  local cache = {}
  local Inst = {}
  Inst.__index = Inst
  function Inst:toRaw(v) return v end
  function Inst:fromRaw(raw) return raw end
  function Inst:check(v, mn, mx, varName)
    if math.type(v) ~= "integer" then
      error(("Block::setUIntPy: General Error: Failed to extract value for %s."):format(varName), 0)
    end
    if v < 0 then error("can't convert negative value to unsigned int", 0) end
    if (mn ~= 0 or mx ~= 0) and (v < mn or (mx >= 0 and v > mx)) then
      error(("Block::setUInt: General Error: Value range error for %s. Value=%d, Min=%f, Max=%f")
            :format(varName, v, mn, mx), 0)
    end
  end
  setmetatable(FallbackUInt, {__call = function(_, n)
    local m = cache[n]
    if not m then
      m = setmetatable({name = "UInt", typeStr = "UInt" .. n, bitSize = n, pytype = "int",
                        defaultDisp = "{:#x}", minValue = 0,
                        maxValue = n >= 64 and -1 or (1 << n) - 1,
                        bigEndian = false, isInt = true}, Inst)
      cache[n] = m
    end
    return m
  end})
end
M.FallbackUInt = FallbackUInt

local function defaultModel()
  return (model and model.UInt) or FallbackUInt
end

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
  if model and model.enumFrom then
    local e, r, d = model.enumFrom(disp, enum, value)
    self.enum, self.revEnum = e, r
    if d then self.disp = d end
    return
  end
  if type(disp) == "table" then
    if #disp > 0 then
      enum = {}
      for _, x in ipairs(disp) do enum[x] = tostring(x) end
    else
      enum = disp
    end
  end
  if enum == nil and type(value) == "boolean" then enum = {[false] = "False", [true] = "True"} end
  if enum then
    self.enum = enum
    self.revEnum = {}
    for k, v in pairs(enum) do self.revEnum[v] = k end
    self.disp = "enum"
  end
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

function BaseVariable:genDisp(value)
  if model and model.genDisp then return model.genDisp(self, value) end
  if self.disp == "enum" then
    local s = self.enum[value]
    if s == nil then return "INVALID: " .. tostring(value) end
    return s
  end
  if self.disp == "{:#x}" and math.type(value) == "integer" then
    return ("0x%x"):format(value)
  end
  return tostring(value)
end

function BaseVariable:parseDisp(s)
  if model and model.parseDisp then return model.parseDisp(self, s) end
  if type(s) ~= "string" then return s end
  if self.disp == "enum" then return self.revEnum[s] end
  return math.tointeger(tonumber(s)) or tonumber(s) or s
end

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

function BaseVariable:addListener(f)
  self._listeners[#self._listeners + 1] = f
end

function BaseVariable:delListener(f)
  for i = #self._listeners, 1, -1 do
    if self._listeners[i] == f then table.remove(self._listeners, i) end
  end
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

M.BaseVariable = BaseVariable
M.defaultModel = defaultModel
M.model = model
return M
