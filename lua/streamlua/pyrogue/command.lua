-- streamlua.pyrogue.command: commands (callable variables), the command
-- helpers, the Device helpers that make commands and link variables, and
-- the Root's built-in variables and commands.
--
-- pr.LocalCommand{name=, description='', value=0, retValue=, enum=,
-- hidden=, groups=, minimum=, maximum=, func=, takesArg=, guiGroup=}
-- (also pr.BaseCommand): a variable of mode WO, not bulk. func gets one
-- table {root=, dev=, cmd=, arg=}. The command takes an argument when
-- takesArg is true or func is one of the helpers using `arg` below.
--   cmd(arg), cmd:call(arg): nil without calling func when the parent
--   device's enable is not true; arg nil -> the default (`value`), else
--   cmd:parseDisp(arg) ("0x9" -> 9); returns func's result; an error is
--   logged and raised again. A LocalCommand taking an argument keeps it as
--   its new default (get()/value() return it) and queues an update.
--   cmd:callDisp(arg) -> the result formatted with "{}".
--   cmd:replaceFunction(f [, takesArg]); cmd.arg: whether it takes one.
--   set() does nothing; get() returns the default. Commands are not
--   `variables()` of their device (they are `commands()`) and never go to
--   YAML.
--
-- pr.RemoteCommand{name=, offset=, bitSize=32, bitOffset=0, base=pr.UInt,
-- func=, value=, enum=, ..., overlapEn=false}: a RemoteVariable of mode WO,
-- bulkOpEn=false, verify=false with the call semantics above (default arg
-- nil). set(v, {index=, write=}) stages then writes the variable's range
-- (forced, waited, never verified); get() reads (skipped on a WO block, so
-- it returns the shadow); post(v) posts.
--
-- Helpers (pr.BaseCommand.X, also pr.LocalCommand.X and pr.RemoteCommand.X):
-- nothing, touch (arg, 1 without), touchOne, touchZero, createTouch(v),
-- toggle (1 then 0), createToggle{a, b, ...}, postedTouch (arg),
-- postedTouchOne, postedTouchZero, createPostedTouch(v), read, setArg (arg),
-- setAndVerifyArg (arg; a read-back differing raises "Verification failed
-- for <path>. \nSet to <arg> but read back <v>").
--
-- Device helpers: dev:command(kw [, f]) adds LocalCommand{func=f, ...kw}
-- (without f it returns a function taking f, as pyrogue's decorator; name
-- is required), dev:linkVariableGet(kw [, f]) adds LinkVariable{linkedGet=f,
-- ...kw}, dev:addRemoteCommands(number, stride, kw).
-- addDeviceCommands(dev) (every Device): ReadDevice (default false) and
-- WriteDevice (default '': no recursion), hidden.
-- addRootNodes(root) (every Root): RogueVersion, RogueDirectory, SystemLog,
-- SystemLogLast, ForceWrite, InitAfterConfig, Time, LocalTime, PollEn,
-- WriteAll, ReadAll, SaveState, SaveConfig, LoadConfig, RemoteVariableDump,
-- RemoteConfigDump, Initialize, HardReset, CountReset, ClearLog,
-- SetYamlConfig, GetYamlConfig, GetYamlState, in pyrogue's order; then
-- LoadConfigProcess and SaveConfigProcess (process.lua).
-- SystemLog / SystemLogLast read the records sl.logging kept (its history:
-- the last 256 at or above the logging level) since the Root was made or
-- ClearLog/HardReset ran, as pyrogue's JSON records (created, name,
-- message, exception, traceBack, levelName, levelNumber; the name as the
-- log line shows it; bytes above 127 escaped one by one); they change
-- without an update notification.
local sl = require "streamlua"
local node = require "streamlua.pyrogue.node"
local variable = require "streamlua.pyrogue.variable"
local localvar = require "streamlua.pyrogue.localvar"
local device = require "streamlua.pyrogue.device"

local M = {}

local BaseVariable = variable.BaseVariable
local pystr, truthy = localvar.pystr, localvar.truthy

local function log(name, level, msg)
  sl.logging.log(name, level, msg)
end

local systemLog

-- Helpers ---------------------------------------------------------------------

local H = {}
local TAKES_ARG = setmetatable({}, {__mode = "k"})

function H.nothing() end
function H.read(kw) kw.cmd:get{read = true} end
function H.setArg(kw) kw.cmd:set(kw.arg) end
function H.setAndVerifyArg(kw)
  local cmd, arg = kw.cmd, kw.arg
  cmd:set(arg)
  local ret = cmd:get()
  if ret ~= arg then
    error(("Verification failed for %s. \nSet to %s but read back %s")
          :format(cmd.path, pystr(arg), pystr(ret)), 0)
  end
