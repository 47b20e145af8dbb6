-- sl.pyrogue: LocalVariable, LinkVariable, commands, the Root's built-in
-- nodes and update notification (listeners).
local sl = require "streamlua"
local testing = require "streamlua.testing"

local pr = sl.pyrogue
local mem = sl.memory

-- A memory slave recording every transaction as "T 0xADDR SIZE DATA"
-- (data in hex, for writes, posts and verifies), backed by a byte map.
local function recorder(min)
  local rec = {log = {}, bytes = {}}
  local NAMES = {[mem.Read] = "R", [mem.Write] = "W", [mem.Post] = "P", [mem.Verify] = "V"}
  rec.slave = mem.Slave({doTransaction = function(_, t)
    local a, n, ty = t:address(), t:size(), t:type()
    local line = ("%s 0x%04x %d"):format(NAMES[ty], a, n)
    if ty == mem.Write or ty == mem.Post then
      local d = t:getData()
      for i = 1, n do rec.bytes[a + i - 1] = d:byte(i) end
      line = line .. " " .. (d:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
    else
      local out = {}
      for i = 1, n do out[i] = string.char(rec.bytes[a + i - 1] or 0) end
      local d = table.concat(out)
      if ty == mem.Verify then
        line = line .. " " .. (d:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
      end
      t:setData(d)
    end
    rec.log[#rec.log + 1] = line
    t:done()
  end}, min or 4, 0)
  function rec:take()
    local l = self.log
    self.log = {}
    return l
  end
  return rec
end

-- A Root "Top" with a Device "Dev" at 0x1000 on a recorder.
local function tree(build, rootArgs)
  local rec = recorder()
  local a = {name = "Top"}
  for k, v in pairs(rootArgs or {}) do a[k] = v end
  local root = pr.Root(a)
  local dev = pr.Device{name = "Dev", offset = 0x1000, memBase = rec.slave}
  root:add(dev)
  build(dev, root)
  root:start()
  rec:take()
  return root, dev, rec
end

-- The error f(...) raises (the log's output off meanwhile).
local function errorOf(f, ...)
  sl.logging.setEmit(false)
  local ok, err = pcall(f, ...)
  sl.logging.setEmit(true)
  assert.is_false(ok, "expected an error")
  return err
end

-- Runs f with the log's output off; returns the log's recent lines (the
-- last one is the newest), f's success and error.
local function logged(f)
  sl.logging.setEmit(false)
  local ok, err = pcall(f)
  sl.logging.setEmit(true)
  return sl.logging.history(), ok, err
end

describe("pr.LocalVariable", function()
  after_each(function() collectgarbage() end)

  it("needs a value unless it has localGet", function()
    assert.has_error(function() pr.LocalVariable{name = "L"} end,
      "LocalVariable L without localGet() must specify value= argument in constructor")
    assert.is_table(pr.LocalVariable{name = "G", localGet = function() return 1 end})
  end)

  it("holds its value; get, set, value, post, getDisp and setDisp", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "L", value = 5, disp = "{:#x}"})
    end)
    assert.equal(5, dev.L:get())
    dev.L:set(7)
    assert.equal(7, dev.L:value())
    dev.L:post(9)
    assert.equal(9, dev.L:get{read = false})
    assert.equal("0x9", dev.L:getDisp())
    dev.L:setDisp("0x10")
    assert.equal(16, dev.L:get())
    assert.equal("int", dev.L.typeStr)
    assert.equal("int", dev.L.nativeType)
    root:stop()
  end)

  it("calls localSet on every set, with changed, also write=false and staging at start", function()
    local calls = {}
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "L", value = 5, localSet = function(kw)
        calls[#calls + 1] = {kw.value, kw.changed, kw.dev, kw.var}
      end})
    end)
    assert.equal(1, #calls)                    -- the default, staged at start
    assert.same({5, false}, {calls[1][1], calls[1][2]})
    assert.equal(dev, calls[1][3])
    assert.equal(dev.L, calls[1][4])
    dev.L:set(6)
    dev.L:set(6, {write = false})
    assert.same({6, true}, {calls[2][1], calls[2][2]})
    assert.same({6, false}, {calls[3][1], calls[3][2]})
    root:stop()
  end)

  it("calls localGet on every get, also read=false and value()", function()
    local n = 0
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "G", localGet = function(kw)
        n = n + 1
        assert.equal(kw.var, kw.dev.G)
        return n * 10
      end})
    end)
    local n0 = n
    assert.equal((n0 + 1) * 10, dev.G:get())
    assert.equal((n0 + 2) * 10, dev.G:value())
    assert.equal((n0 + 3) * 10, dev.G:get{read = false})
    assert.equal("int", dev.G.nativeType)     -- learnt at start from the first value
    root:stop()
  end)

  it("range checks scalars with the name only in the text, and logs the path", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "L", value = 5, minimum = 0, maximum = 10})
    end)
    local lines, ok, err = logged(function() dev.L:set(11) end)
    assert.is_false(ok)
    assert.equal("Value range error for L. Value=11, Min=0, Max=10", err)
    assert.equal(5, dev.L:value())
    assert.matches("Error setting value 11 to variable Top.Dev.L with type int. "
                   .. "Exception=Value range error for L", lines[#lines], 1, true)
    -- a value of another type fails the comparison itself
    assert.equal("'<' not supported between instances of 'str' and 'int'",
                 errorOf(dev.L.set, dev.L, "x"))
    root:stop()
  end)

  it("type checks against the first value's type; bool passes as int; typeCheck=false", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "F", value = 1.5})
      dev:add(pr.LocalVariable{name = "I", value = 1})
      dev:add(pr.LocalVariable{name = "A", value = 1.5, typeCheck = false})
    end)
    assert.equal("Type mismatch for Top.Dev.F: expected <class 'float'>, got <class 'int'>. "
      .. "If this variable intentionally changes Python types, construct it with typeCheck=False.",
      errorOf(dev.F.set, dev.F, 1))
    dev.I:set(true)
    assert.equal(true, dev.I:value())
    dev.A:set("text")
    assert.equal("text", dev.A:value())
    root:stop()
  end)

  it("sets and gets list elements by index counted from 0, without checks", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "T", value = {1, 2, 3}})
    end)
    dev.T:set(9, {index = 1})
    assert.same({1, 9, 3}, dev.T:get())
    assert.equal(9, dev.T:get{index = 1})
    assert.equal(3, dev.T:value(2))
    dev.T:set({4, 5})
    assert.same({4, 5}, dev.T:value())
    assert.equal("list", dev.T.nativeType)
    root:stop()
  end)

  it("logs and raises a callback's error", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "L", value = 1,
        localSet = function(kw) if kw.value == 13 then error("unlucky", 0) end end})
    end)
    local lines, ok, err = logged(function() dev.L:set(13) end)
    assert.is_false(ok)
    assert.equal("unlucky", err)
    assert.matches("Error setting value 13 to variable Top.Dev.L", lines[#lines], 1, true)
    root:stop()
  end)
end)

