-- sl.pyrogue: LocalVariable, LinkVariable, commands, the Root's built-in
-- nodes and update notification (listeners).
local sl = require "streamlua"
local testing = require "streamlua.testing"

local ph = require "spec.pyrogue_helper"

local pr = sl.pyrogue

-- A Root "Top" with a Device "Dev" at 0x1000 on a recorder.
local function tree(build, rootArgs)
  local rec = ph.recorder()
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

  it("calls neither localSet nor localGet while its device is disabled", function()
    local sets, gets = 0, 0
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "L", value = 1,
        localSet = function() sets = sets + 1 end,
        localGet = function(kw) gets = gets + 1; return kw.var._value end})
    end)
    local s0, g0 = sets, gets
    dev.enable:set(false)
    dev.L:set(3)
    assert.equal(3, dev.L:get())
    assert.same({s0, g0}, {sets, gets})
    dev.enable:set(true)
    dev.L:set(4)
    assert.equal(4, dev.L:get())
    assert.same({s0 + 1, g0 + 1}, {sets, gets})
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

  it("reproduces the A + B trace: each dependency's full get and set (§4.4)", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x0})
      dev:add(pr.RemoteVariable{name = "B", offset = 0x4})
      dev:add(pr.LinkVariable{name = "AB", dependencies = {dev.A, dev.B},
        linkedGet = function(kw)
          return kw.dev.A:get{read = kw.read} + kw.dev.B:get{read = kw.read}
        end,
        linkedSet = function(kw)
          kw.dev.A:set(kw.value // 2, {write = kw.write})
          kw.dev.B:set(kw.value - kw.value // 2, {write = kw.write})
        end})
    end)
    assert.equal(0, dev.AB:get())
    assert.same({"R 0x1000 4", "R 0x1004 4"}, rec:take())
    dev.AB:set(11)
    assert.same({"W 0x1000 4 05000000", "V 0x1000 4 05000000",
                 "W 0x1004 4 06000000", "V 0x1004 4 06000000"}, rec:take())
    assert.equal(11, dev.AB:value())
    assert.same({}, rec:take())
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

  it("is pr.LocalCommand, pr.BaseCommand and pr.Command; helpers also on RemoteCommand", function()
    assert.equal(pr.LocalCommand, pr.BaseCommand)
    assert.equal(pr.LocalCommand, pr.Command)
    for _, h in ipairs{"nothing", "touch", "touchOne", "touchZero", "createTouch", "toggle",
                       "createToggle", "postedTouch", "postedTouchOne", "postedTouchZero",
                       "createPostedTouch", "read", "setArg", "setAndVerifyArg"} do
      assert.is_function(pr.BaseCommand[h])
      assert.equal(pr.BaseCommand[h], pr.RemoteCommand[h])
    end
    local c = pr.LocalCommand{name = "C", retValue = "", func = pr.BaseCommand.touch}
    assert.is_true(c.arg)
    assert.equal("", c.retValue)
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

  it("returns nil without calling anything on a disabled device (Q27)", function()
    local n = 0
    local root, dev, rec = tree(function(dev)
      dev:add(pr.LocalCommand{name = "C", func = function() n = n + 1; return 1 end})
      dev:add(pr.RemoteCommand{name = "R", offset = 0x20, bitSize = 8,
                               func = pr.BaseCommand.touchOne})
    end)
    dev.enable:set(false)
    assert.is_nil(dev.C())
    assert.is_nil(dev.R())
    assert.equal(0, n)
    assert.same({}, rec:take())
    dev.enable:set(true)
    assert.equal(1, dev.C())
    dev.R()
    assert.same({"W 0x1020 4 01000000"}, rec:take())
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

  describe("RemoteCommand helpers, an 8-bit command at 0x20 (§5.3)", function()
    local function cmdTree(func, extra)
      return tree(function(dev)
        local a = {name = "Cmd", offset = 0x20, bitSize = 8, func = func}
        for k, v in pairs(extra or {}) do a[k] = v end
        dev:add(pr.RemoteCommand(a))
      end)
    end

    it("touch: 1, the argument, a parsed string", function()
      local root, dev, rec = cmdTree(pr.BaseCommand.touch)
      dev.Cmd()
      dev.Cmd(7)
      dev.Cmd("0x9")
      assert.same({"W 0x1020 4 01000000", "W 0x1020 4 07000000", "W 0x1020 4 09000000"},
                  rec:take())
      assert.equal(9, dev.Cmd:get())      -- WO: no read, the shadow
      assert.same({}, rec:take())
      assert.equal("WO", dev.Cmd.mode)
      assert.is_true(dev.Cmd.arg)
      root:stop()
    end)

    it("toggle, createToggle, touchOne, touchZero, createTouch", function()
      local root, dev, rec = cmdTree(pr.RemoteCommand.toggle)
      dev.Cmd()
      assert.same({"W 0x1020 4 01000000", "W 0x1020 4 00000000"}, rec:take())
      dev.Cmd:replaceFunction(pr.BaseCommand.createToggle{1, 2, 0})
      dev.Cmd()
      assert.same({"W 0x1020 4 01000000", "W 0x1020 4 02000000", "W 0x1020 4 00000000"},
                  rec:take())
      dev.Cmd:replaceFunction(pr.BaseCommand.touchOne)
      dev.Cmd()
      dev.Cmd:replaceFunction(pr.BaseCommand.touchZero)
      dev.Cmd()
      dev.Cmd:replaceFunction(pr.BaseCommand.createTouch(0x5a))
      dev.Cmd()
      assert.same({"W 0x1020 4 01000000", "W 0x1020 4 00000000", "W 0x1020 4 5a000000"},
                  rec:take())
      root:stop()
    end)

    it("posted touches", function()
      local root, dev, rec = tree(function(dev)
        dev:add(pr.RemoteCommand{name = "Cmd", offset = 0x28, bitSize = 8,
                                 func = pr.BaseCommand.postedTouchOne})
      end)
      dev.Cmd()
      dev.Cmd:replaceFunction(pr.BaseCommand.postedTouchZero)
      dev.Cmd()
      dev.Cmd:replaceFunction(pr.BaseCommand.createPostedTouch(3))
      dev.Cmd()
      dev.Cmd:replaceFunction(pr.BaseCommand.postedTouch)
      dev.Cmd(4)
      assert.same({"P 0x1028 4 01000000", "P 0x1028 4 00000000", "P 0x1028 4 03000000",
                   "P 0x1028 4 04000000"}, rec:take())
      root:stop()
    end)

    it("a function of cmd and arg; setArg; nothing; read", function()
      local root, dev, rec = cmdTree(function(kw) kw.cmd:set(kw.arg + 1) end, {takesArg = true})
      dev.Cmd(4)
      assert.same({"W 0x1020 4 05000000"}, rec:take())
      dev.Cmd:replaceFunction(pr.BaseCommand.setArg)
      dev.Cmd(6)
      assert.same({"W 0x1020 4 06000000"}, rec:take())
      dev.Cmd:replaceFunction(pr.BaseCommand.nothing)
      dev.Cmd(6)
      dev.Cmd:replaceFunction(pr.BaseCommand.read)
      dev.Cmd()
      assert.same({}, rec:take())
      root:stop()
    end)

    it("setAndVerifyArg: a write, no read-back of a WO block, so it always agrees", function()
      local root, dev, rec = cmdTree(pr.BaseCommand.setAndVerifyArg)
      dev.Cmd(3)
      assert.same({"W 0x1020 4 03000000"}, rec:take())
      root:stop()
    end)

    it("setAndVerifyArg raises when the read-back differs", function()
      local root, dev = tree(function(dev)
        dev:add(pr.LocalCommand{name = "V", func = pr.BaseCommand.setAndVerifyArg})
      end)
      -- a LocalCommand's set does nothing: get returns the default 0
      assert.equal("Verification failed for Top.Dev.V. \nSet to 5 but read back 0",
                   errorOf(dev.V, 5))
      root:stop()
    end)
  end)

  it("reproduces §3.8's Strobe and command blocks out of bulk reads", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "Scratch", offset = 0x4})
      dev:add(pr.RemoteCommand{name = "Strobe", offset = 0x60, bitSize = 1,
                               func = pr.BaseCommand.toggle})
    end)
    dev.Strobe()
    assert.same({"W 0x1060 4 01000000", "W 0x1060 4 00000000"}, rec:take())
    root.ReadAll()
    assert.same({"R 0x1004 4"}, rec:take())
    root:stop()
  end)

  it("a command sharing a word with an RW variable makes its block bulk (Q22)", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "Ctl", offset = 0x40, bitSize = 8})
      dev:add(pr.RemoteCommand{name = "Go", offset = 0x40, bitSize = 1, bitOffset = 8,
                               func = pr.BaseCommand.touchOne})
    end)
    dev.Ctl:set(0x21)
    rec:take()
    dev.Go()
    assert.same({"W 0x1040 4 21010000"}, rec:take())     -- never verified
    root.ReadAll()
    assert.same({"R 0x1040 4"}, rec:take())
    root.ForceWrite:set(true)
    root.WriteAll()
    assert.same({"W 0x1040 4 21010000", "V 0x1040 4 21010000"}, rec:take())
    root:stop()
  end)

  it("dev:addRemoteCommands adds N[i] at offset + i*stride", function()
    local root, dev, rec = tree(function(dev)
      dev:addRemoteCommands(2, 4, {name = "Go", offset = 0x30, bitSize = 1,
                                   func = pr.BaseCommand.touchOne})
    end)
    dev.Go[1]()
    assert.same({"W 0x1034 4 01000000"}, rec:take())
    root:stop()
  end)
