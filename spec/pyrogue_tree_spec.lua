-- sl.pyrogue, the tree core: classes, nodes, devices, paths, start/stop.
local sl = require "streamlua"

describe("sl.pyrogue", function()
  local pr = sl.pyrogue

  it("is the embedded streamlua.pyrogue.init, every file preloaded", function()
    for _, f in ipairs{"init", "node", "device", "root", "variable"} do
      assert.is_function(package.preload["streamlua.pyrogue." .. f])
    end
    assert.equal(require "streamlua.pyrogue.init", pr)
    assert.equal(pr, sl.pyrogue)
    assert.is_table(pr.Device)
    assert.is_table(pr.Root)
    assert.equal("pr.Device", tostring(pr.Device))
  end)

  it("builds objects from one table; bad arguments name the class", function()
    assert.has_error(function() pr.Device(5) end,
                     "pr.Device: expected a table of arguments, got number")
    assert.has_error(function() pr.Node{} end, "pr.Node: argument 'name' is required")
    assert.equal("Device", pr.Device{}.name)
    assert.equal("Root", pr.Root{}.name)
  end)

  it("makes subclasses whose methods and metamethods chain", function()
    local My = pr.class("My", pr.Device)
    function My:hello() return "hello " .. self.name end
    local d = My{name = "X"}
    assert.equal("hello X", d:hello())
    assert.is_true(pr.isinstance(d, pr.Device))
    assert.is_true(d:isinstance(pr.Node))
    assert.is_false(pr.isinstance(pr.Device{}, My))
    assert.equal("My(X)", tostring(d))
  end)

  it("looks up raw fields, then methods, then children; hooks override per instance", function()
    local d = pr.Device{name = "D"}
    local called = false
    function d.initialize(self) called = self end
    d:initialize()
    assert.equal(d, called)
    local c = pr.Device{name = "C"}
    d:add(c)
    assert.equal(c, d.C)
    assert.equal(c, d:node("C"))
    assert.is_nil(d:node("add"))
  end)

  it("refuses a name that collides with a child, a field or a method", function()
    local d = pr.Device{name = "D"}
    d:add(pr.Device{name = "A"})
    assert.has_error(function() d:add(pr.Device{name = "A"}) end,
                     "Error adding node with name A to D. Name collision.")
    assert.has_error(function() d:add(pr.Device{name = "offset"}) end,
                     "Error adding node with name offset to D. Name collision.")
    assert.has_error(function() d:add(pr.Device{name = "add"}) end,
                     "Error adding node with name add to D. Name collision.")
    assert.has_error(function() d:add(pr.Device{name = "enable"}) end,
                     "Error adding node with name enable to D. Name collision.")
  end)

  it("refuses adding an attached node, to a started tree, or to a non-device", function()
    local r = pr.Root{name = "Top"}
    local d = pr.Device{name = "D"}
    r:add(d)
    assert.has_error(function() pr.Root{name = "R2"}:add(d) end,
                     "Error adding node with name D to R2. Node is already attached.")
    assert.has_error(function() d.enable:add(pr.Device{name = "Z"}) end,
                     "Attempting to add node with name Z to non device node enable.")
    r:start()
    assert.has_error(function() d:add(pr.Device{name = "Late"}) end,
                     "Error adding node with name Late to D. Tree is already started.")
    r:stop()
  end)

  it("adds lists of nodes in order; enable comes first", function()
    local d = pr.Device{name = "D"}
    d:add{pr.Device{name = "A"}, pr.Device{name = "B"}}
    local names = {}
    for _, n in ipairs(d:nodes()) do names[#names + 1] = n.name end
    local want = {"enable"}
    if d.ReadDevice then want = {"enable", "ReadDevice", "WriteDevice"} end
    want[#want + 1] = "A"; want[#want + 1] = "B"
    assert.same(want, names)
    assert.same({d.A, d.B}, d:devices())
  end)

  it("gives paths at start and finds nodes by path", function()
    local r = pr.Root{name = "Top"}
    local d = pr.Device{name = "Dev", offset = 0x1000}
    local s = pr.Device{name = "S", offset = 0x100}
    d:add(s)
    r:add(d)
    assert.equal("S", s.path)
    r:start()
    assert.equal("Top.Dev.S", s.path)
    assert.equal("Top.Dev.S.enable", s.enable.path)
    assert.equal(s, r:getNode("Top.Dev.S"))
    assert.equal(s, r:getNode("root.Dev.S"))
    assert.equal(r, r:getNode("Top"))
    assert.is_nil(r:getNode("ROOT.Dev.S"))
    assert.is_nil(r:getNode("Top.Dev.X"))
    assert.is_nil(r:getNode("Other.Dev"))
    assert.is_true(r.running)
    assert.has_error(function() r:start() end, "Root is already started! Can't restart!")
    r:stop()
    assert.is_false(r.running)
  end)

  it("indexes array names and matches keys like pyrogue's nodeMatch", function()
    local d = pr.Device{name = "D"}
    for i = 0, 4 do d:add(pr.Device{name = ("Ch[%d]"):format(i)}) end
    d:add(pr.Device{name = "M[0][1]"})
    d:add(pr.Device{name = "M[1][0]"})
    d:add(pr.Device{name = "Plain"})
    assert.equal(d:node("Ch[2]"), d.Ch[2])
    assert.equal(d:node("M[1][0]"), d.M[1][0])
    local function names(list)
      local t = {}
      for i, n in ipairs(list) do t[i] = n.name end
      return t
    end
    assert.same({"Ch[3]"}, names(d:nodeMatch("Ch[3]")))
    assert.same({"Ch[0]", "Ch[1]", "Ch[2]", "Ch[3]", "Ch[4]"}, names(d:nodeMatch("Ch[*]")))
    assert.same({"Ch[0]", "Ch[1]", "Ch[2]", "Ch[3]", "Ch[4]"}, names(d:nodeMatch("Ch[:]")))
    assert.same({"Ch[1]", "Ch[2]"}, names(d:nodeMatch("Ch[1:3]")))
    assert.same({"Ch[0]", "Ch[2]", "Ch[4]"}, names(d:nodeMatch("Ch[::2]")))
    assert.same({"Ch[3]", "Ch[4]"}, names(d:nodeMatch("Ch[-2:]")))
    assert.same({}, names(d:nodeMatch("Ch[9]")))
    assert.same({"M[0][1]", "M[1][0]"}, names(d:nodeMatch("M[*][*]")))
    assert.same({}, names(d:nodeMatch("M[*]")))
    local n, keys = d:nodeMatch("Plain[3]")
    assert.same({"Plain"}, names(n))
    assert.same({"3"}, keys)
    assert.has_error(function() d:nodeMatch("Ch[-1]") end, "'-1' object is not iterable")
    assert.same({}, d:nodeMatch("Nothing"))
    assert.has_error(function() d:add(pr.Device{name = "Ch[2]"}) end,
                     "Error adding node with name Ch[2] to D. Name collision.")
    assert.has_error(function() d:add(pr.Device{name = "Ch"}) end,
                     "Error adding node with name Ch to D. Name collision.")
  end)

  it("copies groups, inherits them downward at start, filters by group", function()
    local g = {"NoConfig"}
    local a = pr.Device{name = "A", groups = g}
    local b = pr.Device{name = "B", groups = g, hidden = true}
    a:addToGroup("X")
    assert.same({"NoConfig"}, b.groups and {b.groups[1]})
    assert.is_false(b:inGroup("X"))
    assert.is_true(b.hidden)
    local r = pr.Root{name = "R"}
    r:add(a)
    a:add(b)
    r:start()
    assert.is_true(b:inGroup("X"))
    assert.is_true(b.enable:inGroup("Hidden"))
    assert.is_true(a:filterByGroup(nil, nil))
    assert.is_true(a:filterByGroup("X", nil))
    assert.is_false(a:filterByGroup(nil, {"NoConfig"}))
    assert.is_false(a:filterByGroup({"Y"}, nil))
    r:stop()
  end)

  it("starts and stops managed interfaces, Root first, then devices in order", function()
    local order = {}
    local function iface(n)
      return {_start = function() order[#order + 1] = "start " .. n end,
              _stop = function() order[#order + 1] = "stop " .. n end}
    end
    local r = pr.Root{name = "R"}
    local a, b = pr.Device{name = "A"}, pr.Device{name = "B"}
    r:add(a); r:add(b)
    b:addInterface(iface("b"))
    r:addInterface(iface("r"))
    a:addInterface(iface("a"))
    r:start()
    r:stop()
    assert.same({"start r", "start a", "start b", "stop r", "stop a", "stop b"}, order)
  end)
end)