end
function H.createToggle(sets)
  local list = {}
  for i, v in ipairs(sets) do list[i] = v end
  return function(kw)
    for _, v in ipairs(list) do kw.cmd:set(v) end
  end
end
function H.toggle(kw)
  kw.cmd:set(1)
  kw.cmd:set(0)
end
function H.createTouch(value)
  return function(kw) kw.cmd:set(value) end
end
function H.touch(kw)
  if kw.arg ~= nil then kw.cmd:set(kw.arg) else kw.cmd:set(1) end
end
function H.touchZero(kw) kw.cmd:set(0) end
function H.touchOne(kw) kw.cmd:set(1) end
function H.createPostedTouch(value)
  return function(kw) kw.cmd:post(value) end
end
function H.postedTouch(kw) kw.cmd:post(kw.arg) end
function H.postedTouchOne(kw) kw.cmd:post(1) end
function H.postedTouchZero(kw) kw.cmd:post(0) end

for _, f in ipairs{H.touch, H.postedTouch, H.setArg, H.setAndVerifyArg} do TAKES_ARG[f] = true end
M.helpers = H

-- Marks f as a command function taking an argument; returns f.
function M.takesArg(f)
  TAKES_ARG[f] = true
  return f
end

-- The call semantics shared by LocalCommand and RemoteCommand -----------------

local Callable = {}

local function cmdLogName(self)
  return "pyrogue.Command." .. self._className .. "." .. self.path
end

function Callable:call(arg)
  local dev = self._parent
  if dev ~= nil and dev.enable ~= nil and dev.enable:value() ~= true then return nil end
  local ok, ret = pcall(function()
    if arg == nil then arg = self._default else arg = self:parseDisp(arg) end
    local f = self._function
    local r
    if f ~= nil then
      r = f{root = self._root, dev = dev, cmd = self, arg = arg}
    end
    if self.arg and not self._isRemote then
      self._default = arg
      self:_queueUpdate()
    end
    return r
  end)
  if not ok then
    log(cmdLogName(self), "Error", tostring(ret))
    error(ret, 0)
  end
  return ret
end

function Callable:__call(arg) return self:call(arg) end

function Callable:callDisp(arg)
  local r = self:call(arg)
  local model = variable.model
  if model and model.format then return model.format("{}", r) end
  return pystr(r)
end

function Callable:replaceFunction(f, takesArg)
  self._function = f
  self.arg = (takesArg or (f ~= nil and TAKES_ARG[f])) and true or false
end

local function initCallable(self, args)
  self._isCommand = true
  self.retValue = args.retValue
  self:replaceFunction(args.func, args.takesArg)
end

-- A command's arguments for its variable class: mode WO, not bulk.
local function commandArgs(args)
  local a = {}
  for k, v in pairs(args) do a[k] = v end
  a.mode = "WO"
  a.bulkOpEn = false
  return a
end

local function mixin(C)
  for k, v in pairs(Callable) do C[k] = v end
  for k, v in pairs(H) do C[k] = v end
end

-- LocalCommand ----------------------------------------------------------------

local LocalCommand = node.class("LocalCommand", BaseVariable)
LocalCommand._isCommand = true
mixin(LocalCommand)
M.LocalCommand = LocalCommand
M.BaseCommand = LocalCommand
M.Command = LocalCommand

function LocalCommand:_init(args)
  local a = commandArgs(args)
  if args.value == nil then a.value = 0 end
  BaseVariable._init(self, a)
  self.nativeType = localvar.pytype(a.value)
  initCallable(self, args)
end

function LocalCommand:get(opts)
  if opts ~= nil and opts.index ~= nil and opts.index >= 0 and type(self._default) == "table" then
    return self._default[opts.index + 1]
  end
  return self._default
end
function LocalCommand:set() end
function LocalCommand:post() end

-- RemoteCommand ---------------------------------------------------------------

local RemoteVariable = variable.RemoteVariable
local RemoteCommand
if RemoteVariable ~= nil then
  RemoteCommand = node.class("RemoteCommand", RemoteVariable)
  RemoteCommand._isCommand = true
  RemoteCommand._isRemote = true
  mixin(RemoteCommand)
  M.RemoteCommand = RemoteCommand

  function RemoteCommand:_init(args)
    local a = commandArgs(args)
    a.verify = false
    RemoteVariable._init(self, a)
    initCallable(self, args)
  end

  local NOVERIFY = {verify = false}
  function RemoteCommand:set(value, opts)
    if opts == nil then return RemoteVariable.set(self, value, NOVERIFY) end
    return RemoteVariable.set(self, value, {index = opts.index, write = opts.write,
                                            verify = false})
  end
