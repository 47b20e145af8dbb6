-- sl.utilities.StreamWriter / StreamWriterChannel / StreamReader: Rogue's
-- file format byte for byte (rogue-reference 8.2), splitting, staging,
-- skipped frames, and replays into Lua slaves through their mailboxes.
local sl = require "streamlua"
local testing = require "streamlua.testing"

-- A record as Rogue writes it.
local function rec(payload, channel, err, flags)
  return string.pack("<I4I4", #payload + 4, channel << 24 | err << 16 | flags) .. payload
end

local serve_until = testing.serveUntil

-- Each test gets a fresh directory, removed afterwards.
local dir
before_each(function()
  dir = temp_dir()
end)
after_each(function()
  collectgarbage()
  remove_dir(dir)
end)

local function quietly(fn)
  sl.logging.setEmit(false)
  local ok, err = pcall(fn)
  sl.logging.setEmit(true)
  if not ok then error(err, 0) end
end

describe("StreamWriter", function()
  it("writes Rogue's two reference records byte for byte", function()
    local w = sl.utilities.StreamWriter()
    local file = dir .. "/ref.dat"
    w:open(file)
    assert.is_true(w:isOpen())
    local m0, m5 = sl.stream.Master(), sl.stream.Master()
    _ = m0 >> w:getChannel(0)
    _ = m5 >> w:getChannel(5)
    local payload = {}
    for i = 0, 0x1f do payload[#payload + 1] = string.char(i) end
    payload = table.concat(payload)
    m0:sendFrame(testing.frame(payload, {channel = 3, flags = 0x00A5}))
    m5:sendFrame(testing.frame("\xAA\xBB\xCC", {channel = 3, error = 0x12, flags = 0xBEEF}))
    assert.are.equal(2, w:getFrameCount())
    assert.are.equal(51, w:getTotalSize())
    w:close()
    assert.is_false(w:isOpen())
    local expected = "\x24\x00\x00\x00\xA5\x00\x00\x03" .. payload ..
                     "\x07\x00\x00\x00\xEF\xBE\x12\x05\xAA\xBB\xCC"
    assert.are.equal(hex(expected), hex(slurp(file)))
  end)

  it("caches one channel per number, with its own count", function()
    local w = sl.utilities.StreamWriter()
    local c = w:getChannel(7)
    assert.is_true(rawequal(c, w:getChannel(7)))
    assert.is_false(rawequal(c, w:getChannel(8)))
    assert.are.equal("StreamWriterChannel", c:kind())
    assert.matches("^StreamWriterChannel#%d+", tostring(c))
    collectgarbage()
    assert.is_true(rawequal(c, w:getChannel(7)))
    w:open(dir .. "/c.dat")
    local m = sl.stream.Master()
    _ = m >> c
    m:sendFrame(testing.frame("a"))
    m:sendFrame(testing.frame(""))                 -- skipped, still counted
    assert.are.equal(2, c:getFrameCount())
    assert.are.equal(1, w:getFrameCount())
    assert.is_true(c:waitFrameCount(2, 20e6))
    c:setFrameCount(10)
    assert.are.equal(10, c:getFrameCount())
    assert.is_false(c:waitFrameCount(11, 50000))
    w:open(dir .. "/c.dat")                        -- a new session resets
    assert.are.equal(0, c:getFrameCount())
    assert.has_error(function() w:getChannel(256) end)
    assert.has_error(function() w:getChannel(-1) end)
    assert.has_error(function() sl.utilities.StreamWriter.open(c, "x") end)
    assert.has_error(function() c.setFrameCount(w, 1) end)
  end)

  it("raw mode writes the payload only", function()
    local w = sl.utilities.StreamWriter()
    assert.is_false(w:getRaw())
    w:setRaw(true)
    assert.is_true(w:getRaw())
    w:open(dir .. "/raw.dat")
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    m:sendFrame(testing.frame("abc", {channel = 1}))
    m:sendFrame(testing.frame("def", {channel = 2, flags = 3}))
    w:close()
    assert.are.equal("abcdef", slurp(dir .. "/raw.dat"))
  end)

  it("stages records in its buffer and counts them in the sizes", function()
    local w = sl.utilities.StreamWriter()
    local file = dir .. "/buf.dat"
    w:setBufferSize(1000)
    w:open(file)
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    for i = 1, 10 do m:sendFrame(testing.frame(string.rep(string.char(i), 42))) end
    assert.are.equal(500, w:getCurrentSize())
    assert.are.equal(500, w:getTotalSize())
    assert.are.equal("", slurp(file))              -- nothing flushed yet
    m:sendFrame(testing.frame(string.rep("x", 600)))   -- 608 > 1000 - 500
    assert.are.equal(500, #slurp(file))
    m:sendFrame(testing.frame(string.rep("y", 2000)))  -- larger: straight through
    assert.are.equal(500 + 608 + 2008, #slurp(file))
    w:close()
    local data = slurp(file)
    assert.are.equal(500 + 608 + 2008, #data)
    assert.are.equal(rec(string.rep("\1", 42), 0, 0, 0), data:sub(1, 50))
    assert.is_true(w:getBandwidth() > 0)
    w:setBufferSize(0)
  end)

  it("drops errored frames only when told to, and skips empty ones", function()
    local w = sl.utilities.StreamWriter()
    local file = dir .. "/err.dat"
    w:open(file)
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    m:sendFrame(testing.frame("e1", {error = 1}))
    w:setDropErrors(true)
    m:sendFrame(testing.frame("e2", {error = 2}))
    m:sendFrame(testing.frame("ok"))
    m:sendFrame(testing.frame(""))
    w:close()
    assert.are.equal(rec("e1", 0, 1, 0) .. rec("ok", 0, 0, 0), slurp(file))
    local c = w:counters()
    assert.are.equal(4, c.rxFrames)
    assert.are.equal(2, c.txFrames)
    assert.are.equal(2, c.drops)
    assert.are.equal(0, c.errors)
  end)

  it("truncates an existing file on open", function()
    local file = dir .. "/old.dat"
    spit(file, string.rep("J", 64))
    local w = sl.utilities.StreamWriter()
    w:open(file)
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    m:sendFrame(testing.frame("twelve bytes"))
    w:close()
    assert.are.equal(rec("twelve bytes", 0, 0, 0), slurp(file))
  end)

  it("logs and counts a record larger than the size limit, without raising", function()
    local w = sl.utilities.StreamWriter()
    w:setMaxSize(20)
    w:open(dir .. "/big.dat")
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    quietly(function()
      m:sendFrame(testing.frame(string.rep("z", 30)))
    end)
    assert.are.equal(1, w:counters().errors)
    assert.are.equal(0, w:getFrameCount())
    assert.is_true(w:isOpen())
    assert.is_truthy(logged("fileio%.StreamWriter.*Frame size is larger than file size limit", 10))
    m:sendFrame(testing.frame("small"))
    w:close()
    assert.are.equal(rec("small", 0, 0, 0), slurp(dir .. "/big.dat.1"))
  end)

  it("closes the file and counts an error when a write fails", function()
    local fp = io.open("/dev/full", "w")
    if not fp then return end
    fp:close()
    local w = sl.utilities.StreamWriter()
    w:open("/dev/full")
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    quietly(function() m:sendFrame(testing.frame("abc")) end)
    assert.is_false(w:isOpen())
    assert.are.equal(1, w:counters().errors)
  end)

  it("raises a clear error when the file cannot be opened", function()
    local w = sl.utilities.StreamWriter()
    local ok, err = pcall(w.open, w, dir .. "/no/such/x.dat")
    assert.is_false(ok)
    assert.matches("StreamWriter: cannot open '.-/no/such/x.dat': No such file or directory", err)
    assert.has_error(function() w:setBufferSize(-1) end)
    assert.has_error(function() w:setMaxSize("big") end)
  end)

  it("waitFrameCount serves the loop while it waits, within its timeout", function()
    local w = sl.utilities.StreamWriter()
    w:open(dir .. "/wait.dat")
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    local t = sl.every(0.002, function() m:sendFrame(testing.frame("tick")) end)
    assert.is_true(w:waitFrameCount(20, 20e6))
    t:cancel()
    local n = w:getFrameCount()
    local t0 = os.time()
    assert.is_false(w:waitFrameCount(n + 1, 100000))
    assert.is_true(os.time() - t0 <= 30)        -- a bound on a hang
  end)

  it("waitFrameCount keeps frames moving through Lua slaves' mailboxes", function()
    local src = dir .. "/src.dat"
    local parts = {}
    for i = 1, 500 do parts[i] = rec(string.pack("<I4", i), i % 3, 0, i) end
    spit(src, table.concat(parts))
    local w = sl.utilities.StreamWriter()
    w:open(dir .. "/copy.dat")
    local r = sl.utilities.StreamReader()
    local stage = sl.stream.Slave{acceptFrame = function(self, f) self:sendFrame(f) end}
    _ = r >> stage >> w:getChannel(0)
    r:open(src)                                  -- frames reach `stage` by mailbox
    assert.is_true(w:waitFrameCount(500, 30e6))
    r:close()
    w:close()
    assert.are.equal(table.concat(parts), slurp(dir .. "/copy.dat"))
  end)

  it("records frames sent from a C thread", function()
    local ctesting = require "streamlua_testing"
    local w = sl.utilities.StreamWriter()
    local file = dir .. "/thread.dat"
    w:open(file)
    local src = ctesting.source(w:getChannel(0), 2000, 24, 9)
    assert.is_true(w:waitFrameCount(2000, 20e6))
    src:join()
    w:close()
    local data = slurp(file)
    assert.are.equal(2000 * 32, #data)
    local pos, bad = 1, 0
    for i = 0, 1999 do
      local a, b, seq = string.unpack("<I4I4I4", data, pos)
      if a ~= 28 or b >> 24 ~= 9 or seq ~= i then bad = bad + 1 end
      pos = pos + 32
    end
    assert.are.equal(0, bad)
  end)
end)

describe("StreamReader", function()
  it("reads a hand-made file back into frames", function()
    local file = dir .. "/hand.dat"
    spit(file, string.pack("<I4I4", 0x24, 3 << 24 | 0x00A5) .. string.rep("p", 32) ..
               string.pack("<I4I4", 4, 0x01020304) ..                 -- no payload: skipped
               string.pack("<I4I4", 7, 5 << 24 | 0x12 << 16 | 0xBEEF) .. "\xAA\xBB\xCC")
    local r = sl.utilities.StreamReader()
    local s, got = collector()
    _ = r >> s
    local done
    r:onDone(function(...) done = table.pack(...) end)
    r:open(file)
    assert.is_true(r:closeWait(5))
    assert.are.same({
      {channel = 3, error = 0, flags = 0x00A5, data = string.rep("p", 32)},
      {channel = 5, error = 0x12, flags = 0xBEEF, data = "\xAA\xBB\xCC"},
    }, got)
    assert.are.same({2, 35, nil, 1, n = 4}, done)
    assert.is_false(r:isActive())
    assert.is_false(r:isOpen())
    local c = r:counters()
    assert.are.equal(2, c.txFrames)
    assert.are.equal(35, c.txBytes)
    assert.are.equal("StreamReader", r:kind())
  end)

  it("round-trips every frame across at least three split files", function()
    local base = dir .. "/trip.dat"
    local w = sl.utilities.StreamWriter()
    w:setMaxSize(200)
    w:open(base)
    local m = sl.stream.Master()
    _ = m >> w:getChannel(0)
    local sent = {}
    for i = 1, 30 do
      local data = string.rep(string.char(64 + i), 10 + (i * 17) % 50)
      local opts = {channel = i % 256, error = i % 4, flags = i * 997 % 65536}
      m:sendFrame(testing.frame(data, opts))
      sent[i] = {channel = opts.channel, error = opts.error, flags = opts.flags, data = data}
    end
    w:close()
    assert.is_nil(slurp(base))                     -- split names only
    local files, total = 0, 0
    while true do
      local data = slurp(base .. "." .. (files + 1))
      if not data then break end
      files = files + 1
      assert.is_true(#data <= 200, "file " .. files .. " is " .. #data .. " bytes")
      local pos = 1                                -- whole records only
      while pos <= #data do pos = pos + 4 + string.unpack("<I4", data, pos) end
      assert.are.equal(#data + 1, pos)
      total = total + #data
    end
    assert.is_true(files >= 3, files .. " files")
    assert.are.equal(w:getTotalSize(), total)
    assert.are.equal(files, w:counters().files)

    local r = sl.utilities.StreamReader()
    local s, got = collector()
    _ = r >> s
    local report
    r:onDone(function(frames, bytes, err, nfiles) report = {frames, bytes, err, nfiles} end)
    r:open(base .. ".1")
    assert.is_true(r:closeWait(10))
    assert.are.same(sent, got)
    assert.are.equal(30, report[1])
    assert.is_nil(report[3])
    assert.are.equal(files, report[4])
  end)

  it("stops at a short payload, sending it with error 0x1", function()
    local file = dir .. "/short.dat"
    spit(file, rec("ok", 1, 0, 0) .. string.pack("<I4I4", 104, 2 << 24 | 0x77) .. "only twenty bytes..")
    local r = sl.utilities.StreamReader()
    local s, got = collector()
    _ = r >> s
    local err
    r:onDone(function(_, _, e) err = e end)
    quietly(function()
      r:open(file)
      assert.is_true(r:closeWait(5))
    end)
    assert.are.equal(2, #got)
    assert.are.same({channel = 2, error = 1, flags = 0x77, data = "only twenty bytes.."}, got[2])
    assert.matches("Short read", err)
  end)

  it("stops at a zero size with an error and a warning", function()
    local file = dir .. "/zero.dat"
    spit(file, rec("ok", 1, 0, 0) .. string.pack("<I4I4", 0, 0) .. rec("never", 1, 0, 0))
    local r = sl.utilities.StreamReader()
    local s, got = collector()
    _ = r >> s
    local err
    r:onDone(function(_, _, e) err = e end)
    quietly(function()
      r:open(file)
      assert.is_true(r:closeWait(5))
    end)
    assert.are.equal(1, #got)
    assert.matches("Bad size read 0", err)
    assert.are.equal(1, r:counters().errors)
  end)

  it("raises a clear error for a file that does not exist", function()
    local r = sl.utilities.StreamReader()
    local ok, err = pcall(r.open, r, dir .. "/missing.dat")
    assert.is_false(ok)
    assert.matches("StreamReader: cannot open '.-/missing.dat': No such file or directory", err)
    assert.is_false(r:isActive())
    assert.has_error(function() r:onDone(42) end)
    assert.has_error(function() r:closeWait(-1) end)
  end)

  it("reports through the loop, and keeps running when its variable is dropped", function()
    local file = dir .. "/many.dat"
    local parts = {}
    for i = 1, 3000 do parts[i] = rec(string.pack("<I4", i), 0, 0, 0) end
    spit(file, table.concat(parts))
    local n, report = 0, nil
    local s = sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    do
      local r = sl.utilities.StreamReader()
      _ = r >> s
      r:onDone(function(frames, bytes, err) report = {frames, bytes, err} end)
      r:open(file)
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(serve_until(function() return report ~= nil end, 30))
    assert.are.same({3000, 12000}, report)
    assert.are.equal(3000, n)
  end)

  it("close() ends a replay early and reports it as stopped", function()
    local file = dir .. "/long.dat"
    local parts = {}
    for i = 1, 20000 do parts[i] = rec("0123456789abcdef", 0, 0, 0) end
    spit(file, table.concat(parts))
    local r = sl.utilities.StreamReader()
    local n = 0
    _ = r >> sl.stream.Slave{acceptFrame = function() n = n + 1 end}
    local err
    r:onDone(function(_, _, e) err = e end)
    r:open(file)
    assert.is_true(r:isActive())
    r:close()
    assert.is_false(r:isActive())
    assert.is_false(r:isOpen())
    assert.are.equal("stopped", err)
    assert.is_true(n < 20000, n .. " frames")
    -- open again: a fresh replay from the start
    n, err = 0, "none yet"
    r:open(file)
    assert.is_true(r:closeWait(20))
    assert.are.equal(20000, n)
    assert.is_nil(err)
    r:stop()
  end)

  it("close() and waits inside a callback keep Lua slaves served", function()
    local file = dir .. "/cb.dat"
    local parts = {}
    for i = 1, 20000 do parts[i] = rec("0123456789abcdef", 0, 0, 0) end
    spit(file, table.concat(parts))
    local w = sl.utilities.StreamWriter()
    w:open(dir .. "/cb-copy.dat")
    local r = sl.utilities.StreamReader()
    local n = 0
    local stage = sl.stream.Slave{acceptFrame = function(self, f)
      n = n + 1
      self:sendFrame(f)
    end}
    _ = r >> stage >> w:getChannel(0)
    local err
    r:onDone(function(_, _, e) err = e end)
    r:open(file)
    os.execute("sleep 0.05")                     -- the mailbox fills up
    local waited, closed
    sl.after(0, function()
      waited = w:waitFrameCount(2000, 30e6)        -- mailboxes served by the wait
      r:close()
      closed = not r:isActive()
    end)
    assert.is_true(serve_until(function() return closed ~= nil end, 20))
    assert.is_true(waited)
    assert.is_true(closed)
    assert.are.equal("stopped", err)
    assert.is_true(n >= 2000 and n < 20000, n .. " frames")
  end)

  it("refuses a record beyond the limit: logged, counted, the replay ends", function()
    local fifo = dir .. "/big"
    assert(os.execute("mkfifo " .. fifo))
    local wr = assert(io.open(fifo, "r+b"))      -- a writer, without blocking
    local r = sl.utilities.StreamReader()
    assert.are.equal(64 * 2^20, r:getMaxRecord())
    local s, got = collector()
    _ = r >> s
    local err
    r:onDone(function(_, _, e) err = e end)
    wr:write(string.pack("<I4I4", 0xFFFFFFFF, 0))   -- a header, nothing else
    wr:flush()
    r:open(fifo)
    assert.is_true(r:closeWait(20))
    assert.are.equal("Record of 4294967291 bytes at offset 0 of " .. fifo ..
                     " exceeds the limit of 67108864", err)
    assert.are.equal(1, r:counters().errors)
    assert.are.equal(0, #got)
    assert.are.equal(0, s:getAllocCount())
    -- a smaller limit applies to files too; the records before it pass
    local file = dir .. "/small.dat"
    spit(file, rec("abc", 0, 0, 0) .. rec("0123456789", 0, 0, 0))
    r:setMaxRecord(4)
    r:open(file)
    assert.is_true(r:closeWait(20))
    assert.are.equal(1, #got)
    assert.matches("Record of 10 bytes at offset 11 of .* exceeds the limit of 4", err)
    -- within the record limit but over the slave's pool limit: named too
    r:setMaxRecord(1000)
    s:setMaxFrameSize(8)
    r:open(file)
    assert.is_true(r:closeWait(20))
    assert.matches("a frame of 10 bytes for .* exceeds the pool's limit of 8", err)
    assert.has_error(function() r:setMaxRecord(-1) end,
      "bad argument #1 to 'setMaxRecord' (value -1 out of range [0, 4294967295])")
    wr:close()
  end)

  it("close() does not wait for a record's bytes that never come", function()
    -- In a child process, so that a close() that hangs ends at its timeout.
    local fifo = dir .. "/slow"
    assert(os.execute("mkfifo " .. fifo))
    local script = dir .. "/close.lua"
    spit(script, string.format([[
      local sl = require "streamlua"
      local wr = assert(io.open(%q, "r+b"))
      wr:write(string.pack("<I4I4", 1004, 0))  -- 1000 bytes announced, none sent
      wr:flush()
      local r = sl.utilities.StreamReader()
      local s = sl.stream.Slave()
      _ = r >> s
      local err
      r:onDone(function(_, _, e) err = e end)
      r:open(%q)
      -- the frame is taken from s's pool once the header is in
      for _ = 1, 2000 do
        if s:getAllocCount() == 1 then break end
        sl.sleep(0.01)
      end
      assert(s:getAllocCount() == 1, "the header was not read")
      r:close()
      print("closed", err, r:isActive(), s:getFrameCount(), s:getAllocCount())
    ]], fifo, fifo))
    local bin = STREAMLUA_BIN
    local p = io.popen("timeout 30 " .. bin .. " " .. script .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("a")
    p:close()
    assert.matches("closed\tstopped\tfalse\t0\t0\nrc=0", out)
  end)

  it("replays from a pipe, with bounded waits and a prompt stop", function()
    local fifo = dir .. "/pipe"
    assert(os.execute("mkfifo " .. fifo))
    local wr = assert(io.open(fifo, "r+b"))      -- a writer, without blocking
    local r = sl.utilities.StreamReader()
    local s, got = collector()
    _ = r >> s
    local err
    r:onDone(function(_, _, e) err = e end)
    r:open(fifo)
    local t0 = os.time()
    assert.is_false(r:closeWait(0.05))           -- nothing to read yet
    assert.is_true(r:isActive())
    wr:write(rec("one", 1, 0, 0), rec("two", 2, 0, 0))
    wr:flush()
    assert.is_true(serve_until(function() return #got == 2 end, 20))
    assert.are.equal("two", got[2].data)
    r:close()                                    -- blocked on the idle pipe
    assert.is_true(os.time() - t0 <= 30)        -- a bound on a hang
    assert.is_false(r:isActive())
    assert.are.equal("stopped", err)
    wr:close()
  end)
end)
