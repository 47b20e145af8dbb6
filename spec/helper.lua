-- Loaded by busted before the specs: find the build's module and the
-- pure-Lua files of this tree, and give specs a few shared tools.
local build = os.getenv("STREAMLUA_BUILD") or "build"
package.cpath = build .. "/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

-- A case whose server comes back on the port it had (a client waits for it
-- there) can meet another process that took the port meanwhile. Inside
-- retry_if_port_taken(case), port_again(make, addr, port) makes the server
-- again, and if the port is taken the case runs again from the start (on
-- fresh ports, at most 5 times); any other error is the case's failure.
local PORT_TAKEN = setmetatable({}, {__tostring = function() return "port taken" end})

function port_again(make, addr, port)
  local ok, srv = pcall(make, addr, port)
  if ok then return srv end
  if tostring(srv):find("Address already in use", 1, true) then error(PORT_TAKEN, 0) end
  error(srv, 2)
end

function retry_if_port_taken(case)
  for _ = 1, 5 do
    local ok, err = pcall(case)
    if ok then return end
    if err ~= PORT_TAKEN then error(err, 0) end
    collectgarbage(); collectgarbage()   -- the attempt's client stops
  end
  error("another process took the port 5 times in a row", 0)
end

-- Files and shell words, for specs that run programs.

-- s as one word for /bin/sh.
function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The file's bytes, or `missing` (nil unless given) when it cannot be read.
function slurp(path, missing)
  local f = io.open(path, "rb")
  if not f then return missing end
  local s = f:read("a")
  f:close()
  return s
end

function spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- The streamlua program the specs run (STREAMLUA_BIN, or the build's).
STREAMLUA_BIN = os.getenv("STREAMLUA_BIN") or "build/streamlua"

-- Runs one simple command (a program and its shell-quoted arguments) under
-- timeout(1): opts.timeout seconds (60 unless given), then SIGKILL 5 s
-- later. Its stdin is opts.input (bytes), or the output of the shell
-- command opts.feed, or /dev/null. Returns stdout, stderr and the exit
-- code (124 when the bound ran out); with opts.merged, stderr goes into
-- stdout in the order written and the second value is "".
function run(cmd, opts)
  opts = opts or {}
  local errf, inf = os.tmpname(), nil
  local stdin = "</dev/null"
  if opts.input then
    inf = os.tmpname()
    spit(inf, opts.input)
    stdin = "<" .. shell_quote(inf)
  end
  local line = string.format("%s timeout -k 5 %d %s %s %s; echo \"@rc=$?\"",
    opts.feed and (opts.feed .. " |") or "", opts.timeout or 60, cmd,
    opts.feed and "" or stdin, opts.merged and "2>&1" or ("2>" .. shell_quote(errf)))
  local p = assert(io.popen(line))
  local out = p:read("a")
  p:close()
  local err = opts.merged and "" or slurp(errf, "")
  os.remove(errf)
  if inf then os.remove(inf) end
  local body, rc = out:match("^(.*)@rc=(%d+)\n$")
  assert(body, "no exit code in: " .. out)
  return body, err, tonumber(rc)
end

-- A new empty directory; remove_dir takes it away with what it holds.
function temp_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. shell_quote(dir)))
  return dir
end

function remove_dir(dir)
  os.execute("rm -rf " .. shell_quote(dir))
end

-- Frames ---------------------------------------------------------------------

-- A Lua slave and the list it fills, one entry per frame in arrival order:
-- {data, channel, error, flags} by default; with keep = "data" the payload
-- string alone; with keep = "frame" the frame object itself.
function collector(keep)
  local sl = require "streamlua"
  local got = {}
  local accept
  if keep == "frame" then
    accept = function(_, f) got[#got + 1] = f end
  elseif keep == "data" then
    accept = function(_, f) got[#got + 1] = f:read() end
  else
    accept = function(_, f)
      got[#got + 1] = {data = f:read(), channel = f:getChannel(),
                       error = f:getError(), flags = f:getFlags()}
    end
  end
  return sl.stream.Slave{acceptFrame = accept}, got
end

-- a == b links both ways, a cycle of references that lives until it is
-- unlinked: a case that made one unlinks it at its end so the graph can
-- be freed.
function unlink(a, b)
  a:removeSlave(b)
  b:removeSlave(a)
end

-- n bytes that differ with their position and with the seed: every byte
-- value comes once in each 256.
function pattern(n, seed)
  local t = {}
  for i = 1, n do t[i] = string.char((i * 7 + seed * 13) % 256) end
  return table.concat(t)
end

-- "0A 1B " for "\10\27": bytes as hex pairs, for readable comparisons.
function hex(s)
  return (s:gsub(".", function(c) return string.format("%02X ", c:byte()) end))
end

-- The bytes written as hex pairs; white space between them is ignored.
function unhex(s)
  return (s:gsub("%s", ""):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- Waiting --------------------------------------------------------------------

-- Threads of this process named `name`. With `want`, serves the loop until
-- there are that many (at most `seconds`, 20 by default) first: a thread
-- takes its name a moment after it starts and leaves the list a moment
-- after it is joined, so compare a settled count, never one read.
function threads(name, want, seconds)
  local testing = require "streamlua.testing"
  if want then
    testing.serveUntil(function() return testing.threads(name) == want end, seconds or 20)
  end
  return testing.threads(name)
end

-- Logs -----------------------------------------------------------------------

-- The first of the last n (30 unless given) log history lines that matches
-- the Lua pattern, or nil; and how many of them match.
function logged(pat, n)
  local sl = require "streamlua"
  local first, count = nil, 0
  for _, l in ipairs(sl.logging.history(n or 30)) do
    if l:match(pat) then
      first = first or l
      count = count + 1
    end
  end
  return first, count
end
