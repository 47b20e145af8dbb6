-- Shared by the sl.pyrogue specs: a recording memory slave, the trace
-- format of the tree reference (`W 0x1004 4 78563412`), and a few trees.
--
--   local ph = require "spec.pyrogue_helper"
--   local rec = ph.recorder{min = 4, max = 0}   -- rec.slave: a sl.memory.Slave
--   ... root:start(); dev.Var:set(5)
--   assert.same({"W 0x1004 4 05000000", "V 0x1004 4 05000000"}, rec:take())
--
-- The recorder completes every transaction inside doTransaction from a
-- sparse memory (rec.mem: address -> byte; never written reads 0). Writes
-- and posts log their data, verifies the data they return, reads none.
-- rec.fail = function(type, address, size) -> error text or nil fails a
-- transaction; rec.corrupt = function(type, address, data) -> data changes
-- what a read or verify returns; rec.hold = true keeps transactions pending
-- (rec.pending) for the spec to complete with rec:release().
local sl = require "streamlua"

local M = {}

local NAMES = {"R", "W", "P", "V"}
M.NAMES = NAMES

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
M.hex = hex

-- Bytes of a hex string ("78563412" -> "\x78\x56\x34\x12").
function M.unhex(h)
  return (h:gsub("%s", ""):gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

local Rec = {}
Rec.__index = Rec

function Rec:take()
  local l = self.log
  self.log = {}
  return l
end

function Rec:poke(addr, bytes)
  for i = 1, #bytes do self.mem[addr + i - 1] = bytes:byte(i) end
end

function Rec:peek(addr, n)
  local t = {}
  for i = 1, n do t[i] = string.char(self.mem[addr + i - 1] or 0) end
  return table.concat(t)
end

function Rec:_serve(t)
  local a, n, ty = t:address(), t:size(), t:type()
  local err = self.fail and self.fail(ty, a, n)
  if ty == sl.memory.Write or ty == sl.memory.Post then
    local d = t:getData()
    self.log[#self.log + 1] = ("%s 0x%x %d %s"):format(NAMES[ty], a, n, hex(d))
    if err then return t:error(err) end
    self:poke(a, d)
  else
    local d = self:peek(a, n)
    if self.corrupt then d = self.corrupt(ty, a, d) or d end
    if ty == sl.memory.Verify then
      self.log[#self.log + 1] = ("V 0x%x %d %s"):format(a, n, hex(d))
    else
      self.log[#self.log + 1] = ("R 0x%x %d"):format(a, n)
    end
    if err then return t:error(err) end
    t:setData(d)
  end
  t:done()
end

function Rec:release()
  local p = self.pending
  self.pending = {}
  for _, t in ipairs(p) do self:_serve(t) end
end

function M.recorder(opts)
  opts = opts or {}
  local rec = setmetatable({log = {}, mem = {}, pending = {}}, Rec)
  rec.slave = sl.memory.Slave({doTransaction = function(_, t)
    if rec.hold then
      rec.pending[#rec.pending + 1] = t
      return
    end
    rec:_serve(t)
  end}, opts.min or 4, opts.max or 0)
  return rec
end

-- Runs f with sl.logging's stderr output off; returns the records logged
-- meanwhile whose name contains `part`, as "LEVEL name: message" lines.
local marker = 0
function M.captureLog(part, f)
  local lg = sl.logging
  marker = marker + 1
  -- unique in the process: each spec file loads this helper afresh, and the
  -- log history is the process's
  local tag = ("pyrogue_helper mark %d %.9f %s"):format(marker, os.clock(), tostring(M))
  lg.setEmit(false)
  lg.log("spec", "Critical", tag)
  local ok, err = pcall(f)
  lg.setEmit(true)
  local h, out, seen = lg.history(256), {}, false
  for _, line in ipairs(h) do
    if seen then
      local rec = line:match("^%S+ (.*)$") or line
      if rec:find(part, 1, true) then out[#out + 1] = rec end
    elseif line:find(tag, 1, true) then
      seen = true
    end
  end
  if not ok then error(err, 0) end
  return out
end

return M
