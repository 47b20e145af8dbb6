-- register_bridge.lua: the register bus across two processes, joined by
-- the memory TCP bridge (the wire of Rogue's rim.TcpServer / rim.TcpClient).
-- The server holds the memory; the client's plain memory master reads and
-- writes it through a TcpClient.
--
--   streamlua examples/register_bridge.lua server [port=0] [seconds]
--   streamlua examples/register_bridge.lua client PORT [count=100] [timeout=1]
--
-- The server prints "listening <port>" (port 0 picks free ports) and
-- serves until Ctrl-C, SIGTERM or `seconds` (no bound when not given),
-- then prints how much memory its clients touched. The client waits for
-- the server, writes `count` registers and reads them back, pipelines as
-- many reads without waiting, writes and verifies a block, and prints a
-- summary; it exits 1 if anything read back wrong. Each transaction gets
-- `timeout` seconds (Rogue's default, 1 s, is for a board on a quiet
-- network: a loaded host or an emulated CPU can take longer for one round
-- trip through the two processes' threads). Under `streamlua -i`
-- both keep their objects at the prompt.
local sl = require "streamlua"

local interactive = sl.interactive and sl.interactive()
local role = arg and arg[1]

if role == "server" then
  local srv = sl.memory.TcpServer("127.0.0.1", tonumber(arg[2]) or 0)
  local mem = sl.memory.Emulate(4, 4096)
  srv.name, mem.name = "TcpServer", "memory"
  _ = srv >> mem                -- requests from the wire run against the memory
  print("listening " .. srv:getPort())
  io.stdout:flush()
  sl.run(tonumber(arg[3]))
  print(("memory      %d pages of 4 KiB written"):format(mem:pages()))
  if interactive then
    _G.srv, _G.mem = srv, mem
  else
    srv:stop()
  end
elseif role == "client" and tonumber(arg[2]) then
  local count = tonumber(arg[3]) or 100
  local m, cli = sl.memory.Master(), sl.memory.TcpClient("127.0.0.1", tonumber(arg[2]))
  m.name, cli.name = "cpu", "TcpClient"
  if tonumber(arg[4]) then m:setTimeout(tonumber(arg[4]) * 1e6) end   -- microseconds
  _ = m >> cli
  assert(cli:waitReady(10), "the server did not answer within 10 s")
  local wrong = 0
  for i = 0, count - 1 do m:writeU32(0x1000 + 4 * i, i * i) end
  for i = 0, count - 1 do
    if m:readU32(0x1000 + 4 * i) ~= i * i then wrong = wrong + 1 end
  end
  print(("registers   %d written and read back, %d wrong"):format(count, wrong))
  -- reads that do not wait: all on the wire at once, answers through the loop
  local answered = 0
  for i = 0, count - 1 do
    m:reqTransaction(0x1000 + 4 * i, 4, sl.memory.Read, function(err, bytes)
      if err or string.unpack("<I4", bytes) ~= i * i then wrong = wrong + 1 end
      answered = answered + 1
      if answered == count then sl.stop() end
    end)
  end
  sl.run(10)
  print(("pipelined   %d reads answered, %d in flight"):format(answered, cli:pending()))
  local block = string.rep("streamlua", 100) .. "...."      -- 904 bytes
  m:write(0x8000, block)
  m:verify(0x8000, block)
  print(("block       %d bytes written and verified"):format(#block))
  print(sl.graph())
  if interactive then
    _G.m, _G.cli = m, cli
  else
    cli:stop()
    if wrong > 0 or answered < count then os.exit(1) end
  end
else
  io.stderr:write("usage: register_bridge.lua server [port] [seconds] | client PORT [count] [timeout]\n")
  os.exit(2)
end
