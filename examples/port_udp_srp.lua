-- port_udp_srp.lua: a pyrogue UDP/SRP script ported line by line (README,
-- "Porting guide"): a register tree over SRPv3 over UDP, the way a host
-- talks to firmware, with the firmware played by an SrpV3Emulation behind
-- a UDP server in the same process.
--
--   streamlua examples/port_udp_srp.lua
local sl = require "streamlua"
local pr = sl.pyrogue

-- the firmware: SRPv3 answered behind a UDP server
local fwUdp = sl.udp.Server(0, false)
local fwSrp = sl.srp.SrpV3Emulation()
_ = fwUdp == fwSrp

-- the host: SRPv3 over a UDP client
local udp = sl.udp.Client("127.0.0.1", fwUdp:getPort(), false)
local srp = sl.srp.SrpV3()
_ = srp == udp

local function Top()
  local root = pr.Root{name = "Top", pollEn = false, timeout = 2.0}
  local dev = pr.Device{name = "Fpga", offset = 0x0, memBase = srp}
  dev:add(pr.RemoteVariable{name = "Scratch", offset = 0x4, mode = "RW", disp = "{:#x}"})
  dev:addRemoteVariables(4, 4, {name = "Thresh", offset = 0x10, bitSize = 16, mode = "RW"})
  root:add(dev)
  return root
end

local root = Top()
root:start()
root.Fpga.Scratch:set(0xCAFE)
for i = 0, 3 do
  root.Fpga.Thresh[i]:set(100 * i)
end
root.ReadAll()
print(root.Fpga.Scratch:getDisp(), root.Fpga.Thresh[3]:get())
print(root.Fpga:getYaml{readFirst = true, modes = {"RW"}})
root:stop()
