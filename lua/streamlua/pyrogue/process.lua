-- streamlua.pyrogue.process: Process, a Device that runs an operation and
-- reports on it, and the Root's two configuration processes.
--
-- pr.Process{argVariable=, returnVariable=, func=, ...Device arguments}:
-- children Start and Stop (commands), Running, Progress ({:1.2f}, 0..1),
-- Message, Step, TotalSteps (RO) and UpdatePeriod (RW, hidden), in
-- pyrogue's order. proc() or proc.Start() runs the operation to its end on
-- the calling thread (pyrogue starts a thread; here waits serve the loop,
-- so the tree stays usable): func{root=, dev=, arg=} (arg from
-- argVariable, the result into returnVariable), or the subclass's
-- `_process(self)`. Errors are logged and end in Message "Stopped after
-- error!". setProgress(x), setTotalSteps(n), setStep(n), incrementSteps(n).
-- The status variables are not polled (pyrogue polls them every second).
--
-- pr.LoadConfigProcess: LoadMode (File/String), ConfigFile, YamlString; runs
-- loadYaml(ConfigFile) or setYaml(YamlString) as LoadConfig does.
-- pr.SaveConfigProcess: DataType (Config/Status), SaveMode (File/String),
-- ConfigFile, YamlString (RO): saveYaml as SaveConfig/SaveState do, or the
-- getYaml text into YamlString. Errors end in Message "Error: <text>".
-- addRootProcesses(root) adds one of each to a Root.
local node = require "streamlua.pyrogue.node"
local device = require "streamlua.pyrogue.device"
local localvar = require "streamlua.pyrogue.localvar"
local command = require "streamlua.pyrogue.command"

local M = {}

local LV, LC = localvar.LocalVariable, command.LocalCommand

local Process = node.class("Process", device.Device)
M.Process = Process

function Process:_init(args)
  local dargs = {}
  for k, v in pairs(args) do
    if k ~= "argVariable" and k ~= "returnVariable" and k ~= "func" then dargs[k] = v end
  end
  device.Device._init(self, dargs)
  self._argVar, self._retVar, self._func = args.argVariable, args.returnVariable, args.func
  self._runEn = false
  self:add(LC{name = "Start", func = function() self:_startProcess() end,
              description = "Start process. No Args."})
  self:add(LC{name = "Stop", func = function() self:_stopProcess() end,
              description = "Stop process. No Args."})
  self:add(LV{name = "Running", mode = "RO", value = false,
              description = "Status values indicating if operation is running."})
  self:add(LV{name = "Progress", mode = "RO", units = "Pct", value = 0.0, disp = "{:1.2f}",
              description = "Percent complete: 0 - 100 %."})
  self:add(LV{name = "Message", mode = "RO", value = "",
              description = "Process status message. Prefixed with 'Error:' if an error occurred."})
  self:add(LV{name = "Step", mode = "RO", value = 1,
              description = "Current number of completed steps."})
  self:add(LV{name = "TotalSteps", mode = "RO", value = 1,
              description = "Total number of process steps."})
  self:add(LV{name = "UpdatePeriod", mode = "RW", value = 1.0, typeStr = "float", units = "s",
              hidden = true, description = "updateGroup leak period in seconds."})
  if self._argVar and self._argVar._parent == nil then self:add(self._argVar) end
  if self._retVar and self._retVar._parent == nil then self:add(self._retVar) end
end

function Process:setProgress(value)
  self.Progress:set(math.max(0.0, math.min(value + 0.0, 1.0)))
end

local function updateProgress(self)
  local total = self.TotalSteps:value()
  self:setProgress(total <= 0 and 0.0 or self.Step:value() / total)
end

function Process:setTotalSteps(n)
  self.TotalSteps:set(n)
  updateProgress(self)
end

function Process:setStep(n)
  self.Step:set(n)
  updateProgress(self)
end

function Process:incrementSteps(n)
  self:setStep(self.Step:value() + (n or 1))
end

function Process:_startProcess() self() end
function Process:_stopProcess() self._runEn = false end

function Process:__call(arg)
  if self.Running:value() then
    require("streamlua").logging.log("pyrogue.Device." .. self.path, "Warning",
                                     "Process already running!")
    return nil
  end
  if arg ~= nil and self._argVar then self._argVar:setDisp(arg) end
  self._runEn = true
  self.Running:set(true)
  local ok, err = pcall(self._process, self)
  self._runEn = false
  self.Running:set(false)
  if not ok then
    require("streamlua").logging.log("pyrogue.Device." .. self.path, "Error", tostring(err))
    self.Message:setDisp("Stopped after error!")
  end
  return nil
