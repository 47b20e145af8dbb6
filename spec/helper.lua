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
