-- fanout.lua: one master, a primary and two secondaries.
--
-- Shows the rule every Rogue user relies on: sendFrame calls the
-- secondaries first (newest first) and the primary last, and reqFrame
-- asks the primary for memory. The primary here "consumes" each frame
-- (empties its payload), as a zero-copy hardware sink does; the
-- secondaries still see the whole frame because they run first.
--
-- Run: streamlua examples/fanout.lua
local sl = require "streamlua"

local order = {}

local primary = sl.stream.Slave{acceptFrame = function(self, frame)
  order[#order + 1] = "primary(" .. #frame .. ")"
  frame:setPayload(0)                    -- consumed
end}

local function monitor(name)
  return sl.stream.Slave{acceptFrame = function(self, frame)
    order[#order + 1] = name .. "(" .. #frame .. ")"
  end}
end

local src = sl.stream.Master()
_ = src >> primary
_ = src >> monitor("monitorA")
_ = src >> monitor("monitorB")

local f = src:reqFrame(64, true)
f:write(string.rep("x", 64))
src:sendFrame(f)

print("slaves: " .. src:_slaveCount())
print("delivery order: " .. table.concat(order, " "))
print("payload after send: " .. #f)
