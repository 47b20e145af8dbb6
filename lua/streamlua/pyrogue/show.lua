-- streamlua.pyrogue.show: the register tree at the REPL. Nothing here
-- touches the bus: values are the variables' valueDisp (the last value
-- read, written or polled).
--
--   print(dev)          once its tree has started: `Class(path)`, then one
--                       line per visible child: variables with valueDisp
--                       and units, commands as `name()`, devices as
--                       `Class(path)`; before the start, `Class(path)`
--   print(var)          `Class(path) = valueDisp units` once started
--   dev:monitorText()   `path: A=1 ms  B=0x2` — the device's polled
--                       variables (every variable of it and below with a
--                       poll interval), or its own variables when none is
--                       polled; sl.monitor(period, dev) prints it each period
--   sl.graph()          at start every device's hub is named by the
--                       device's path and every block by `path@0xOFFSET`
--                       (the block's offset in its device), so the memory
--                       links read `Top.Dev@0x4 -> Top.Dev* -> ...`
local variable = require "streamlua.pyrogue.variable"
local device = require "streamlua.pyrogue.device"
local root = require "streamlua.pyrogue.root"

local M = {}

local Device, BaseVariable, Root = device.Device, variable.BaseVariable, root.Root

local function header(n)
  return ("%s(%s)"):format(n._className, n.path)
end

local function started(n)
  local r = rawget(n, "_root")
  return r ~= nil and rawget(r, "_shown") == true
end

-- valueDisp and units; an error shows as <error: text>.
local function dispOf(v)
  local ok, s = pcall(v.valueDisp, v)
  if not ok then return ("<error: %s>"):format(tostring(s)) end
  s = tostring(s)
  local u = v.units
  if u ~= nil and u ~= "" then s = s .. " " .. tostring(u) end
  return s
end
M.dispOf = dispOf

function BaseVariable:_show()
  if self._isCommand or not started(self) then return header(self) end
  return header(self) .. " = " .. dispOf(self)
end

function Device:_show()
  if not started(self) then return header(self) end
  local rows, width = {}, 0
  for _, n in ipairs(self._nodes) do
    if not n.hidden then
      local name, text = n.name, ""
      if n._isCommand then
        name = name .. "()"
      elseif n._isVariable then
        text = dispOf(n)
      elseif n._isDevice then
        text = header(n)
      end
      if #name > width then width = #name end
      rows[#rows + 1] = {name, text}
    end
  end
  local out = {header(self)}
  for _, r in ipairs(rows) do
    out[#out + 1] = ("  %-" .. width .. "s  %s"):format(r[1], r[2]):gsub("%s+$", "")
  end
  return table.concat(out, "\n")
end

-- The variables a monitor line shows (see the header).
local function monitored(dev)
  local out = {}
  for _, v in ipairs(dev:variableList()) do
    if not v._isCommand and (v.pollInterval or 0) > 0 then out[#out + 1] = v end
  end
  if #out == 0 then out = dev:variables() end
  return out
end

function Device:monitorText()
  local parts = {}
  for _, v in ipairs(monitored(self)) do
    local name = v.path:sub(#self.path + 2)
    parts[#parts + 1] = name .. "=" .. dispOf(v)
  end
  return self.path .. ": " .. table.concat(parts, "  ")
end

-- Names the hubs and blocks of the tree for sl.graph().
function M.nameBus(r)
  for _, d in ipairs(r:deviceList()) do
    d._hub.name = d.path
    for _, b in ipairs(d._blocks or {}) do
      local cb = rawget(b, "_cb")
      if cb ~= nil and b.offset ~= nil then
        cb.name = ("%s@0x%x"):format(d.path, b.offset)
      end
    end
  end
  r._hub.name = r.path
end

local baseStart = Root.start
function Root:start(...)
  local ret = baseStart(self, ...)
  self._shown = true
  M.nameBus(self)
  return ret
end

M._export = {}
return M