describe("pr.LinkVariable", function()
  after_each(function() collectgarbage() end)

  it("forces its mode from its callbacks and refuses min/max", function()
    local f = function() return 1 end
    assert.equal("RO", pr.LinkVariable{name = "A", linkedGet = f, mode = "RW"}.mode)
    assert.equal("WO", pr.LinkVariable{name = "B", linkedSet = f}.mode)
    assert.equal("RW", pr.LinkVariable{name = "C", linkedGet = f, linkedSet = f}.mode)
    assert.has_error(function() pr.LinkVariable{name = "D", linkedGet = f, minimum = 0} end,
                     "Invalid use of min or max values with LinkVariable")
    assert.equal("Linked", pr.LinkVariable{name = "E", linkedGet = f}.typeStr)
  end)

  it("links to one variable, copying its display, enum and units", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "M", value = 1, enum = {[0] = "Off", [1] = "On"},
                               units = "V"})
      dev:add(pr.LinkVariable{name = "K", variable = dev.M})
    end)
    assert.equal("RW", dev.K.mode)
    assert.equal("enum", dev.K.disp)
    assert.equal("V", dev.K.units)
    assert.equal("On", dev.K:getDisp())
    dev.K:set(0)
    assert.equal(0, dev.M:value())
    assert.equal(dev.M, dev.K.dependencies[1])
    assert.equal(dev.M, dev.K[0])
    root:stop()
  end)

  it("passes read, index and write to its callbacks; value() reads nothing", function()
    local got, put = {}, {}
    local root, dev = tree(function(dev)
      dev:add(pr.LinkVariable{name = "K", value = 0,
        linkedGet = function(kw) got[#got + 1] = {kw.read, kw.index, kw.wait}; return 3 end,
        linkedSet = function(kw) put[#put + 1] = {kw.value, kw.write, kw.index} end})
    end)
    got, put = {}, {}
    assert.equal(3, dev.K:get())
    assert.equal(3, dev.K:value())
    dev.K:get{index = 2}
    assert.same({{true, -1, true}, {false, -1, true}, {true, 2, true}}, got)
    dev.K:set(5)
    dev.K:set(6, {write = false, index = 1})
    assert.same({{5, true, -1}, {6, false, 1}}, put)
    root:stop()
  end)

  it("logs and raises its callbacks' errors", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LinkVariable{name = "K", linkedGet = function() error("no get", 0) end,
                              linkedSet = function() error("no set", 0) end})
    end)
    local lines, ok, err = logged(function() dev.K:get() end)
    assert.is_false(ok)
    assert.equal("no get", err)
    assert.matches("Error getting link variable Top.Dev.K", lines[#lines], 1, true)
    lines, ok, err = logged(function() dev.K:set(1) end)
    assert.equal("no set", err)
    assert.matches("Error setting link variable Top.Dev.K", lines[#lines], 1, true)
    root:stop()
  end)

  it("reads as the smallest polled interval of its dependencies, and pushes its own down", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "A", value = 1, pollInterval = 5})
      dev:add(pr.LocalVariable{name = "B", value = 1, pollInterval = 2})
      dev:add(pr.LocalVariable{name = "C", value = 1})
      dev:add(pr.LinkVariable{name = "AB", dependencies = {dev.A, dev.B},
                              linkedGet = function() return 0 end})
      dev:add(pr.LinkVariable{name = "AC", dependencies = {dev.A, dev.C}, pollInterval = 3,
                              linkedGet = function() return 0 end})
    end, {pollEn = false})
    assert.equal(2, dev.AB.pollInterval)
    assert.equal(3, dev.A.pollInterval)
    assert.equal(3, dev.C.pollInterval)
    assert.equal(3, dev.AC.pollInterval)
    root:stop()
  end)
end)

describe("commands", function()
  after_each(function() collectgarbage() end)

  it("LocalCommand: callable node, default arg, parseDisp of the arg, result", function()
    local seen = {}
    local root, dev = tree(function(dev)
      dev:add(pr.LocalCommand{name = "Cmd", value = 3, takesArg = true, func = function(kw)
        seen[#seen + 1] = {kw.arg, kw.cmd, kw.dev, kw.root}
        return kw.arg * 2
      end})
    end)
    assert.equal(6, dev.Cmd())
    assert.same({3, dev.Cmd, dev, root}, seen[1])
    assert.equal(42, dev.Cmd("21"))
    assert.equal(18, dev.Cmd:call("0x9"))
    assert.equal(9, dev.Cmd:get())           -- the last argument is the new default
    assert.equal(18, dev.Cmd())
    assert.equal("18", dev.Cmd:callDisp(9))
    assert.equal("WO", dev.Cmd.mode)
    assert.is_false(dev.Cmd.bulkOpEn)
    assert.is_true(dev.Cmd.arg)
    assert.same({dev.Cmd}, (function()
      local out = {}
      for _, c in ipairs(dev:commands()) do if c.name == "Cmd" then out[#out + 1] = c end end
      return out
    end)())
    for _, v in ipairs(dev:variables()) do assert.not_equal("Cmd", v.name) end
    root:stop()
  end)

  it("a command without an argument keeps its default", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalCommand{name = "C", func = function(kw) return kw.arg end})
    end)
    assert.equal(5, dev.C(5))
    assert.equal(0, dev.C:get())
    assert.is_false(dev.C.arg)
    root:stop()
  end)

  it("logs and raises the function's error", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalCommand{name = "C", func = function() error("broken", 0) end})
    end)
    local lines, ok, err = logged(function() dev.C() end)
    assert.is_false(ok)
    assert.equal("broken", err)
    assert.matches("Top.Dev.C: broken", lines[#lines], 1, true)
    root:stop()
  end)

  it("dev:command and dev:linkVariableGet add nodes, as pyrogue's decorators", function()
    local root, dev = tree(function(dev)
      local f = dev:command{name = "Hello", value = "", takesArg = true}(function(kw) return "hi " .. kw.arg end)
      assert.is_function(f)
      dev:command({name = "Bye"}, function() return "bye" end)
      dev:linkVariableGet({name = "Twice", disp = "{:d}"}, function() return 2 end)
      assert.has_error(function() dev:command{} end, "Device.command: argument 'name' is required")
    end)
    assert.equal("hi you", dev.Hello("you"))
    assert.equal("bye", dev.Bye())
    assert.equal(2, dev.Twice:get())
    assert.equal("RO", dev.Twice.mode)
    root:stop()
  end)

  it("replaceFunction swaps the function", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalCommand{name = "C", func = function() return 1 end})
    end)
    dev.C:replaceFunction(function() return 2 end)
    assert.equal(2, dev.C())
    root:stop()
  end)

end)

