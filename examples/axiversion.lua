-- axiversion.lua: a register tree in the shape of a firmware version block
-- (scratch pad, version, build stamp, uptime counter, a reset command),
-- read and written through SRPv3 against an emulated firmware, all in one
-- process.
--
--   streamlua examples/axiversion.lua [uptime=2]
--
-- Builds the tree, writes and reads the scratch pad, pulses the reset,
-- then serves the loop while the uptime counter is polled (one monitor
-- line a second) until it reads `uptime` seconds, and prints the device
-- and the bus. examples/axiversion_tcp.lua runs the same tree against a
-- firmware in another process; it loads the definition from this file.
local sl = require "streamlua"
local pr = sl.pyrogue

-- A pyrogue Device subclass is a function returning a configured Device.
local function AxiVersion(args)
  local dev = pr.Device(args)
  dev:add(pr.RemoteVariable{name = "FpgaVersion", description = "FPGA firmware version",
                            offset = 0x00, bitSize = 32, bitOffset = 0, mode = "RO",
                            base = pr.UInt, disp = "{:#08x}"})
  dev:add(pr.RemoteVariable{name = "ScratchPad", description = "Register to test reads and writes",
                            offset = 0x04, bitSize = 32, bitOffset = 0, mode = "RW",
                            base = pr.UInt, disp = "{:#08x}"})
  dev:add(pr.RemoteVariable{name = "UpTimeCnt", description = "Seconds since the last reset",
                            offset = 0x08, bitSize = 32, bitOffset = 0, mode = "RO",
                            base = pr.UInt, disp = "{:d}", units = "seconds",
                            pollInterval = 1})
  dev:add(pr.RemoteCommand{name = "UserReset", description = "Pulses the user reset",
                           offset = 0x10C, bitSize = 1, bitOffset = 0,
                           func = pr.BaseCommand.toggle})
  dev:add(pr.RemoteVariable{name = "BuildStamp", description = "Firmware build string",
                            offset = 0x800, bitSize = 8 * 64, bitOffset = 0, mode = "RO",
                            base = pr.String})
  dev:add(pr.LocalVariable{name = "Note", description = "Kept in the tree only",
                           value = "", localSet = function(kw)
                             if kw.value ~= "" then print("note: " .. kw.value) end
                           end})
  return dev
end

-- The emulated firmware's registers, set through a raw master: the version
-- and build stamp at power-up, the uptime counter once a second.
local function firmware(slave)
  local m = sl.memory.Master()
  m.name = "firmware"
  _ = m >> slave
  m:writeU32(0x00, 0x02030400)
  local stamp = "AxiVersion: Vivado v2023.1, emulated, streamlua"
  m:write(0x800, stamp .. string.rep("\0", 64 - #stamp))
  local up = 0
  local timer = sl.every(1, function()
    up = up + 1
    m:writeU32(0x08, up)
  end)
  return {stop = function() timer:cancel() end, master = m}
end

-- Runs the demonstration on a tree whose AxiVersion reaches `memBase`;
-- `timeout` bounds each transaction (seconds).
local function demo(memBase, uptime, timeout)
  local root = pr.Root{name = "Top", timeout = timeout or 1.0}
  root:add(AxiVersion{name = "AxiVersion", offset = 0x0, memBase = memBase})
  root:start()
  local dev = root.AxiVersion
  print("FpgaVersion " .. dev.FpgaVersion:getDisp())
  print("BuildStamp  " .. dev.BuildStamp:get())
  dev.ScratchPad:set(0x1234)
  print(("ScratchPad  %s (read back %#x)"):format(dev.ScratchPad:getDisp(),
                                                  dev.ScratchPad:get()))
  dev.Note:set("hello from the tree")
  dev.UserReset()
  -- polling: the uptime counter is read once a second, on the loop
  local seen = 0
  dev.UpTimeCnt:addListener(function(_, value)
    seen = value.value
    if seen >= uptime then sl.stop() end
  end)
  local mon = sl.monitor(1, dev)
  sl.run(30)
  mon:cancel()
  print(("UpTimeCnt   %d seconds (polled)"):format(seen))
  print(dev)
  if sl.interactive() then
    _G.root = root                 -- streamlua -i: the tree stays up at the prompt
  else
    root:stop()
  end
  print(sl.graph())
  return seen
end

if type((...)) == "table" then   -- loaded by another example
  return {AxiVersion = AxiVersion, firmware = firmware, demo = demo}
end

local uptime = tonumber(arg and arg[1]) or 2
local srp, emu = sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
srp.name, emu.name = "SrpV3", "SrpV3Emulation"
_ = srp == emu                  -- requests to the emulation, responses back
local fw = firmware(srp)
demo(srp, uptime)
if not sl.interactive() then fw.stop() end
