-- record_replay.lua: record a stream to files in Rogue's format, then
-- replay the files and check that every frame came back as it went in.
--
--   source (Lua master) >> writer:getChannel(0)   records <dir>/run.dat.1,
--                                                 .2, ... (split at maxSize)
--   reader (thread)     >> checker (Lua slave)    replays run.dat.1, .2, ...
--
-- Run: streamlua examples/record_replay.lua [frames] [size] [maxSize] [corrupt]
-- `corrupt` flips one payload byte in the second file before the replay,
-- to show that the check catches it (the exit status is then 1).
local sl = require "streamlua"

local frames = tonumber(arg and arg[1]) or 1000
local size = tonumber(arg and arg[2]) or 100
local max_size = tonumber(arg and arg[3]) or 16384
local corrupt = arg and arg[4] == "corrupt"
assert(size >= 4, "size must be at least 4 bytes (the sequence number)")

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir " .. dir))
local base = dir .. "/run.dat"

-- What frame i looks like: its number, then a pattern; metadata from i.
local function payload(i)
  return string.pack("<I4", i) .. string.rep(string.char(i % 251), size - 4)
end
local function channel(i) return i % 4 end
local function flags(i) return i * 7 % 65536 end

-- Record.
local writer = sl.utilities.StreamWriter()
writer:setMaxSize(max_size)
writer:setBufferSize(4096)
writer:open(base)
local source = sl.stream.Master()
_ = source >> writer:getChannel(0)         -- channel 0: keep each frame's own
for i = 0, frames - 1 do
  local f = source:reqFrame(size, true)
  f:write(payload(i))
  f:setChannel(channel(i))
  f:setFlags(flags(i))
  source:sendFrame(f)
end
local recorded, on_disk = writer:getFrameCount(), writer:getTotalSize()
writer:close()

local files, sizes = 0, {}
while true do
  local fp = io.open(base .. "." .. (files + 1), "rb")
  if not fp then break end
  files = files + 1
  sizes[files] = fp:seek("end")
  fp:close()
end
print(string.format("recorded %d frames, %d bytes of payload, %d bytes in %d files",
  recorded, recorded * size, on_disk, files))
print("files    " .. table.concat(sizes, " "))

if corrupt and files >= 2 then
  local fp = assert(io.open(base .. ".2", "r+b"))
  fp:seek("set", 8 + 4)                    -- first record's pattern bytes
  local b = fp:read(1)
  fp:seek("set", 8 + 4)
  fp:write(string.char((b:byte() + 1) % 256))
  fp:close()
end

-- Replay.
local seen, bytes, bad = 0, 0, 0
local checker = sl.stream.Slave{acceptFrame = function(_, f)
  local i = seen
  if f:read() ~= payload(i) or f:getChannel() ~= channel(i) or
     f:getFlags() ~= flags(i) or f:getError() ~= 0 then
    bad = bad + 1
  end
  seen = seen + 1
  bytes = bytes + #f
end}
local reader = sl.utilities.StreamReader()
_ = reader >> checker
local report
reader:onDone(function(n, b, err, nfiles)
  report = string.format("replayed %d frames, %d bytes of payload from %d files%s",
    n, b, nfiles, err and (" (" .. err .. ")") or "")
end)
reader:open(base .. ".1")
local finished = reader:closeWait(60)
print(report or "replay did not finish")
print(string.format("checked  %d frames, %d bytes, %d mismatches", seen, bytes, bad))

os.execute("rm -rf " .. dir)
if not finished or bad > 0 or seen ~= frames or recorded ~= frames then os.exit(1) end
