--[[
streamlua.protocols: the Lua half of sl.protocols.UdpRssiPack. The module
embeds this file at build time and runs it once as it opens, handing it
the module table and UdpRssiPack's class table; it adds the waits, which
serve the event loop (timers, mailboxes, Ctrl-C) while the link opens.

  link:waitOpen([seconds])   -- true once open; false when the time is up
                             -- or the wait was interrupted (Ctrl-C, sl.stop)
  link.rssiOpen:get()        -- pyrogue's variables of the link (see VARIABLES)
  link.locMaxBuffers:set(8)  -- read-write ones set the RSSI layer's loc value
  link:variables()           -- their names, in pyrogue's order
]]
local sl, UdpRssiPack = ...
if type(sl) ~= "table" or type(UdpRssiPack) ~= "table" then
  error("streamlua.protocols is run by the streamlua module: use sl.protocols", 2)
end

local LOGGER = "protocols.UdpRssiPack"
local POLL = 0.001               -- seconds between looks at the link

-- Serves the loop until the link is open ("open"), `seconds` pass
-- ("timeout") or the serve ends another way ("interrupted"). each_second,
-- if given, is called with the seconds waited, once a second.
local function serve_until_open(self, seconds, each_second)
  if self:getOpen() then return "open" end
  local t0 = sl.now()
  local next_tick, timed_out = t0 + 1, false
  local timer = sl.every(POLL, function()
    if self:getOpen() then return sl.stop() end
    if each_second and sl.now() >= next_tick then
      next_tick = next_tick + 1
      each_second(sl.now() - t0)
    end
  end)
  local limit = seconds and sl.after(seconds, function()
    timed_out = true
    sl.stop()
  end)
  local ok, err = pcall(sl.run)
  timer:cancel()
  if limit then limit:cancel() end
  if not ok then error(err, 0) end
  if self:getOpen() then return "open" end
  return timed_out and "timeout" or "interrupted"
end

local function check_seconds(fn, seconds)
  if seconds ~= nil and (type(seconds) ~= "number" or not (seconds > 0)) then
    error(string.format("bad argument #1 to '%s' (positive number of seconds expected, got %s)",
      fn, seconds == nil and "no value" or type(seconds)), 3)
  end
end

-- pyrogue's tree variables of UdpRssiPack, in its order: name, the RSSI
-- layer's getter and, for read-write ones, its setter (effective at the
-- next SYN). locBusy and remBusy are hidden in pyrogue's tree.
local VARIABLES = {
  {"rssiOpen", "getOpen"}, {"rssiDownCount", "getDownCount"},
  {"rssiDropCount", "getDropCount"}, {"rssiRetranCount", "getRetranCount"},
  {"locBusy", "getLocBusy", hidden = true}, {"locBusyCnt", "getLocBusyCnt"},
  {"remBusy", "getRemBusy", hidden = true}, {"remBusyCnt", "getRemBusyCnt"},
  {"curMaxBuffers", "curMaxBuffers"}, {"curMaxSegment", "curMaxSegment"},
  {"curCumAckTout", "curCumAckTout"}, {"curRetranTout", "curRetranTout"},
  {"curNullTout", "curNullTout"}, {"curMaxRetran", "curMaxRetran"},
  {"curMaxCumAck", "curMaxCumAck"},
  {"locTryPeriod", "getLocTryPeriod", "setLocTryPeriod"},
  {"locMaxBuffers", "getLocMaxBuffers", "setLocMaxBuffers"},
  {"locMaxSegment", "getLocMaxSegment", "setLocMaxSegment"},
  {"locCumAckTout", "getLocCumAckTout", "setLocCumAckTout"},
  {"locRetranTout", "getLocRetranTout", "setLocRetranTout"},
  {"locNullTout", "getLocNullTout", "setLocNullTout"},
  {"locMaxRetran", "getLocMaxRetran", "setLocMaxRetran"},
  {"locMaxCumAck", "getLocMaxCumAck", "setLocMaxCumAck"},
}

-- One variable: name, mode ("RO" or "RW"), hidden; get() (value() too)
-- and, read-write, set(v).
local Variable = {}
Variable.__index = Variable

function Variable.get(self) return self._rssi[self._get](self._rssi) end
Variable.value = Variable.get

function Variable.set(self, v)
  if not self._set then
    error(string.format("UdpRssiPack.%s is read-only (mode RO)", self.name), 2)
  end
  self._rssi[self._set](self._rssi, v)
end

function Variable.__tostring(self)
  return string.format("UdpRssiPack.%s (%s)", self.name, self.mode)
end

-- Run by the constructor: each variable becomes a field of the link.
function UdpRssiPack._addVariables(self)
  local rssi = self:rssi()
  for _, v in ipairs(VARIABLES) do
    self[v[1]] = setmetatable({name = v[1], mode = v[3] and "RW" or "RO",
                               hidden = v.hidden == true, _rssi = rssi, _get = v[2],
                               _set = v[3]}, Variable)
  end
end

function UdpRssiPack.variables(self)
  local names = {}
  for i, v in ipairs(VARIABLES) do names[i] = v[1] end
  return names
end

function UdpRssiPack.waitOpen(self, seconds)
  check_seconds("waitOpen", seconds)
  return serve_until_open(self, seconds) == "open"
end

-- The constructor's wait (wait = true, a client): pyrogue's warning once a
-- second while the link is not up; a time limit that runs out stops the
-- link and raises; an interrupted wait returns with the link still trying.
function UdpRssiPack._waitStart(self, seconds, host)
  local udp = self:udp()
  local where = string.format("host=%s, port=%d", host, self:getPort())
  local jumbo = udp:maxPayload() > 1472
  local result = serve_until_open(self, seconds, function(waited)
    local text = where .. " -> Establishing link ..."
    if jumbo and waited >= 10 then
      text = where .. " -> Failing to connect using jumbo frames. " ..
        "Check interface MTU settings with ifconfig -a"
    end
    sl.logging.log(LOGGER, sl.logging.Warning, text)
  end)
  if result == "timeout" then
    self:stop()
    error(string.format("UdpRssiPack: %s -> link not open after %g s", where, seconds), 0)
  elseif result == "interrupted" then
    sl.logging.log(LOGGER, sl.logging.Warning,
      where .. " -> wait interrupted; the link keeps trying")
  end
end
