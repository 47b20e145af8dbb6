-- streamlua.pyrogue.localvar: LocalVariable, a value held in memory with
-- optional callbacks, and LinkVariable, a value computed from other
-- variables. Neither ever issues a bus transaction.
--
-- pr.LocalVariable{name=, value=, mode='RW', disp='{}', enum=, units=,
-- minimum=, maximum=, localSet=, localGet=, typeCheck=true, pollInterval=0,
-- updateNotify=true, bulkOpEn=true, ...BaseVariable arguments}
--   value is required unless localGet is given. Callbacks get one table:
--   localSet{value=, dev=, var=, changed=}, localGet{dev=, var=} (returns
--   the value). localSet runs on every set (also write=false and staging
--   at start) while the device is enabled; localGet on every get (also
--   read=false and value()). changed is old ~= new for scalars and always
--   true for tables. A scalar set is range checked against minimum/maximum
--   (nil: none) and, with typeCheck, type checked against the type of the
--   first value (nativeType: "int", "float", "bool", "str", "list", "dict";
--   a boolean passes as an int, as Python's bool is one). set with
--   {index = i} assigns element i (counted from 0) without checks.
--   set(write=true), post, and get(read=true, wait=true) queue a listener
--   update (notify.lua) while the device is enabled and updateNotify holds.
--   Fields: _value, _localSet, _localGet (false when absent), _block (the
--   LocalBlock the device builds at start, block.lua; its `enabled` flag
--   follows the device's enable).
--
-- pr.LinkVariable{name=, variable=, dependencies=, linkedGet=, linkedSet=,
-- ...BaseVariable arguments (no minimum/maximum)}
--   linkedGet{dev=, var=, read=, index=, wait=, check=} returns the value;
--   linkedSet{dev=, var=, value=, write=, index=, verify=, wait=, check=}.
--   The mode is RO without linkedSet and WO without linkedGet. variable=v
--   makes v a dependency and the default linkedGet/linkedSet (v:get /
--   v:set with the same options); disp, enum, units, minimum and maximum
--   are copied from v unless given. Dependencies are listeners' sources: an
--   update of a dependency notifies the LinkVariable's listeners too.
--   lv.dependencies[i] (1-based) and lv[i] (0-based, as pyrogue's lv[i])
--   give them. pollInterval: a non-zero interval is pushed down at start
--   to dependencies polled slower or not at all; afterwards it reads as the
--   smallest non-zero interval of the dependencies.
--
-- Errors are raised as error(text, 0) with pyrogue's texts, after logging
-- pyrogue's message on the variable's logger.
local node = require "streamlua.pyrogue.node"
local variable = require "streamlua.pyrogue.variable"
require "streamlua.pyrogue.notify"

local M = {}

local BaseVariable = variable.BaseVariable
local mtype, type, pcall, error = math.type, type, pcall, error

local function log(name, level, msg)
  local sl = package.loaded.streamlua or require "streamlua"
  sl.logging.log(name, level, msg)
end

local model = node.optional("streamlua.pyrogue.model")

-- Python's str() and repr() of a Lua value (model.lua when present).
local function pystr(v)
  if model and model.str then return model.str(v) end
  if v == nil then return "None" end
  if v == true then return "True" elseif v == false then return "False" end
  return tostring(v)
end
local function pyrepr(v)
  if model and model.repr then return model.repr(v) end
  if type(v) == "string" then return "'" .. v .. "'" end
  return pystr(v)
end
M.pystr, M.pyrepr = pystr, pyrepr

-- The Python type name of a Lua value.
local function pytype(v)
  local t = type(v)
  if t == "number" then return mtype(v) == "integer" and "int" or "float" end
  if t == "boolean" then return "bool" end
  if t == "string" then return "str" end
  if t == "nil" then return "NoneType" end
  if t == "table" then
    if next(v) == nil or v[1] ~= nil then return "list" end
    return "dict"
  end
  return t
end
M.pytype = pytype

-- isinstance(v, T) for a pytype name T (bool is an int).
local function isinstance(v, T)
  local t = pytype(v)
  if t == T then return true end
  if T == "int" and t == "bool" then return true end
  if t == "list" and T == "dict" and next(v) == nil then return true end
  return false
end

-- Python's truth value.
local function truthy(v)
  if v == nil or v == false or v == 0 or v == "" then return false end
  if type(v) == "table" and next(v) == nil then return false end
  return true
end
M.truthy = truthy

local NOREAD = {read = false}

local function logName(self, kind)
  return "pyrogue.Variable." .. kind .. "." .. self.path
end

-- LocalVariable ---------------------------------------------------------------

local LocalVariable = node.class("LocalVariable", BaseVariable)
LocalVariable._isLocal = true          -- the device builds its LocalBlock at start
M.LocalVariable = LocalVariable

function LocalVariable:_init(args)
  if args.value == nil and args.localGet == nil then
    error(("LocalVariable %s without localGet() must specify value= argument in constructor")
          :format(tostring(args.name)), 0)
  end
  BaseVariable._init(self, args)
  local value = args.value
  self._value = value
  -- false rather than nil: a nil field is looked up along the class chain
  self._localSet = args.localSet or false
  self._localGet = args.localGet or false
  self._hasRange = self.minimum ~= nil or self.maximum ~= nil
  self._rangePath = self.name
  if value ~= nil then
    self.nativeType = pytype(value)
    if self.enum and (self.nativeType == "list" or self.nativeType == "dict") then
      error(("Invalid use of enum with value of type <class '%s'>"):format(self.nativeType), 0)
    end
    if args.typeStr == nil then self.typeStr = self.nativeType end
  end
  self._block = {enabled = true}       -- until the device's LocalBlock replaces it
end

-- Logs pyrogue's set error and raises text.
local function setFail(self, value, text)
  log(logName(self, "LocalVariable"), "Error",
      ("Error setting value %s to variable %s with type %s. Exception=%s")
      :format(pyrepr(value), self.path, self.typeStr, text))
  error(text, 0)
end

local function rangeCheck(self, value)
  local mn, mx = self.minimum, self.maximum
  if mn == nil and mx == nil then return end
  local ok, bad = pcall(function()
    return (mn ~= nil and value < mn) or (mx ~= nil and value > mx)
  end)
  if not ok then
    local b = mn ~= nil and mn or mx
    setFail(self, value, ("'<' not supported between instances of '%s' and '%s'")
            :format(pytype(value), pytype(b)))
  end
  if bad then
    setFail(self, value, ("Value range error for %s. Value=%s, Min=%s, Max=%s")
            :format(self._rangePath, pystr(value), pystr(mn), pystr(mx)))
  end
end

local function callLocalSet(self, changed)
  local ok, err = pcall(self._localSet, {value = self._value, dev = self._parent, var = self,
                                         changed = changed})
  if not ok then setFail(self, self._value, tostring(err)) end
end

local function typeFail(self, value)
  setFail(self, value, ("Type mismatch for %s: expected <class '%s'>, got <class '%s'>. "
          .. "If this variable intentionally changes Python types, construct it with "
          .. "typeCheck=False."):format(self.path, self.nativeType, pytype(value)))
end

-- Stores value (element index >= 0, or the whole value) and runs localSet.
local function store(self, value, index)
  local changed
  if index >= 0 then
    local t = self._value
    changed = t[index + 1] ~= value
    t[index + 1] = value
  else
    local nt = self.nativeType
    if type(value) == "table" then
      changed = true
      if nt ~= nil and self.typeCheck and not isinstance(value, nt) then typeFail(self, value) end
    else
      if self._hasRange then rangeCheck(self, value) end
      changed = self._value ~= value
      if nt ~= nil and self.typeCheck then
        local ok
        if nt == "int" then
          ok = mtype(value) == "integer" or type(value) == "boolean"
        elseif nt == "float" then
          ok = mtype(value) == "float"
        else
          ok = isinstance(value, nt)
        end
        if not ok then typeFail(self, value) end
      end
    end
    self._value = value
  end
  if self._localSet and self._block.enabled then callLocalSet(self, changed) end
end

-- Queues a listener update when somebody listens (notify.lua).
local function notify(self)
  if not (self._block.enabled and self.updateNotify) then return end
  local root = self._root
  if root == nil then return end
  if self._listeners[1] == nil and root._varListeners[1] == nil then return end
  root:_queueUpdate(self)
end
M.notify = notify

function LocalVariable:set(value, opts)
  local index, write = -1, true
  if opts ~= nil then
    index = opts.index or -1
    write = opts.write ~= false
  end
  store(self, value, index)
  if write and self.updateNotify and self._block.enabled then
    local r = self._root
    if r ~= nil and (self._listeners[1] ~= nil or r._varListeners[1] ~= nil) then
      r:_queueUpdate(self)
    end
  end
end

function LocalVariable:post(value, opts)
  store(self, value, opts and opts.index or -1)
  notify(self)
end

local function getFail(self, err)
  log(logName(self, "LocalVariable"), "Error",
      ("Error reading value from variable %s"):format(self.path))
  error(err, 0)
end

function LocalVariable:get(opts)
  local index = -1
  if opts == nil then
    notify(self)
  else
    index = opts.index or -1
    if opts.read ~= false and opts.wait ~= false and opts.check ~= false then notify(self) end
  end
  local lg = self._localGet
  if lg and self._block.enabled then
    local ok, v = pcall(lg, {dev = self._parent, var = self})
    if not ok then getFail(self, tostring(v)) end
    self._value = v
  end
  if index >= 0 then
    local t = self._value
    if type(t) ~= "table" then
      getFail(self, ("'%s' object is not subscriptable"):format(pytype(t)))
    end
    return t[index + 1]
  end
  return self._value
end

function LocalVariable:value(index)
  if index == nil then return self:get(NOREAD) end
  return self:get{read = false, index = index}
end

-- At start: the default staged (localSet runs), then the native type of a
-- variable built with localGet only.
function LocalVariable:_finishInit()
  BaseVariable._finishInit(self)
  if self.nativeType == nil then
    self.nativeType = pytype(self:value())
  end
end

-- LinkVariable ----------------------------------------------------------------

local LinkVariable = node.class("LinkVariable", BaseVariable)
M.LinkVariable = LinkVariable

local COPIED = {"disp", "enum", "units", "minimum", "maximum"}

function LinkVariable:_init(args)
  if args.minimum ~= nil or args.maximum ~= nil then
    error("Invalid use of min or max values with LinkVariable", 0)
  end
  local a = {}
  for k, v in pairs(args) do a[k] = v end
  local lget, lset, v = args.linkedGet, args.linkedSet, args.variable
  if v ~= nil then
    if lget == nil then
      lget = function(kw)
        local read, index, wait = kw.read, kw.index, kw.wait
        if index == -1 and wait then
          if read then return v:get() end
          return v:get(NOREAD)
        end
        return v:get{read = read, index = index, wait = wait}
      end
    end
    if lset == nil then
      lset = function(kw)
        if kw.write and kw.index == -1 and kw.verify and kw.wait then return v:set(kw.value) end
        v:set(kw.value, {index = kw.index, write = kw.write, verify = kw.verify, wait = kw.wait})
      end
    end
    for _, k in ipairs(COPIED) do
      if a[k] == nil then a[k] = v[k] end
    end
    if a.disp == "enum" and a.enum == nil then a.disp = nil end
  end
  if lset == nil then a.mode = "RO" end
  if lget == nil then a.mode = "WO" end
  if a.typeStr == nil then a.typeStr = "Linked" end
  a.variable, a.dependencies = nil, nil
  BaseVariable._init(self, a)
  self._extra.variable, self._extra.dependencies = nil, nil
  self._linkedGet, self._linkedSet = lget or false, lset or false
  if args.value ~= nil then self.nativeType = pytype(args.value) end
  self.dependencies = self._dependencies
  if v ~= nil then self:addDependency(v) end
  for _, d in ipairs(args.dependencies or {}) do self:addDependency(d) end
end

function LinkVariable:addDependency(dep)
  for _, d in ipairs(self._dependencies) do
    if d == dep then return end
  end
  BaseVariable.addDependency(self, dep)
  rawset(self, #self._dependencies - 1, dep)
end

-- The callbacks' argument tables are reused from one call to the next
-- (a new one while a call of the same variable is under way).
local function takeKw(self, field)
  local kw = rawget(self, field)
  if kw == nil or kw.busy then
    kw = {}
    if rawget(self, field) == nil then rawset(self, field, kw) end
  end
  kw.busy = true
  return kw
end

function LinkVariable:get(opts)
  local read, index, wait = true, -1, true
  if opts ~= nil then
    read = opts.read ~= false
    index = opts.index or -1
    wait = opts.wait ~= false and opts.check ~= false
  end
  local lg = self._linkedGet
  if not lg then return nil end
  local kw = takeKw(self, "_kwGet")
  kw.dev, kw.var, kw.read, kw.index, kw.wait, kw.check = self._parent, self, read, index, wait, wait
  local ok, v = pcall(lg, kw)
  kw.busy = false
  if not ok then
    log(logName(self, "LinkVariable"), "Error", "Error getting link variable " .. self.path)
    error(v, 0)
  end
  return v
end

function LinkVariable:set(value, opts)
  local write, index, verify, wait = true, -1, true, true
  if opts ~= nil then
    write = opts.write ~= false
    index = opts.index or -1
    verify = opts.verify ~= false
    wait = opts.wait ~= false and opts.check ~= false
  end
  local ls = self._linkedSet
  if not ls then return end
  local kw = takeKw(self, "_kwSet")
  kw.dev, kw.var, kw.value, kw.write, kw.index = self._parent, self, value, write, index
  kw.verify, kw.wait, kw.check = verify, wait, wait
  local ok, err = pcall(ls, kw)
  kw.busy, kw.value = false, nil
  if not ok then
    log(logName(self, "LinkVariable"), "Error", "Error setting link variable " .. self.path)
    error(err, 0)
  end
end

LinkVariable.post = LinkVariable.set

-- The smallest non-zero interval of the dependencies (0 when none).
function LinkVariable:_depInterval()
  local best = 0
  for _, d in ipairs(self._dependencies) do
    local i = d.pollInterval or 0
    if i > 0 and (best == 0 or i < best) then best = i end
  end
  return best
end

function LinkVariable:setPollInterval(s)
  if s ~= 0 then
    for _, d in ipairs(self._dependencies) do
      local di = d.pollInterval or 0
      if di == 0 or s < di then d:setPollInterval(s) end
    end
  end
  self.pollInterval = self:_depInterval()
end

function LinkVariable:_finishInit()
  BaseVariable._finishInit(self)
  local own = self.pollInterval
  if own ~= 0 then
    self:setPollInterval(own)
  else
    self.pollInterval = self:_depInterval()
  end
end

M._export = {}
return M