end

-- Device helpers --------------------------------------------------------------

local Device = device.Device

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- pyrogue's decorators: adds cls{[field] = f, ...kw} to dev; without f,
-- returns the function taking f. Returns f.
local function decorate(dev, kw, f, fname, cls, field)
  if type(kw) ~= "table" or kw.name == nil then
    error(("Device.%s: argument 'name' is required"):format(fname), 3)
  end
  local function add(fn)
    local a = copy(kw)
    a[field] = fn
    dev:add(cls(a))
    return fn
  end
  if f ~= nil then return add(f) end
  return add
end

function Device:command(kw, f)
  return decorate(self, kw, f, "command", LocalCommand, "func")
end

function Device:linkVariableGet(kw, f)
  return decorate(self, kw, f, "linkVariableGet", localvar.LinkVariable, "linkedGet")
end

if rawget(Device, "addRemoteCommands") == nil and RemoteCommand ~= nil then
  function Device:addRemoteCommands(number, stride, kw)
    return self:addNodes(RemoteCommand, number, stride, kw)
  end
end

-- ReadDevice / WriteDevice of every device.
function M.addDeviceCommands(dev)
  dev:_addChild(LocalCommand{
    name = "ReadDevice", value = false, hidden = true, takesArg = true,
    description = "Force read of device without recursion",
    func = function(kw) return kw.dev:readAndWaitBlocks{recurse = truthy(kw.arg)} end})
  dev:_addChild(LocalCommand{
    name = "WriteDevice", value = "", hidden = true, takesArg = true,
    description = "Force write of device without recursion",
    func = function(kw)
      return kw.dev:writeAndVerifyBlocks{force = true, recurse = truthy(kw.arg)}
    end})
end

-- Root built-in nodes ---------------------------------------------------------

local function rogueDirectory()
  local p = package.searchpath("streamlua", package.cpath)
  return p and (p:match("^(.*)/[^/]*$") or ".") or ""
end

local function timestamp()
  return os.date("%Y%m%d_%H%M%S")
end
M.timestamp = timestamp

-- Unsigned decimal of a 64-bit Lua integer.
local function udec(v)
  if v >= 0 then return ("%d"):format(v) end
  local q = (v >> 1) // 5
  return ("%d%d"):format(q, v - q * 10)
end