end

function Process:_process()
  if self._func then
    self.Message:setDisp("Running")
    self:setStep(0)
    self:setProgress(0.0)
    local arg = self._argVar and self._argVar:get() or nil
    local ret = self._func{root = self._root, dev = self, arg = arg}
    if self._retVar then self._retVar:set(ret) end
    if self._runEn then
      self.Message:setDisp("Done")
      self:setProgress(1.0)
    elseif not (self.Message:value():match("^Stopped") or self.Message:value():match("^Error:")) then
      self.Message:setDisp("Stopped")
    end
  else
    self.Message:setDisp("Done")
    self:setProgress(1.0)
  end
end

-- Runs op, reporting Running/Done or the error in Message.
local function report(self, op)
  self.Message:setDisp("Running")
  self:setProgress(0.0)
  local ok, err = pcall(op)
  self.Message:setDisp(ok and "Done" or ("Error: " .. tostring(err)))
  self:setProgress(1.0)
end

local LoadConfigProcess = node.class("LoadConfigProcess", Process)
M.LoadConfigProcess = LoadConfigProcess

function LoadConfigProcess:_init(args)
  Process._init(self, args)
  self:add(LV{name = "LoadMode", mode = "RW", value = 0, disp = {[0] = "File", [1] = "String"},
              description = "Source of configuration data: File reads from ConfigFile; String applies YamlString."})
  self:add(LV{name = "ConfigFile", mode = "RW", value = "",
              description = "Path to YAML configuration file. Used when LoadMode is File."})
  self:add(LV{name = "YamlString", mode = "RW", value = "",
              description = "YAML configuration text to apply. Used when LoadMode is String."})
end

function LoadConfigProcess:_process()
  report(self, function()
    local root = self._root
    if self.LoadMode:value() == 0 then
      local cfg = tostring(self.ConfigFile:value()):match("^%s*(.-)%s*$")
      if cfg == "" then error("ConfigFile is empty", 0) end
      root:loadYaml{name = cfg, writeEach = false, modes = {"RW", "WO"}, excGroups = "NoConfig"}
    else
      local yml = tostring(self.YamlString:value())
      if not yml:find("%S") then error("YamlString is empty", 0) end
      root:setYaml{yml = yml, writeEach = false, modes = {"RW", "WO"}, excGroups = "NoConfig"}
    end
  end)
end

local SaveConfigProcess = node.class("SaveConfigProcess", Process)
M.SaveConfigProcess = SaveConfigProcess

function SaveConfigProcess:_init(args)
  Process._init(self, args)
  self:add(LV{name = "DataType", mode = "RW", value = 0, disp = {[0] = "Config", [1] = "Status"},
              description = "Variable set to include: Config uses RW/WO modes excluding NoConfig; Status uses RW/RO/WO modes excluding NoState."})
  self:add(LV{name = "SaveMode", mode = "RW", value = 0, disp = {[0] = "File", [1] = "String"},
              description = "Output destination: File writes to ConfigFile; String stores the result in YamlString."})
  self:add(LV{name = "ConfigFile", mode = "RW", value = "",
              description = "Output file path. Used when SaveMode is File. Auto-named with a timestamp prefix if empty."})
  self:add(LV{name = "YamlString", mode = "RO", value = "",
              description = "Captured YAML output. Populated when SaveMode is String."})
end

function SaveConfigProcess:_process()
  report(self, function()
    local root = self._root
    local config = self.DataType:value() == 0
    local modes = config and {"RW", "WO"} or {"RW", "RO", "WO"}
    local exc = config and "NoConfig" or "NoState"
    if self.SaveMode:value() == 0 then
      root:saveYaml{name = self.ConfigFile:value(), readFirst = true, modes = modes,
                    excGroups = exc, autoPrefix = config and "config" or "state",
                    autoCompress = not config}
    else
      self.YamlString:set(root:getYaml{readFirst = true, modes = modes, excGroups = exc})
    end
  end)
end

function M.addRootProcesses(root)
  root:add(LoadConfigProcess{name = "LoadConfigProcess",
                             description = "Load configuration from a file or a YAML string."})
  root:add(SaveConfigProcess{name = "SaveConfigProcess",
                             description = "Save configuration or state to a file or a YAML string."})
end

return M
