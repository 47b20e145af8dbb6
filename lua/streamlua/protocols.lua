--[[
streamlua.protocols: the Lua half of sl.protocols.UdpRssiPack. The module
embeds this file at build time and runs it once as it opens, handing it
the module table and UdpRssiPack's class table; it adds the waits, which
serve the event loop (timers, mailboxes, Ctrl-C) while the link opens.

  link:waitOpen([seconds])   -- true once open; false when the time is up
                             -- or the wait was interrupted (Ctrl-C, sl.stop)
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