local function hexBytes(s)
  return "0x" .. (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- One value as a register dump prints it (Rogue's Variable::getDumpValue):
-- integers in decimal (unsigned for UInt), wider than 64 bits and byte
-- models as 0x and the value's bytes lowest first, Bool as 1/0, floats as
-- C++ streams print them (%g), other models UNDEFINED.
local function dumpOne(m, nbits, v)
  local kind = m and m.kind or "UInt"
  if kind == "UIntBE" then kind = "UInt" elseif kind == "IntBE" then kind = "Int" end
  if kind == "FloatBE" then kind = "Float" elseif kind == "DoubleBE" then kind = "Double" end
  if (kind == "UInt" or kind == "Int") and nbits > 64 then
    local model = variable.model
    return hexBytes(model.bigToBytes(v, (nbits + 7) // 8, kind == "Int"))
  elseif kind == "UInt" then
    if type(v) == "string" then v = math.tointeger(tonumber(v)) end
    return udec(v)
  elseif kind == "Int" then
    return ("%d"):format(v)
  elseif kind == "Bool" then
    return v and "1" or "0"
  elseif kind == "String" then
    return v
  elseif kind == "Bytes" then
    return hexBytes(v)
  elseif kind == "Float" or kind == "Double" or kind == "Fixed" or kind == "UFixed" then
    return ("%g"):format(v)
  end
  return "UNDEFINED"
end

local function dumpLine(var)
  local v, m = var:value(), var.base
  local nbits = (var.numValues or 0) > 0 and var.valueBits or var._nbits or 32
  local parts = {}
  if (var.numValues or 0) > 0 then
    for i = 1, var.numValues do parts[i] = " " .. dumpOne(m, nbits, v[i]) end
  else
    parts[1] = " " .. dumpOne(m, nbits, v)
  end
  return var.path .. " =" .. table.concat(parts) .. "\n"
end

-- RemoteVariableDump / RemoteConfigDump: ReadAll, then `path = value` per
-- remote variable or command of the given modes. Returns true.
function M.remoteVariableDump(root, name, modes, readFirst)
  if name == nil or name == "" then name = "regdump_" .. timestamp() .. ".txt" end
  if readFirst then root:_readAll() end
  local want = {}
  for _, m in ipairs(modes) do want[m] = true end
  local lines = {}
  for _, v in ipairs(root:variableList()) do
    if v._isRemote and want[v.mode] then lines[#lines + 1] = dumpLine(v) end
  end
  local f = assert(io.open(name, "w"))
  f:write(table.concat(lines))
  f:close()
  return true
end

local function yamlCall(root, method)
  local f = root[method]
  if type(f) ~= "function" then
    error(("Root.%s is not available"):format(method), 0)
  end
  return f
end

local function localTime(kw)
  local t = kw.dev.Time:value()
  return os.date("%Y-%m-%d %H:%M:%S %Z", math.floor(t))
end

-- The poller's pause: PollEn's localSet/localGet.
local function setPollEn(root, on)
  if root._setPollEn then root:_setPollEn(on) else root._pollEnabled = on end
end
local function getPollEn(root)
  if root._getPollEn then return root:_getPollEn() end
  return root._pollEnabled and true or false
end

-- SystemLog --------------------------------------------------------------------
-- The log records written since the Root was made or its log last cleared,
-- taken from sl.logging.history (the last 256 records at or above the
-- logging level), as pyrogue's JSON records.

local LEVELS = {CRITICAL = 50, ERROR = 40, THREAD = 35, WARNING = 30, INFO = 20, DEBUG = 10}

local function jsonString(str)
  return '"' .. str:gsub('[%c"\\\128-\255]', function(c)
    local map = {['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r",
                 ["\t"] = "\\t", ["\b"] = "\\b", ["\f"] = "\\f"}
    return map[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function jsonRecord(line)
  local t, level, name, msg = line:match("^(%d+%.%d+) (%u+) ([^:]*): (.*)$")
  if t == nil then t, level, name, msg = "0.0", "INFO", "", line end
  return ('{"created": %s, "name": %s, "message": %s, "exception": null, "traceBack": null, '
          .. '"levelName": %s, "levelNumber": %d}')
         :format(t, jsonString(name), jsonString(msg), jsonString(level), LEVELS[level] or 0)
end

-- The records after the mark, oldest first.
local function recordsSince(mark)
  local h = sl.logging.history()
  local first = 1
  if mark ~= nil then
    for i = #h, 1, -1 do
      if h[i] == mark then first = i + 1; break end
    end
  end
  local out = {}
  for i = first, #h do out[#out + 1] = h[i] end
  return out
end

systemLog = function(root, last)
  local recs = recordsSince(rawget(root, "_logMark"))
  if last then
    return #recs > 0 and jsonRecord(recs[#recs]) or ""
  end
  local out = {}
  for i = math.max(1, #recs - (root.maxLog or 1000) + 1), #recs do
    out[#out + 1] = jsonRecord(recs[i])
  end
  return "[" .. table.concat(out, ", ") .. "]"
end

local function markLog(root)
  local h = sl.logging.history(1)
  rawset(root, "_logMark", h[#h] or false)
end

function M.addRootNodes(root)
  markLog(root)
  local LV, LC, Link = localvar.LocalVariable, LocalCommand, localvar.LinkVariable
  rawset(root, "_varListeners", rawget(root, "_varListeners") or {})
  root:add(LV{name = "RogueVersion", value = sl.version, mode = "RO",
              description = "Rogue Version String"})
  root:add(LV{name = "RogueDirectory", value = rogueDirectory(), mode = "RO",
              description = "Rogue Library Directory"})
  root:add(LV{name = "SystemLog", value = "[]", mode = "RO", hidden = true,
              groups = {"NoStream", "NoSql", "NoState"},
              localGet = function() return systemLog(root, false) end,
              description = "String containing newline separated system logic entries"})
  root:add(LV{name = "SystemLogLast", value = "", mode = "RO", hidden = true,
              groups = {"NoStream", "NoState"},
              localGet = function() return systemLog(root, true) end,
              description = "String containing last system log entry"})
  root:add(LV{name = "ForceWrite", value = false, mode = "RW", hidden = true,
              description = "Configuration Flag To Always Write Non Stale Blocks For WriteAll, LoadConfig and setYaml"})
  root:add(LV{name = "InitAfterConfig", value = false, mode = "RW", hidden = true,
              description = "Configuration Flag To Execute Initialize after LoadConfig or setYaml"})
  root:add(LV{name = "Time", value = os.time() + 0.0, mode = "RO", hidden = true,
              groups = {"NoSql"}, description = "Current Time In Seconds Since EPOCH UTC"})
  root:add(Link{name = "LocalTime", value = "", mode = "RO",
                groups = {"NoStream", "NoSql", "NoState"}, linkedGet = localTime,
                dependencies = {root.Time}, description = "Local Time"})
  root:add(LV{name = "PollEn", value = false, mode = "RW",
              groups = {"NoStream", "NoSql", "NoState"},
              localSet = function(kw) setPollEn(root, kw.value) end,
              localGet = function() return getPollEn(root) end})

  local function cmd(name, f, extra)
    local a = {name = name, func = f, hidden = true}
    for k, v in pairs(extra or {}) do a[k] = v end
    root:add(LC(a))
  end
  cmd("WriteAll", function(kw) return kw.root:_writeAll(kw.root.ForceWrite:value()) end,
      {description = "Write all values to the hardware"})
  cmd("ReadAll", function(kw) return kw.root:_readAll() end,
      {description = "Read all values from the hardware"})
  cmd("SaveState", function(kw)
        return yamlCall(kw.root, "saveYaml")(kw.root, {name = kw.arg, readFirst = true,
          modes = {"RW", "RO", "WO"}, excGroups = "NoState", autoPrefix = "state",
          autoCompress = true})
      end, {value = "", takesArg = true,
            description = "Save state to file. Data is saved in YAML format. Passed arg is full path to file to sore data to."})
  cmd("SaveConfig", function(kw)
        return yamlCall(kw.root, "saveYaml")(kw.root, {name = kw.arg, readFirst = true,
          modes = {"RW", "WO"}, excGroups = "NoConfig", autoPrefix = "config",
          autoCompress = false})
      end, {value = "", takesArg = true,
            description = "Save configuration to file. Data is saved in YAML format. Passed arg is full path to file to store data to."})
  cmd("LoadConfig", function(kw)
        return yamlCall(kw.root, "loadYaml")(kw.root, {name = kw.arg, writeEach = false,
          modes = {"RW", "WO"}, excGroups = "NoConfig"})
      end, {value = "", takesArg = true,
            description = "Read configuration from file. Data is read in YAML format. Passed arg is full path to file to read data from."})
  cmd("RemoteVariableDump", function(kw)
        return M.remoteVariableDump(kw.root, kw.arg, {"RW", "WO", "RO"}, true)
      end, {value = "", takesArg = true, description = "Save a dump of the remote variable state"})
  cmd("RemoteConfigDump", function(kw)
        return M.remoteVariableDump(kw.root, kw.arg, {"RW", "WO"}, true)
      end, {value = "", takesArg = true, description = "Save a dump of the remote variable state"})
  cmd("Initialize", function(kw) kw.root:initialize() end,
      {description = "Generate a soft reset to each device in the tree"})
  cmd("HardReset", function(kw) kw.root:hardReset() end,
      {description = "Generate a hard reset to each device in the tree"})
  cmd("CountReset", function(kw) kw.root:countReset() end,
      {description = "Generate a count reset to each device in the tree"})
  cmd("ClearLog", function(kw) M.clearLog(kw.root) end,
      {description = "Clear the message log contained in the SystemLog variable"})
  cmd("SetYamlConfig", function(kw)
        return yamlCall(kw.root, "setYaml")(kw.root, {yml = kw.arg, writeEach = false,
          modes = {"RW", "WO"}, excGroups = "NoConfig"})
      end, {value = "", takesArg = true,
            description = "Set configuration from YAML string. Passed arg is configuration string in YAML format."})
  cmd("GetYamlConfig", function(kw)
        return yamlCall(kw.root, "getYaml")(kw.root, {readFirst = kw.arg,
          modes = {"RW", "WO"}, excGroups = "NoConfig", recurse = true})
      end, {value = true, retValue = "", takesArg = true,
            description = "Get configuration in YAML string. Passed arg is a boolean indicating if a full system read should be generated. Return data is configuration as a YAML string."})
  cmd("GetYamlState", function(kw)
        return yamlCall(kw.root, "getYaml")(kw.root, {readFirst = kw.arg,
          modes = {"RW", "RO", "WO"}, excGroups = "NoState", recurse = true})
      end, {value = true, retValue = "", takesArg = true,
            description = "Get current state as YAML string. Pass read first arg."})
  local proc = node.optional("streamlua.pyrogue.process")
  if type(proc) == "table" then proc.addRootProcesses(root) end
end

function M.clearLog(root)
  markLog(root)
  root.SystemLog:set("[]")
  root.SystemLogLast:set("")
end

-- The Root's hardReset also clears the log.
local Root = require("streamlua.pyrogue.root").Root
if rawget(Root, "hardReset") == nil then
  function Root:hardReset()
    Device.hardReset(self)
    M.clearLog(self)
  end
end

M._export = {}
return M
