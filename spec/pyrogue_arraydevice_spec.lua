-- sl.pyrogue ArrayDevice (a device of `number` elements of one class at
-- offsets i*stride) and a Device's enableDeps (its enable follows them).
local sl = require "streamlua"
local ph = require "spec.pyrogue_helper"

local pr = sl.pyrogue

-- A Device subclass written as a function, as ported pyrogue code does.
local function Channel(args)
  local dev = pr.Device(args)
  dev:add(pr.RemoteVariable{name = "Gain", offset = 0x4})
  return dev
end

local function started(arr)
  local rec = ph.recorder()
  local root = pr.Root{name = "Top"}
  local top = pr.Device{name = "Dev", offset = 0x1000, memBase = rec.slave}
  root:add(top)
  top:add(arr)
  root:start()
  return root, rec
end

describe("sl.pyrogue ArrayDevice", function()
  it("adds <Class>[i] at offset i*stride under <Class>Array", function()
    local arr = pr.ArrayDevice{arrayClass = Channel, number = 3, stride = 0x100}
    assert.equal("ChannelArray", arr.name)
    local root, rec = started(arr)
    local names = {}
    for _, d in ipairs(arr:devices()) do names[#names + 1] = d.name .. "@" .. d.offset end
    assert.same({"Channel[0]@0", "Channel[1]@256", "Channel[2]@512"}, names)
    assert.equal("Top.Dev.ChannelArray.Channel[2].Gain", arr.Channel[2].Gain.path)
    arr.Channel[1].Gain:set(0x11)
    arr.Channel[2].Gain:set(0x22)
    assert.same({"W 0x1104 4 11000000", "V 0x1104 4 11000000",
                 "W 0x1204 4 22000000", "V 0x1204 4 22000000"}, rec:take())
    assert.same({arr.Channel[0]}, arr:nodeMatch("Channel[0]"))
    root:stop()
  end)

  it("names the elements after a class table, and takes a name and the Device arguments", function()
    local arr = pr.ArrayDevice{name = "Bank", arrayClass = pr.Device, number = 2, stride = 4,
                               description = "two", hidden = true}
    assert.equal("Bank", arr.name)
    assert.equal("two", arr.description)
    assert.is_true(arr.hidden)
    assert.equal("Device[1]", arr:devices()[2].name)
    assert.equal(4, arr.Device[1].offset)
    assert.equal("ChannelArray", pr.ArrayDevice{arrayClass = Channel, number = 0}.name)
  end)

  it("finds a function's name as a global too", function()
    rawset(_G, "ArraySpecElement", function(a) return pr.Device(a) end)
    local ok, arr = pcall(pr.ArrayDevice, {arrayClass = rawget(_G, "ArraySpecElement"), number = 1})
    rawset(_G, "ArraySpecElement", nil)
    assert.is_true(ok, arr)
    assert.equal("ArraySpecElementArray", arr.name)
    assert.equal("ArraySpecElement[0]", arr:devices()[1].name)
  end)

  it("gives one table of arrayArgs to every element", function()
    local arr = pr.ArrayDevice{arrayClass = Channel, number = 2, stride = 8,
                               arrayArgs = {description = "ch", enabled = false}}
    for _, d in ipairs(arr:devices()) do
      assert.equal("ch", d.description)
      assert.is_false(d.enable:get())
    end
  end)

  it("gives each element its own arrayArgs, whose name names it", function()
    local arr = pr.ArrayDevice{arrayClass = Channel, number = 3, stride = 0x10,
                               arrayArgs = {{description = "a"}, {name = "Spare"}, {}}}
    local names = {}
    for _, d in ipairs(arr:devices()) do names[#names + 1] = d.name end
    assert.same({"Channel[0]", "Spare", "Channel[2]"}, names)
    assert.equal("a", arr.Channel[0].description)
    assert.equal(0x10, arr.Spare.offset)
  end)

  it("a name in one shared table names element 0 only, as pyrogue's", function()
    local shared = {name = "First", description = "s"}
    local arr = pr.ArrayDevice{arrayClass = Channel, number = 3, arrayArgs = shared}
    local names = {}
    for _, d in ipairs(arr:devices()) do names[#names + 1] = d.name end
    assert.same({"First", "Channel[1]", "Channel[2]"}, names)
    assert.same({name = "First", description = "s"}, shared)
  end)

  it("refuses what it cannot build, naming the argument", function()
    local function msg(args)
      local ok, err = pcall(pr.ArrayDevice, args)
      assert.is_false(ok)
      return err
    end
    assert.matches("pr.ArrayDevice: argument 'arrayClass' must be a class or a function",
                   msg{number = 1}, 1, true)
    assert.matches("pr.ArrayDevice: argument 'number' must be an integer >= 0",
                   msg{arrayClass = Channel}, 1, true)
    assert.matches("pr.ArrayDevice: argument 'arrayArgs' has 1 entries for number = 2",
                   msg{arrayClass = Channel, number = 2, arrayArgs = {{}}}, 1, true)
    assert.matches("pr.ArrayDevice: arrayArgs may not hold 'offset'",
                   msg{arrayClass = Channel, number = 1, arrayArgs = {offset = 4}}, 1, true)
    assert.matches("pr.ArrayDevice: cannot tell the name of 'arrayClass'; pass name=",
                   msg{arrayClass = function(a) return pr.Device(a) end, number = 1}, 1, true)
    local arr = pr.ArrayDevice{name = "Anon", arrayClass = function(a) return pr.Device(a) end,
                               number = 1, arrayArgs = {{name = "Only"}}}
    assert.equal("Only", arr:devices()[1].name)
  end)
end)

describe("sl.pyrogue enableDeps", function()
  -- Cfg holds the dependencies: a LocalVariable and a RO status bit. D
  -- depends on them and holds a register and a child device.
  local function depTree(deps)
    local rec = ph.recorder()
    local root = pr.Root{name = "Top"}
    local cfg = pr.Device{name = "Cfg", offset = 0x2000, memBase = rec.slave}
    root:add(cfg)
    cfg:add(pr.LocalVariable{name = "Power", value = true})
    cfg:add(pr.RemoteVariable{name = "Ready", offset = 0x0, bitSize = 1, mode = "RO", base = pr.Bool})
    local list = {}
    for i, n in ipairs(deps) do list[i] = cfg[n] end
    local d = pr.Device{name = "D", offset = 0x1000, memBase = rec.slave, enableDeps = list}
    root:add(d)
    d:add(pr.RemoteVariable{name = "V", offset = 0x0})
    local sub = pr.Device{name = "Sub", offset = 0x100}
    d:add(sub)
    sub:add(pr.RemoteVariable{name = "S", offset = 0x0})
    local changed, heard = {}, {}
    function d.enableChanged(_, v) changed[#changed + 1] = v end
    d.enable:addListener(function(_, v) heard[#heard + 1] = v.valueDisp end)
    return root, d, cfg, rec, changed, heard
  end

  it("disables the device and its children while a dependency is false", function()
    local root, d, cfg, rec, changed, heard = depTree{"Power"}
    root:start()
    assert.is_true(d.enable:get())
    d.V:set(1)
    assert.same({"W 0x1000 4 01000000", "V 0x1000 4 01000000"}, rec:take())
    cfg.Power:set(false)
    root:waitOnUpdate()
    assert.equal("deps", d.enable:get())
    assert.equal("ExtDepFalse", d.enable:getDisp())
    assert.equal("parent", d.Sub.enable:get())
    assert.same({false}, changed)
    assert.same({"ExtDepFalse"}, heard)
    d.V:set(2)
    d.Sub.S:set(3)
    assert.equal(2, d.V:get())
    assert.same({}, rec:take())                 -- disabled blocks make no traffic
    cfg.Power:set(true)
    root:waitOnUpdate()
    assert.is_true(d.enable:get())
    assert.same({false, true}, changed)
    assert.same({"ExtDepFalse", "True"}, heard)
    d.Sub.S:set(4)
    assert.same({"W 0x1100 4 04000000", "V 0x1100 4 04000000"}, rec:take())
    root:stop()
  end)

  it("follows a register read: disabled until the dependency reads true", function()
    local root, d, _, rec, changed = depTree{"Power", "Ready"}
    root:start()
    assert.equal("deps", d.enable:get())        -- Ready's shadow is 0
    rec:poke(0x2000, "\1")
    root.ReadAll()
    -- the tree's reads happen while D is still disabled: only Cfg's block
    assert.same({"R 0x2000 4"}, rec:take())
    root:waitOnUpdate()
    assert.is_true(d.enable:get())
    assert.same({true}, changed)
    assert.equal(0, d.V:get())
    assert.same({"R 0x1000 4"}, rec:take())
    root:stop()
  end)

  it("an own enable of false wins over the dependencies, and no change calls nothing", function()
    local root, d, cfg, _, changed = depTree{"Power"}
    root:start()
    d.enable:set(false)
    assert.same({false}, changed)
    cfg.Power:set(false)
    root:waitOnUpdate()
    assert.is_false(d.enable:get())
    cfg.Power:set(true)
    root:waitOnUpdate()
    assert.is_false(d.enable:get())
    assert.same({false}, changed)
    root:stop()
  end)
end)
