-- The shared tools of spec/helper.lua, checked on their own.
local sl = require "streamlua"
local testing = require "streamlua.testing"

describe("spec helpers", function()
  describe("run", function()
    it("returns stdout, stderr and the exit code", function()
      local out, err, rc = run("sh -c " .. shell_quote("echo out; echo err >&2; exit 3"))
      assert.are.equal("out\n", out)
      assert.are.equal("err\n", err)
      assert.are.equal(3, rc)
    end)

    it("merges stderr into stdout in the order written", function()
      local out, err, rc = run("sh -c " .. shell_quote("echo a; echo b >&2; echo c"), {merged = true})
      assert.are.equal("a\nb\nc\n", out)
      assert.are.equal("", err)
      assert.are.equal(0, rc)
    end)

    it("feeds stdin from bytes, from a command, or from nothing", function()
      assert.are.equal("x\0y", (run("cat", {input = "x\0y"})))
      assert.are.equal("fed\n", (run("cat", {feed = "echo fed"})))
      assert.are.equal("", (run("cat")))
    end)

    it("bounds the command: 124 when its time runs out", function()
      local _, _, rc = run("sleep 30", {timeout = 1})
      assert.are.equal(124, rc)
    end)

    it("runs the streamlua program", function()
      local out, _, rc = run(shell_quote(STREAMLUA_BIN) .. " -e 'print(sl.version)'")
      assert.are.equal(0, rc)
      assert.are.equal(sl.version .. "\n", out)
    end)
  end)

  it("temp_dir makes an empty directory and remove_dir takes it away", function()
    local dir = temp_dir()
    assert.are.equal("", (run("ls -A " .. shell_quote(dir))))
    spit(dir .. "/f", "text")
    assert.are.equal("text", slurp(dir .. "/f"))
    remove_dir(dir)
    assert.is_nil(slurp(dir .. "/f"))
    assert.is_nil(io.open(dir))
  end)

  it("retry_if_port_taken runs a case again when port_again meets a taken port", function()
    local tries = 0
    retry_if_port_taken(function()
      tries = tries + 1
      if tries < 3 then
        port_again(function() error("cannot bind: Address already in use") end, "127.0.0.1", 1)
      end
    end)
    assert.are.equal(3, tries)
    local ok, err = pcall(retry_if_port_taken, function()
      port_again(function() error("another failure", 0) end, "127.0.0.1", 1)
    end)
    assert.is_false(ok)
    assert.matches("another failure", err, 1, true)
  end)

  it("slurp gives a file's bytes, or the default when it cannot be read", function()
    assert.are.equal("none", slurp("/nonexistent/file", "none"))
    assert.is_nil(slurp("/nonexistent/file"))
  end)

  it("shell_quote makes one word of anything", function()
    local out = run("printf %s " .. shell_quote("it's $HOME `x` \"y\""))
    assert.are.equal("it's $HOME `x` \"y\"", out)
  end)

  describe("collector", function()
    local function send(slave, data, ch, err, flags)
      local m = sl.stream.Master()
      _ = m >> slave
      m:sendFrame(testing.frame(data, {channel = ch, error = err, flags = flags}))
    end

    it("records data, channel, error and flags in arrival order", function()
      local s, got = collector()
      send(s, "one", 1, 2, 3)
      send(s, "two", 4, 5, 6)
      assert.is_true(testing.serveUntil(function() return #got == 2 end, 20))
      assert.are.same({data = "one", channel = 1, error = 2, flags = 3}, got[1])
      assert.are.same({data = "two", channel = 4, error = 5, flags = 6}, got[2])
    end)

    it("keeps the payloads alone, or the frames themselves", function()
      local s, got = collector("data")
      send(s, "bytes")
      local t, frames = collector("frame")
      send(t, "frame")
      assert.is_true(testing.serveUntil(function() return #got == 1 and #frames == 1 end, 20))
      assert.are.equal("bytes", got[1])
      assert.are.equal("frame", frames[1]:read())
    end)
  end)

  it("unlink undoes both directions of ==", function()
    local a, b = sl.stream.Master(), sl.stream.Slave()
    local x, y = collector(), collector()
    _ = a >> x
    _ = x == y
    assert.are.equal(1, x:slaveCount())
    assert.are.equal(1, y:slaveCount())
    unlink(x, y)
    assert.are.equal(0, x:slaveCount())
    assert.are.equal(0, y:slaveCount())
    a:removeSlave(x)
    _ = b
  end)

  it("pattern is n bytes that depend on position and seed", function()
    assert.are.equal("", pattern(0, 1))
    assert.are.equal(1000, #pattern(1000, 1))
    assert.are.equal(pattern(300, 4), pattern(300, 4))
    assert.are_not.equal(pattern(300, 4), pattern(300, 5))
    local seen = {}
    for c in pattern(256, 9):gmatch(".") do seen[c] = true end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(256, n)                     -- every byte value once
  end)

  it("hex and unhex go both ways", function()
    assert.are.equal("00 0A FF ", hex("\0\10\255"))
    assert.are.equal("\0\10\255", unhex("00 0a\nFF"))
    local all = pattern(256, 0)
    assert.are.equal(all, unhex(hex(all)))
  end)

  it("threads waits for a settled count of named threads", function()
    collectgarbage(); collectgarbage()
    local before = threads("sl-fifo", 0)
    local fifo = sl.stream.Fifo(0, 0, true)
    assert.are.equal(before + 1, threads("sl-fifo", before + 1))
    fifo:stop()
    fifo = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, threads("sl-fifo", before))
  end)

  it("logged finds history lines by pattern and counts them", function()
    sl.logging.setEmit(false)
    sl.logging.log("helper.spec", sl.logging.Error, "first marker 1")
    sl.logging.log("helper.spec", sl.logging.Error, "second marker 2")
    sl.logging.setEmit(true)
    local line, n = logged("helper%.spec: %a+ marker")
    assert.matches("first marker 1", line, 1, true)
    assert.are.equal(2, n)
    assert.is_nil((logged("no such line anywhere")))
  end)
end)