describe("device hooks and the Root's built-in nodes", function()
  after_each(function() collectgarbage() end)

  it("Initialize, HardReset, CountReset call the hooks, overridable per instance", function()
    local calls = {}
    local root, dev = tree(function(dev)
      function dev.initialize(self) calls[#calls + 1] = "init " .. self.name end
      function dev.hardReset(self) calls[#calls + 1] = "hard " .. self.name end
      function dev.countReset(self) calls[#calls + 1] = "count " .. self.name end
    end)
    root.Initialize()
    root.HardReset()
    root.CountReset()
    assert.same({"init Dev", "hard Dev", "count Dev"}, calls)
    root:stop()
  end)

  it("enableChanged is called with the new value, overridable per instance", function()
    local seen = {}
    local root, dev = tree(function(dev)
      function dev.enableChanged(_, v) seen[#seen + 1] = v end
    end)
    dev.enable:set(false)
    dev.enable:set(true)
    assert.same({false, true}, seen)
    root:stop()
  end)

  it("ClearLog and HardReset empty SystemLog and SystemLogLast", function()
    local root = tree(function() end)
    root.SystemLog:set('[{"x": 1}]')
    root.SystemLogLast:set("x")
    root.ClearLog()
    assert.equal("[]", root.SystemLog:value())
    assert.equal("", root.SystemLogLast:value())
    root.SystemLog:set('[{"x": 1}]')
    root.HardReset()
    assert.equal("[]", root.SystemLog:value())
    root:stop()
  end)

  it("the YAML commands call the tree's YAML methods with pyrogue's arguments", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "L", value = 5})
      dev:add(pr.LocalVariable{name = "S", value = 1, mode = "RO"})
    end)
    local cfg = root.GetYamlConfig(false)
    assert.matches("\n  Dev:\n    enable: True\n    L: 5\n", cfg, 1, true)
    assert.not_matches("S: 1", cfg, 1, true)
    assert.matches("    S: 1\n", root.GetYamlState(false), 1, true)
    local f = os.tmpname() .. ".yml"
    root.SaveConfig(f)
    assert.equal(f, root.SaveConfig:value())
    assert.equal(cfg, slurp(f))
    dev.L:set(9)
    root.LoadConfig(f)
    assert.equal(5, dev.L:value())
    root.SetYamlConfig("Top:\n  Dev:\n    L: 12\n")
    assert.equal(12, dev.L:value())
    os.remove(f)
    root:stop()
  end)

  it("LocalTime formats Time; Time moves every second while running", function()
    local root = tree(function() end)
    local t0 = root.Time:value()
    assert.is_number(t0)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d", root.LocalTime:value())
    assert.is_true(testing.serveUntil(function() return root.Time:value() > t0 end, 30))
    root:stop()
  end)

end)

describe("update notification", function()
  after_each(function() collectgarbage() end)

  it("calls a variable's listeners with (path, value) on the loop", function()
    local seen = {}
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "L", value = 1, disp = "{:#x}"})
    end)
    dev.L:addListener(function(path, v) seen[#seen + 1] = {path, v.value, v.valueDisp} end)
    dev.L:set(5)
    assert.same({}, seen)                    -- delivered by the loop, not inside set
    assert.is_true(testing.serveUntil(function() return #seen > 0 end, 30))
    assert.same({{"Top.Dev.L", 5, "0x5"}}, seen)
    root:stop()
  end)

  it("an updateGroup delivers its updates as one batch when it closes", function()
    local batches, cur = {}, {}
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "A", value = 1})
      dev:add(pr.LocalVariable{name = "B", value = 1})
    end)
    root:addVarListener(function(p) cur[#cur + 1] = p end,
                        {done = function() batches[#batches + 1] = cur; cur = {} end})
    do
      local _ <close> = root:updateGroup()
      dev.A:set(2)
      dev.B:set(3)
      dev.A:set(4)
      sl.sleep(0.01)
      assert.same({}, batches)
    end
    root:waitOnUpdate()
    assert.same({{"Top.Dev.A", "Top.Dev.B"}}, batches)
    root:updateGroup(function() dev.B:set(9) end)
    root:waitOnUpdate()
    assert.same({"Top.Dev.B"}, batches[2])
    root:stop()
  end)

  it("a listener's error is logged and the others still run", function()
    local ran = false
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "A", value = 1})
    end)
    dev.A:addListener(function() error("listener broke", 0) end)
    root:addVarListener(function() ran = true end)
    local lines = logged(function()
      dev.A:set(2)
      root:waitOnUpdate()
    end)
    assert.is_true(ran)
    assert.matches("listener broke", lines[#lines], 1, true)
    root:stop()
  end)

  it("a command taking an argument tells its listeners", function()
    local seen = {}
    local root, dev = tree(function(dev)
      dev:add(pr.LocalCommand{name = "C", takesArg = true, func = function() end})
    end)
    dev.C:addListener(function(p, v) seen[#seen + 1] = v.value end)
    dev.C(4)
    root:waitOnUpdate()
    assert.same({4}, seen)
    root:stop()
  end)

  it("nothing is delivered after stop", function()
    local seen = 0
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "A", value = 1})
    end)
    dev.A:addListener(function() seen = seen + 1 end)
    root:stop()
    dev.A:set(3)
    root:waitOnUpdate()
    assert.equal(0, seen)
  end)
end)
