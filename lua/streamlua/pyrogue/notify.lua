-- streamlua.pyrogue.notify: update notification (listeners), served by the
-- loop on the main thread. It adds these methods to pr.Root:
--
--   root:addVarListener(func [, {done=, incGroups=, excGroups=}])
--       func(path, value) for every updated variable passing the group
--       filter; done() after each batch.
--   root:updateGroup([period])  -> a token for `local _ <close> = ...`:
--       updates queued until the token closes form one batch (with a
--       period, a batch also goes out every `period` seconds). Also
--       root:updateGroup(fn [, period]) runs fn inside a group.
--   root:waitOnUpdate()         delivers the queued updates now (outside a
--       group), instead of on the next turn of the loop.
--   root:_queueUpdate(var)      queues var (BaseVariable:_queueUpdate).
--
-- A variable's update is queued when its block's transaction completes and
-- is waited for (remote variables, tree part), on LocalVariable set/get
-- (localvar.lua), and when a command taking an argument runs. Queued
-- variables are kept once each, in queue order, and delivered together by
-- a zero-delay loop timer (or at the end of the outermost updateGroup):
-- the batch is extended with every variable listening to one in it,
-- recursively (LinkVariables listen to their dependencies); for each
-- variable, its value is taken without reading (get{read=false}, so a
-- LinkVariable's linkedGet runs with read=false), then its function
-- listeners and the Root's listeners are called with (path, value), value
-- being {value=, valueDisp=, disp=, enum=, status=, severity=, updated=false}.
-- A listener's error is logged on pyrogue.Root and the delivery goes on.
-- Updates are queued only while the Root runs. Also here: the heartbeat
-- setting root.Time every second while the Root runs (start/stop wrapped).
local sl = require "streamlua"
local node = require "streamlua.pyrogue.node"
local variable = require "streamlua.pyrogue.variable"
local Root = require("streamlua.pyrogue.root").Root

local M = {}

local BaseVariable = variable.BaseVariable
local isinstance = node.isinstance

local function logErr(msg)
  sl.logging.log("pyrogue.Root", "Error", msg)
end

-- pyrogue's alarm status and severity of a value.
local function alarmState(var, value)
  if type(value) == "table" then return "None", "None" end
  local la, ha, lw, hw = var.lowAlarm, var.highAlarm, var.lowWarning, var.highWarning
  if la == nil and ha == nil and lw == nil and hw == nil then return "None", "None" end
  if type(value) ~= "number" then return "None", "None" end
  if la ~= nil and value < la then return "AlarmLoLo", "AlarmMajor" end
  if ha ~= nil and value > ha then return "AlarmHiHi", "AlarmMajor" end
  if lw ~= nil and value < lw then return "AlarmLow", "AlarmMinor" end
  if hw ~= nil and value > hw then return "AlarmHigh", "AlarmMinor" end
  return "Good", "Good"
end
M.alarmState = alarmState

-- pyrogue's VariableValue: a snapshot of var (read from hardware if read).
function M.variableValue(var, read)
  local v = var:get{read = read and true or false}
  local st, sev = alarmState(var, v)
  return {value = v, valueDisp = var:genDisp(v), disp = var.disp, enum = var.enum,
          status = st, severity = sev, updated = false}
end

if rawget(BaseVariable, "getVariableValue") == nil then
  function BaseVariable:getVariableValue(read)
    return M.variableValue(self, read ~= false)
  end
end

local function state(root)
  local s = rawget(root, "_upd")
  if s == nil then
    s = {pending = {}, order = {}, group = 0, period = 0, last = 0, timer = nil}
    rawset(root, "_upd", s)
  end
  return s
end

local function isVarListener(l)
  return isinstance(l, BaseVariable)
end

-- Adds the variables listening to var, recursively, to the batch.
local function addListeners(var, seen, list)
  for _, l in ipairs(var._listeners) do
    if isVarListener(l) and not seen[l] then
      seen[l] = true
      list[#list + 1] = l
      addListeners(l, seen, list)
    end
  end
end

local function deliver(root, list)
  local seen = {}
  for _, v in ipairs(list) do seen[v] = true end
  local n = #list
  for i = 1, n do addListeners(list[i], seen, list) end
  local rl = root._varListeners or {}
  for _, var in ipairs(list) do
    local ok, val = pcall(M.variableValue, var, false)
    if not ok then
      logErr(("Error updating variable %s: %s"):format(var.path, tostring(val)))
    else
      local path = var.path
      for _, l in ipairs(var._listeners) do
        if not isVarListener(l) then
          local ok2, err = pcall(l, path, val)
          if not ok2 then logErr(tostring(err)) end
        end
      end
      for _, e in ipairs(rl) do
        if var:filterByGroup(e.incGroups, e.excGroups) then
          local ok2, err = pcall(e.func, path, val)
          if not ok2 then logErr(tostring(err)) end
        end
      end
    end
  end
  for _, e in ipairs(rl) do
    if e.done then
      local ok, err = pcall(e.done)
      if not ok then logErr(tostring(err)) end
    end
  end
end

-- Delivers the pending batch (unless a group holds it and no period ran out).
local function flush(root, force)
  local s = state(root)
  s.timer = nil
  if s.group > 0 and not force then
    if s.period == 0 or sl.now() - s.last <= s.period then return end
  end
  local list = s.order
  if #list == 0 then return end
  s.order, s.pending, s.last = {}, {}, sl.now()
  deliver(root, list)
end

local function schedule(root, s)
  if s.timer == nil then
    s.timer = sl.after(0, function() flush(root) end)
  end
end

function Root:_queueUpdate(var)
  if not self.running then return end
  local s = state(self)
  if s.pending[var] then return end
  s.pending[var] = true
  s.order[#s.order + 1] = var
  if s.group == 0 or (s.period ~= 0 and sl.now() - s.last > s.period) then
    schedule(self, s)
  end
end

function Root:addVarListener(func, opts)
  if type(func) ~= "function" and not (getmetatable(func) or {}).__call then
    error("Root.addVarListener: argument 'func' must be a function", 2)
  end
  opts = opts or {}
  local vl = rawget(self, "_varListeners")
  if vl == nil then vl = {}; rawset(self, "_varListeners", vl) end
  vl[#vl + 1] = {func = func, done = opts.done, incGroups = opts.incGroups,
                 excGroups = opts.excGroups}
end

local Group = {}
Group.__index = Group
function Group:__close()
  if self.closed then return end
  self.closed = true
  local s = state(self.root)
  if s.group > 0 then s.group = s.group - 1 end
  if s.group == 0 and #s.order > 0 then schedule(self.root, s) end
end
Group.close = Group.__close

function Root:updateGroup(a, b)
  local fn, period = nil, a
  if type(a) == "function" then fn, period = a, b end
  period = period or 0
  local s = state(self)
  if s.group == 0 or s.period < period then s.period = period end
  if s.group == 0 then s.last = sl.now() end
  s.group = s.group + 1
  local g = setmetatable({root = self}, Group)
  if fn == nil then return g end
  local ok, err = pcall(fn)
  g:__close()
  if not ok then error(err, 0) end
end

-- The heartbeat: Time is set to the epoch time every second while the Root
-- runs (started after the Root's own start, stopped before its stop).
local baseStart, baseStop = Root.start, Root.stop

function Root:start(...)
  local r = baseStart(self, ...)
  local t = rawget(self, "Time")
  if t ~= nil and rawget(self, "_heartbeat") == nil then
    rawset(self, "_heartbeat", sl.every(1, function()
      local _ <close> = self:updateGroup()
      t:set(os.time() + 0.0)
    end))
  end
  return r
end

function Root:stop(...)
  local hb = rawget(self, "_heartbeat")
  if hb ~= nil then
    hb:cancel()
    rawset(self, "_heartbeat", nil)
  end
  return baseStop(self, ...)
end

function Root:waitOnUpdate()
  local s = state(self)
  if s.group > 0 then return end
  flush(self, true)
end

return M
