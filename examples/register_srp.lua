-- register_srp.lua: the register bus over SRPv3 in one process. A plain
-- memory master reads and writes registers through sl.srp.SrpV3, whose
-- request frames go to an SrpV3Emulation playing the firmware (a sparse
-- memory); the responses come back the same way.
--
--   streamlua examples/register_srp.lua [count=100]
--
-- Writes `count` registers and reads them back, then shows a 64-bit
-- register, a block of bytes, a verify, a Hub splitting a transaction too
-- large for one SRP frame, a transaction that does not wait, and an error;
-- prints the SRP counters and the graph. Exits 1 if a register read back
-- wrong. Under `streamlua -i` the objects stay up at the prompt.
local sl = require "streamlua"

local count = tonumber(arg and arg[1]) or 100

local m, srp, emu = sl.memory.Master(), sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
m.name, srp.name, emu.name = "cpu", "SrpV3", "SrpV3Emulation"
_ = m >> srp                  -- the bus side: transactions to SRPv3
_ = srp == emu                -- request frames to the firmware, responses back

-- registers one by one: each call waits for its response
for i = 0, count - 1 do m:writeU32(0x1000 + 4 * i, 0xA5000000 + i) end
local wrong = 0
for i = 0, count - 1 do
  if m:readU32(0x1000 + 4 * i) ~= 0xA5000000 + i then wrong = wrong + 1 end
end
print(("registers   %d written and read back, %d wrong"):format(count, wrong))

m:writeU64(0x2000, 0x0123456789ABCDEF)
print(("64-bit      %#018x"):format(m:readU64(0x2000)))

-- a block of bytes in one transaction (SRPv3 sizes are multiples of 4)
local text = "register bus over SRPv3!"
m:write(0x3000, text)
print(("block       %q"):format(m:read(0x3000, #text)))
m:verify(0x3000, text)        -- reads back and raises on a difference
print("verify      ok")

-- SrpV3 takes at most 4096 bytes a request: a Hub splits larger ones
local hub = sl.memory.Hub(0x10000)
hub.name = "hub"
local big = sl.memory.Master()
big.name = "dma"
_ = big >> hub >> srp
local before = srp:counters().txFrames
local data = string.rep("0123456789abcdef", 640)          -- 10240 bytes
big:write(0, data)
local parts = srp:counters().txFrames - before
print(("split       %d bytes in %d requests, read back %s"):format(
  #data, parts, big:read(0, #data) == data and "equal" or "DIFFERENT"))

-- a transaction that does not wait: the callback runs from the loop
m:reqTransaction(0x1000, 4, sl.memory.Read, function(err, bytes)
  print(("callback    %s %#x"):format(err or "ok", string.unpack("<I4", bytes)))
  sl.stop()
end)
sl.run(5)

-- an error: SRPv3 refuses an address that is not a multiple of 4
local ok, err = pcall(m.readU32, m, 0x1002)
print("error       " .. (ok and "none" or tostring(err)))

local c = srp:counters()
print(("SrpV3       %d requests, %d responses, %d errors, %d drops"):format(
  c.txFrames, c.rxFrames, c.errors, c.drops))
print(sl.graph())

if sl.interactive and sl.interactive() then   -- streamlua -i: keep them at the prompt
  _G.m, _G.srp, _G.emu, _G.hub = m, srp, emu, hub
elseif wrong > 0 then
  os.exit(1)
end
