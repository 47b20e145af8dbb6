-- port_register.lua: a pyrogue register script ported line by line
-- (README, "Porting guide"): a Device class with remote and local
-- variables and a command, a Root holding it over an emulated memory,
-- access, ReadAll and the configuration as YAML.
--
--   streamlua examples/port_register.lua
local sl = require "streamlua"
local pr = sl.pyrogue

local function Regs(args)
  local dev = pr.Device(args)
  dev:add(pr.RemoteVariable{name = "ScratchPad", offset = 0x0, bitSize = 32, mode = "RW",
                            base = pr.UInt, disp = "{:#08x}"})
  dev:add(pr.RemoteVariable{name = "Mode", offset = 0x4, bitSize = 2, bitOffset = 0, mode = "RW",
                            enum = {[0] = "Off", [1] = "Slow", [2] = "Fast"}})
  dev:add(pr.RemoteVariable{name = "Temp", offset = 0x8, bitSize = 16, mode = "RO",
                            base = pr.Int, units = "C"})
  dev:add(pr.RemoteCommand{name = "Reset", offset = 0xC, bitSize = 1,
                           func = pr.BaseCommand.toggle})
  dev:add(pr.LocalVariable{name = "Note", value = "",
                           localSet = function(kw) print("note: " .. kw.value) end})
  return dev
end

local function Top()
  local root = pr.Root{name = "Top", pollEn = false}
  local mem = sl.memory.Emulate(4, 0x1000)
  root:addInterface(mem)
  root:add(Regs{name = "Regs", offset = 0x1000, memBase = mem})
  return root
end

local root = Top()
root:start()
root.Regs.ScratchPad:set(0x1234)
print(root.Regs.ScratchPad:get(), root.Regs.ScratchPad:getDisp())
root.Regs.Mode:setDisp("Fast")
print(root.Regs.Mode:get(), root.Regs.Mode:getDisp())
root.Regs.Note:set("hello")
root.Regs.Reset()
root.ReadAll()
print(root.Regs.Temp:get(), root.Regs.Temp.units)
print(root:getYaml{readFirst = false, modes = {"RW"}, excGroups = {"NoConfig"}})
root:stop()
