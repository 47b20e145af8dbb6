--[[
streamlua.testing: a harness that wraps one module between a fake master
and a fake slave, so a spec (or a user checking a Lua-defined module) can
push frames in and pull frames out.

  local testing = require "streamlua.testing"
  local h = testing.harness(module)     -- module: a slave, maybe a master
  h:push("bytes", {channel = 1, error = 0, flags = 0})
  local f = h:pull()                    -- next frame out, or nil
  h:wait(n, seconds)                    -- serve the loop until n are out
  h:count()                             -- frames out so far, not yet pulled

  testing.frame("bytes", {channel = 2}) -- a frame holding those bytes
  testing.serveUntil(cond, seconds)     -- serve the loop until cond() holds
  testing.threads("sl-fifo")            -- threads of this process by name
]]
local sl = require "streamlua"

local M = {}

local function apply(f, opts)
  if opts then
    if opts.channel then f:setChannel(opts.channel) end
    if opts.error then f:setError(opts.error) end
    if opts.flags then f:setFlags(opts.flags) end
  end
  return f
end

local source = sl.stream.Master()

--- A frame holding `data`, with channel/error/flags from `opts`.
function M.frame(data, opts)
  if type(data) ~= "string" then
    error("bad argument #1 to 'frame' (string expected, got " .. type(data) .. ")", 2)
  end
  local f = source:reqFrame(#data, false)
  f:write(data)
  return apply(f, opts)
end

--- Serves the event loop until cond() holds, checking every 2 ms, or until
--- `seconds` (default 30: generous, as a loaded machine is slow) pass;
--- returns whether it held, as soon as it does.
function M.serveUntil(cond, seconds)
  if type(cond) ~= "function" then
    error("bad argument #1 to 'serveUntil' (function expected, got " .. type(cond) .. ")", 2)
  end
  if cond() then return true end
  local t = sl.every(0.002, function() if cond() then sl.stop() end end)
  sl.run(seconds or 30)
  t:cancel()
  return cond() and true or false
end

local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")

--- Threads of this process named `name` (Linux: /proc/self/task/*/comm),
--- or all of them without a name. A thread may take its name a moment after
--- it starts and one just joined may be listed a moment longer, so wait for
--- a count (serveUntil) rather than compare one reading.
function M.threads(name)
  if name ~= nil and type(name) ~= "string" then
    error("bad argument #1 to 'threads' (string expected, got " .. type(name) .. ")", 2)
  end
  local n = 0
  local ls = io.popen("ls /proc/" .. pid .. "/task 2>/dev/null")
  for tid in ls:lines() do
    if name == nil then
      n = n + 1
    else
      local f = io.open("/proc/" .. pid .. "/task/" .. tid .. "/comm")
      if f ~= nil then                   -- nil: it ended while listed
        if f:read("l") == name then n = n + 1 end
        f:close()
      end
    end
  end
  ls:close()
  return n
end

local Harness = {}
Harness.__index = Harness

--- Sends a frame made of `data` (or a Frame) into the module.
function Harness:push(data, opts)
  local f = type(data) == "string" and M.frame(data, opts) or apply(data, opts)
  self.input:sendFrame(f)
  return f
end

--- The oldest frame that came out and was not pulled yet, or nil.
function Harness:pull()
  local q = self.queue
  if q.first > q.last then return nil end
  local f = q[q.first]
  q[q.first] = nil
  q.first = q.first + 1
  return f
end

--- Frames waiting to be pulled.
function Harness:count()
  return self.queue.last - self.queue.first + 1
end

--- Serves the event loop until `n` frames wait to be pulled, or `seconds`
--- (default 30) pass; returns whether they did.
function Harness:wait(n, seconds)
  return M.serveUntil(function() return self:count() >= n end, seconds or 30)
end

--- Wraps `module` (a slave; if it is also a master its output is caught).
function M.harness(module)
  if type(module) ~= "userdata" or not pcall(function() return module.acceptFrame end)
     or module.acceptFrame == nil then
    error("bad argument #1 to 'harness' (stream slave expected, got " .. type(module) .. ")", 2)
  end
  local h = setmetatable({
    input = sl.stream.Master(),
    module = module,
    queue = {first = 1, last = 0},
  }, Harness)
  _ = h.input >> module
  if module.sendFrame ~= nil then
    local q = h.queue
    h.output = sl.stream.Slave{acceptFrame = function(_, f)
      q.last = q.last + 1
      q[q.last] = f
    end}
    _ = module >> h.output
  end
  return h
end

return M
