-- axiversion_tcp.lua: the tree of axiversion.lua in one process and the
-- emulated firmware in another, joined by the memory TCP bridge (the
-- wire of Rogue's rim.TcpServer / rim.TcpClient).
--
--   streamlua examples/axiversion_tcp.lua server [port=0] [seconds]
--   streamlua examples/axiversion_tcp.lua client PORT [uptime=2]
--
-- The server prints "listening <port>" (port 0 picks free ports) and
-- serves SRPv3 requests against the emulated firmware until Ctrl-C,
-- SIGTERM or `seconds` (no bound when not given), then prints how many it
-- served. The client builds the tree
-- over a TcpClient and runs axiversion.lua's demonstration.
local sl = require "streamlua"

local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local axi = assert(loadfile(dir .. "/axiversion.lua"))({})

local role = arg and arg[1]
if role == "server" then
  local srv = sl.memory.TcpServer("127.0.0.1", tonumber(arg[2]) or 0)
  local srp, emu = sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
  srv.name, srp.name, emu.name = "TcpServer", "SrpV3", "SrpV3Emulation"
  _ = srv >> srp                -- requests from the wire to SRPv3
  _ = srp == emu
  local fw = axi.firmware(srp)
  print("listening " .. srv:getPort())
  io.stdout:flush()
  sl.run(tonumber(arg[3]))
  print(("served %d requests"):format(emu:counters().rxFrames))
  if not sl.interactive() then   -- streamlua -i: keep serving at the prompt
    fw.stop()
    srv:stop()
  end
elseif role == "client" and tonumber(arg[2]) then
  local cli = sl.memory.TcpClient("127.0.0.1", tonumber(arg[2]))
  cli.name = "TcpClient"
  axi.demo(cli, tonumber(arg[3]) or 2, 5.0)   -- the first request waits for the connection
  if not sl.interactive() then cli:stop() end
else
  io.stderr:write("usage: axiversion_tcp.lua server [port] | client PORT [uptime]\n")
  os.exit(2)
end