end)

describe("device hooks and the Root's built-in nodes", function()
  after_each(function() collectgarbage() end)

  it("every device has hidden ReadDevice and WriteDevice; WriteDevice's '' does not recurse", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x0})
      local sub = pr.Device{name = "Sub", offset = 0x100}
      sub:add(pr.RemoteVariable{name = "B", offset = 0x0})
      dev:add(sub)
    end)
    assert.is_true(dev.ReadDevice.hidden)
    assert.is_true(dev.WriteDevice.hidden)
    dev.ReadDevice()
    assert.same({"R 0x1000 4"}, rec:take())
    dev.ReadDevice(true)
    assert.same({"R 0x1000 4", "R 0x1100 4"}, rec:take())
    dev.WriteDevice()
    assert.same({"W 0x1000 4 00000000", "V 0x1000 4 00000000"}, rec:take())
    dev.WriteDevice("True")
    assert.same({"W 0x1000 4 00000000", "W 0x1100 4 00000000",
                 "V 0x1000 4 00000000", "V 0x1100 4 00000000"}, rec:take())
    root:stop()
  end)

  it("has pyrogue's built-in nodes in order, with their modes and groups", function()
    local root = pr.Root{name = "Top"}
    local names = {}
    for _, n in ipairs(root:nodes()) do names[#names + 1] = n.name end
    assert.same({"enable", "ReadDevice", "WriteDevice", "RogueVersion", "RogueDirectory",
                 "SystemLog", "SystemLogLast", "ForceWrite", "InitAfterConfig", "Time",
                 "LocalTime", "PollEn", "WriteAll", "ReadAll", "SaveState", "SaveConfig",
                 "LoadConfig", "RemoteVariableDump", "RemoteConfigDump", "Initialize",
                 "HardReset", "CountReset", "ClearLog", "SetYamlConfig", "GetYamlConfig",
                 "GetYamlState", "LoadConfigProcess", "SaveConfigProcess"}, names)
    assert.equal(sl.version, root.RogueVersion:value())
    assert.equal("RO", root.RogueVersion.mode)
    assert.is_true(root.ForceWrite.hidden)
    assert.is_false(root.ForceWrite:value())
    assert.is_true(root.SystemLog:inGroup("NoState"))
    assert.is_true(root.LocalTime:inGroup("NoState"))
    assert.is_false(root.LocalTime.hidden)
    assert.equal("RO", root.LocalTime.mode)
    assert.is_true(root.WriteAll.hidden)
    assert.equal("", root.SaveConfig:value())
    assert.is_true(root.GetYamlConfig:value())
  end)

  it("WriteAll honours ForceWrite", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x0})
      dev:add(pr.RemoteVariable{name = "B", offset = 0x4, value = 3})
    end)
    root.WriteAll()
    assert.same({"W 0x1004 4 03000000", "V 0x1004 4 03000000"}, rec:take())
    root.WriteAll()
    assert.same({}, rec:take())
    root.ForceWrite:set(true)
    root.WriteAll()
    assert.same({"W 0x1000 4 00000000", "W 0x1004 4 03000000",
                 "V 0x1000 4 00000000", "V 0x1004 4 03000000"}, rec:take())
    root:stop()
  end)

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

  it("SystemLog and SystemLogLast hold the log's records as JSON; ClearLog and HardReset empty them", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalCommand{name = "Bad", func = function() error('no "way"\n', 0) end})
    end)
    root.ClearLog()
    assert.equal("[]", root.SystemLog:value())
    assert.equal("", root.SystemLogLast:value())
    logged(function() dev.Bad() end)
    local last = root.SystemLogLast:value()
    assert.matches('^{"created": %d+%.%d+, "name": "Command%.LocalCommand%.Top%.Dev%.Bad", '
                   .. '"message": "no \\"way\\"\\n", "exception": null, "traceBack": null, '
                   .. '"levelName": "ERROR", "levelNumber": 40}$', last)
    assert.equal("[" .. last .. "]", root.SystemLog:value())
    root.ClearLog()
    assert.equal("[]", root.SystemLog:value())
    logged(function() dev.Bad() end)
    assert.not_equal("[]", root.SystemLog:value())
    root.HardReset()
    assert.equal("[]", root.SystemLog:value())
    assert.equal("", root.SystemLogLast:value())
    root:stop()
  end)

  it("RemoteVariableDump and RemoteConfigDump read all and write path = value lines", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x0, mode = "RO"})
      dev:add(pr.RemoteVariable{name = "B", offset = 0x4, base = pr.Int, bitSize = 16})
      dev:add(pr.RemoteVariable{name = "T", offset = 0x8, numValues = 2, valueBits = 8,
                                valueStride = 16})
      dev:add(pr.RemoteCommand{name = "C", offset = 0x10})
      dev:add(pr.RemoteVariable{name = "U", offset = 0x18, bitSize = 64})
      dev:add(pr.RemoteVariable{name = "W", offset = 0x20, bitSize = 72, mode = "RO"})
      dev:add(pr.RemoteVariable{name = "F", offset = 0x2c, base = pr.Float})
      dev:add(pr.RemoteVariable{name = "S", offset = 0x30, base = pr.String, bitSize = 64})
      dev:add(pr.RemoteVariable{name = "Bits", offset = 0x38, base = pr.Bool, numValues = 2,
                                valueBits = 1, valueStride = 1})
    end)
    rec:take()
    rec:poke(0x1000, "\7")
    rec:poke(0x1004, "\xfe\xff")
    rec:poke(0x1008, "\1\0\2")
    rec:poke(0x1018, ("\xff"):rep(8))
    rec:poke(0x1020, "\1\2\3\4\5\6\7\8\9")
    rec:poke(0x102c, string.pack("<f", 0.1))
    rec:poke(0x1030, "hi")
    rec:poke(0x1038, "\2")
    local f = os.tmpname()
    root.RemoteVariableDump(f)
    assert.same({"R 0x1000 4", "R 0x1004 4", "R 0x1008 4", "R 0x1018 8", "R 0x1020 12",
                 "R 0x102c 4", "R 0x1030 8", "R 0x1038 4"}, rec:take())
    assert.equal("Top.Dev.A = 7\nTop.Dev.B = -2\nTop.Dev.T = 1 2\nTop.Dev.C = 0\n"
                 .. "Top.Dev.U = 18446744073709551615\nTop.Dev.W = 0x010203040506070809\n"
                 .. "Top.Dev.F = 0.1\nTop.Dev.S = hi\nTop.Dev.Bits = 0 1\n", slurp(f))
    root.RemoteConfigDump(f)
    assert.equal("Top.Dev.B = -2\nTop.Dev.T = 1 2\nTop.Dev.C = 0\n"
                 .. "Top.Dev.U = 18446744073709551615\nTop.Dev.F = 0.1\n"
                 .. "Top.Dev.S = hi\nTop.Dev.Bits = 0 1\n", slurp(f))
    os.remove(f)
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

  it("PollEn follows the poller", function()
    local root = tree(function() end, {pollEn = true})
    assert.is_true(root.PollEn:value())
    root.PollEn:set(false)
    assert.is_false(root.PollEn:value())
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

  it("tells the Root's listeners with group filters, then done; LinkVariables follow", function()
    local seen, done = {}, 0
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x0, groups = "G"})
      dev:add(pr.RemoteVariable{name = "B", offset = 0x4})
      dev:add(pr.LinkVariable{name = "AB", dependencies = {dev.A, dev.B},
        linkedGet = function(kw)
          assert.is_false(kw.read)
          return kw.dev.A:value() + kw.dev.B:value()
        end})
    end)
    local all, inc, exc = {}, {}, {}
    root:addVarListener(function(p, v) all[#all + 1] = p .. "=" .. tostring(v.value) end,
                        {done = function() done = done + 1 end})
    root:addVarListener(function(p) inc[#inc + 1] = p end, {incGroups = "G"})
    root:addVarListener(function(p) exc[#exc + 1] = p end, {excGroups = {"G"}})
    dev.A:addListener(function(p, v) seen[#seen + 1] = p end)
    dev.A:set(5)
    root:waitOnUpdate()
    assert.same({"Top.Dev.A=5", "Top.Dev.AB=5"}, all)
    assert.same({"Top.Dev.A"}, inc)
    assert.same({"Top.Dev.AB"}, exc)
    assert.same({"Top.Dev.A"}, seen)
    assert.equal(1, done)
    assert.same({"W 0x1000 4 05000000", "V 0x1000 4 05000000"}, rec:take())
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

  it("getVariableValue: value, display, enum and alarm status", function()
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "T", value = 20, disp = "{:d} C", lowAlarm = 0,
                               lowWarning = 10, highWarning = 70, highAlarm = 90})
      dev:add(pr.LocalVariable{name = "N", value = 1})
    end)
    local v = dev.T:getVariableValue()
    assert.same({20, "20 C", "{:d} C", "Good", "Good"},
                {v.value, v.valueDisp, v.disp, v.status, v.severity})
    local cases = {{-1, "AlarmLoLo", "AlarmMajor"}, {95, "AlarmHiHi", "AlarmMajor"},
                   {5, "AlarmLow", "AlarmMinor"}, {75, "AlarmHigh", "AlarmMinor"}}
    for _, c in ipairs(cases) do
      dev.T:set(c[1])
      v = dev.T:getVariableValue(false)
      assert.same({c[2], c[3]}, {v.status, v.severity})
    end
    v = dev.N:getVariableValue()
    assert.same({"None", "None"}, {v.status, v.severity})
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

  it("a polled LocalVariable runs localGet and tells its listeners", function()
    local n, seen = 0, {}
    local root, dev = tree(function(dev)
      dev:add(pr.LocalVariable{name = "P", pollInterval = 0.01,
                               localGet = function() n = n + 1; return n end})
    end)
    dev.P:addListener(function(_, v) seen[#seen + 1] = v.value end)
    assert.is_true(testing.serveUntil(function() return #seen >= 2 end, 30))
    assert.is_true(seen[2] > seen[1])
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

-- The short paths of remote get/set and of the bulk operations do what the
-- general ones do: the same bus traffic, errors, flags and listener
-- updates, whether the options are given or not.
describe("sl.pyrogue remote access", function()
  it("set with the default options is the set without options", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x0, bitSize = 16})
      dev:add(pr.RemoteVariable{name = "B", offset = 0x0, bitOffset = 16, bitSize = 16})
    end)
    dev.A:set(5)
    dev.A:set(6, {})
    dev.A:set(7, {write = true, verify = true, wait = true, index = -1})
    assert.same({"W 0x1000 4 05000000", "V 0x1000 4 05000000",
                 "W 0x1000 4 06000000", "V 0x1000 4 06000000",
                 "W 0x1000 4 07000000", "V 0x1000 4 07000000"}, rec:take())
    dev.A:set(8, {verify = false})
    assert.same({"W 0x1000 4 08000000"}, rec:take())
    -- the block's verify is still pending: a bulk verify issues it
    dev:verifyBlocks()
    dev:waitBlocks()
    assert.same({"V 0x1000 4 08000000"}, rec:take())
    dev:verifyBlocks()
    assert.same({}, rec:take())
    -- a staged neighbour widens the write to the block's stale range
    dev.B:set(3, {write = false})
    dev.A:set(9)
    assert.same({"W 0x1000 4 09000300", "V 0x1000 4 09000300"}, rec:take())
    root:stop()
  end)

  it("a verify mismatch and a failed transaction raise pyrogue's texts", function()
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x4})
    end)
    rec.corrupt = function(ty, _, d) if ty == sl.memory.Verify then return "\0\0\0\0" end end
    assert.equal("Block::checkTransaction: General Error: Verify error for block Top.Dev.A with address 0x00001004. Byte: 0. Got: 0x00, Exp: 0x05, Mask: 0xff",
                 errorOf(dev.A.set, dev.A, 5))
    assert.same({"W 0x1004 4 05000000", "V 0x1004 4 00000000"}, rec:take())
    rec.corrupt = nil
    dev:verifyBlocks()
    assert.same({}, rec:take())   -- the mismatch ended the pending verify
    rec.fail = function(ty) if ty == sl.memory.Read then return "no read" end end
    assert.equal("Block::checkTransaction: General Error: Transaction error for block Top.Dev.A with address 0x00001004. Error no read",
                 errorOf(dev.A.get, dev.A))
    rec.fail = function(ty) if ty == sl.memory.Write then return "no write" end end
    assert.equal("Block::checkTransaction: General Error: Transaction error for block Top.Dev.A with address 0x00001004. Error no write",
                 errorOf(dev.A.set, dev.A, 6, {verify = false}))
    rec.fail = nil
    -- the failed write left its verify pending: it finds the old value
    dev:verifyBlocks()
    assert.matches("Verify error for block Top.Dev.A with address 0x00001004. Byte: 0. Got: 0x05, Exp: 0x06",
                   errorOf(dev.waitBlocks, dev))
    assert.same({"R 0x1004 4", "W 0x1004 4 06000000", "V 0x1004 4 05000000"}, rec:take())
    root:stop()
  end)

  it("a variable's own listener hears get, set and ReadAll", function()
    local seen = {}
    local root, dev, rec = tree(function(dev)
      dev:add(pr.RemoteVariable{name = "A", offset = 0x0})
      dev:add(pr.RemoteVariable{name = "B", offset = 0x4})
    end)
    local function hear(p, v) seen[#seen + 1] = p .. "=" .. tostring(v.value) end
    dev.B:addListener(hear)
    rec:poke(0x1004, "\7\0\0\0")
    dev.A:get()
    dev.B:get()
    root:waitOnUpdate()
    dev.B:set(8, {verify = false})
    root:waitOnUpdate()
    assert.same({"Top.Dev.B=7", "Top.Dev.B=8"}, seen)
    root.ReadAll()
    root:waitOnUpdate()
    assert.same({"Top.Dev.B=7", "Top.Dev.B=8", "Top.Dev.B=8"}, seen)
    dev.B:delListener(hear)
    dev.B:get()
    root.ReadAll()
    root:waitOnUpdate()
    assert.equal(3, #seen)
    rec:take()
    root:stop()
  end)

  it("ReadAll and WriteAll stop at the first failed block, in block order", function()
    local root, dev, rec = tree(function(dev)
      for i = 0, 3 do dev:add(pr.RemoteVariable{name = "R" .. i, offset = 4 * i}) end
    end)
    rec.fail = function(ty, a) if a == 0x1008 then return "bad" end end
    assert.matches("Transaction error for block Top.Dev.R2 with address 0x00001008. Error bad",
                   errorOf(root.ReadAll))
    assert.same({"R 0x1000 4", "R 0x1004 4", "R 0x1008 4", "R 0x100c 4"}, rec:take())
    rec.fail = nil
    rec.corrupt = function(ty, a, d) if ty == sl.memory.Verify and a == 0x1004 then return "\1\2\3\4" end end
    assert.matches("Verify error for block Top.Dev.R1 with address 0x00001004. Byte: 0. Got: 0x01, Exp: 0x00",
                   errorOf(root._writeAll, root, true))
    local log = rec:take()
    assert.equal(8, #log)   -- every write and verify was issued first
    root:stop()
  end)
end)
