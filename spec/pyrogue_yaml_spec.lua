-- sl.pyrogue YAML configuration: getYaml/saveYaml/loadYaml/setYaml on a
-- tree of recording variables (every set is logged with its write flag and
-- index): key resolution, values, staging and commit, errors.
local sl = require "streamlua"

describe("pyrogue YAML on the tree", function()
  local pr = sl.pyrogue
  local calls

  -- A variable that keeps its value in Lua and records every set.
  local RecVar = pr.class("RecVar", pr.BaseVariable)
  function RecVar:_init(args)
    pr.BaseVariable._init(self, args)
    self.numValues = args.numValues
    if args.numValues then
      local t = {}
      for i = 1, args.numValues do t[i] = 0 end
      self._v = t
    else
      self._v = args.value
    end
    self._default = nil
    self._isCommand = args.isCommand
    local PY = {boolean = "bool", string = "str", integer = "int", float = "float"}
    self.nativeType = args.numValues and "ndarray"
                      or PY[math.type(args.value) or type(args.value)]
  end
  function RecVar:get(opts)
    local i = opts and opts.index
    if i ~= nil and i >= 0 then return self._v[i + 1] end
    return self._v
  end
  function RecVar:set(v, opts)
    opts = opts or {}
    local i = opts.index
    if self.fail then error(self.fail, 0) end
    if i ~= nil and i >= 0 then
      if i >= #self._v then error("list index out of range", 0) end
      self._v[i + 1] = v
    else
      self._v = v
    end
    calls[#calls + 1] = ("%s=%s w=%s i=%s"):format(self.path, tostring(v),
                                                   tostring(opts.write ~= false), tostring(i))
  end
  function RecVar:genDisp(v)
    if self.disp == "enum" then return self.enum[v] end
    if type(v) == "table" then
      local t = {}
      for k, x in ipairs(v) do t[k] = tostring(x) end
      return "[" .. table.concat(t, ", ") .. "]"
    end
    if self.hexDisp then return ("0x%06x"):format(v) end
    return v == nil and nil or tostring(v)
  end

  local function Adc(name)
    local d = pr.Device{name = name}
    d:add(RecVar{name = "Version", mode = "RO", value = 3})
    d:add(RecVar{name = "ScratchPad", value = 0})
    d:add(RecVar{name = "Enable", value = false})
    d:add(RecVar{name = "Mode", value = 0, enum = {[0] = "Off", [1] = "Slow", [2] = "Fast"}})
    d:add(RecVar{name = "Gain", value = 0.5})
    d:add(RecVar{name = "Coef", numValues = 4})
    d:add(RecVar{name = "Thresh[0]", value = 0})
    d:add(RecVar{name = "Thresh[1]", value = 0})
    d:add(RecVar{name = "Reset", mode = "WO", value = 0, isCommand = true})
    d:add(RecVar{name = "Secret", value = 1, groups = "NoConfig"})
    d:add(RecVar{name = "Label", value = "adc"})
    return d
  end

  local function tree()
    local r = pr.Root{name = "Top", pollEn = false}   -- as the reference's Top (§6.6)
    r:add(Adc("Adc[0]"))
    r:add(Adc("Adc[1]"))
    local empty = pr.Device{name = "Empty", groups = "NoConfig"}
    r:add(empty)
    r:start()
    calls = {}
    -- the commit of a staged load, recorded
    function r.writeBlocks(self, o) calls[#calls + 1] = "writeBlocks force=" .. tostring(o.force) end
    function r.verifyBlocks() calls[#calls + 1] = "verifyBlocks" end
    function r.waitBlocks() calls[#calls + 1] = "waitBlocks" end
    return r
  end

  before_each(function() sl.logging.setEmit(false) end)
  after_each(function() sl.logging.setEmit(true) end)


  it("installs the methods on every node and device", function()
    local r = pr.Root{name = "Top"}
    assert.is_function(r.getYaml)
    assert.is_function(r.saveYaml)
    assert.is_function(r.loadYaml)
    assert.is_function(r.setYaml)
    assert.is_function(pr.BaseVariable.getYaml)
  end)

  it("exports variables in add order, then devices; modes and groups filter", function()
    local r = tree()
    local cfg = r:getYaml{modes = {"RW", "WO"}, excGroups = "NoConfig"}
    local adc = "    enable: True\n    ScratchPad: 0\n    Enable: False\n    Mode: 'Off'\n"
             .. "    Gain: 0.5\n    Coef: '[0, 0, 0, 0]'\n    Thresh[0]: 0\n    Thresh[1]: 0\n"
             .. "    Label: adc\n"
    local head = cfg:match("^(Top:\n  enable: True\n)")
    assert.is_truthy(head, cfg)
    assert.is_truthy(cfg:find("  Adc[0]:\n" .. adc .. "  Adc[1]:\n" .. adc, 1, true), cfg)
    assert.is_nil(cfg:find("Version", 1, true))     -- RO
    assert.is_nil(cfg:find("Reset", 1, true))       -- a command
    assert.is_nil(cfg:find("Secret", 1, true))      -- NoConfig
    assert.is_nil(cfg:find("Empty", 1, true))       -- NoConfig device
    local state = r:getYaml()
    assert.is_truthy(state:find("    Version: 3\n    ScratchPad: 0\n", 1, true), state)
    assert.is_truthy(state:find("  Empty:\n    enable: True\n", 1, true), state)
    -- positional form, on a sub-device; no recursion
    assert.are.equal("Adc[1]:\n  Version: 3\n", r["Adc[1]"]:getYaml(false, {"RO"}))
    local flat = r:getYaml{recurse = false, modes = {"RW"}}
    assert.is_truthy(flat:match("^Top:\n  enable: True\n"), flat)
    assert.is_nil(flat:find("Adc", 1, true))
    assert.are.equal("ScratchPad: 0\n", r["Adc[0]"].ScratchPad:getYaml())
    r:stop()
  end)

  it("tags each value by its type: bool, enum text, int, float, text, null", function()
    local r = pr.Root{name = "Top"}
    local d = pr.Device{name = "D"}
    r:add(d)
    d:add(RecVar{name = "B", value = true})
    d:add(RecVar{name = "E", value = 1, enum = {[0] = "No", [1] = "Yes"}})
    d:add(RecVar{name = "I", value = 5})
    d:add(RecVar{name = "F", value = 0 / 0})
    d:add(RecVar{name = "S", value = "1.5"})
    local counts = RecVar{name = "C", value = 5}
    function counts.genDisp(_, v) return v .. " counts" end
    d:add(counts)
    local none = RecVar{name = "N", value = 1}
    function none.genDisp() return nil end
    d:add(none)
    r:start()
    assert.are.equal("D:\n  enable: True\n  B: True\n  E: 'Yes'\n  I: 5\n  F: !!float '-nan'\n"
                     .. "  S: '1.5'\n  C: !!int '5 counts'\n  N: null\n",
                     d:getYaml():gsub("'nan'", "'-nan'"))
    r:stop()
  end)

  it("saveYaml writes the text to a file, names one when none is given, refuses zip", function()
    local r = tree()
    local dir = temp_dir()
    local f = dir .. "/cfg.yml"
    assert.are.equal(f, r:saveYaml(f, false))
    assert.are.equal(r:getYaml(), slurp(f))
    assert.are.equal(f, r:saveYaml{name = f, readFirst = false, modes = {"RW"}})
    assert.are.equal(r:getYaml{modes = {"RW"}}, slurp(f))
    local cwd = os.getenv("PWD")
    local auto = r:saveYaml{readFirst = false, autoPrefix = dir .. "/config"}
    assert.is_truthy(auto:match("/config_%d%d%d%d%d%d%d%d_%d%d%d%d%d%d%.yml$"), auto)
    assert.is_truthy(slurp(auto))
    assert.has_error(function() r:saveYaml(dir .. "/x.yml.zip") end,
                     "saveYaml: " .. dir .. "/x.yml.zip: zip archives are not supported")
    assert.has_error(function() r:saveYaml{nme = "x"} end, "saveYaml: unknown argument 'nme'")
    assert.is_truthy(cwd)
    remove_dir(dir)
    r:stop()
  end)

  it("stages a root load in document order and commits once, in tree order", function()
    local r = tree()
    r:setYaml{yml = "Top:\n  Adc[1]:\n    ScratchPad: 0x10\n  Adc[0]:\n    Label: x\n"
                    .. "root:\n  Adc[0]:\n    Mode: Fast\n"}
    assert.are.same({"Top.Adc[1].ScratchPad=16 w=false i=nil",
                     "Top.Adc[0].Label=x w=false i=nil",
                     "Top.Adc[0].Mode=2 w=false i=nil",
                     "writeBlocks force=false", "verifyBlocks", "waitBlocks"}, calls)
    r:stop()
  end)

  it("writeEach sets each value fully in document order, with no commit", function()
    local r = tree()
    r:setYaml("Top:\n  Adc[1]:\n    Thresh[1]: 7\n  Adc[0]:\n    Gain: 1.5\n", true, {"RW"})
    assert.are.same({"Top.Adc[1].Thresh[1]=7 w=true i=nil",
                     "Top.Adc[0].Gain=1.5 w=true i=nil"}, calls)
    r:stop()
  end)

  it("selects array-named nodes by index, wildcard and slice; each gets the same value", function()
    local r = tree()
    r:setYaml{yml = "Top:\n  Adc[*]:\n    Thresh[:]: 1\n  Adc[1:]:\n    Thresh[::2]: 2\n"
                    .. "  Adc[0]:\n    Thresh[1]: 3\n"}
    assert.are.same({"Top.Adc[0].Thresh[0]=1 w=false i=nil", "Top.Adc[0].Thresh[1]=1 w=false i=nil",
                     "Top.Adc[1].Thresh[0]=1 w=false i=nil", "Top.Adc[1].Thresh[1]=1 w=false i=nil",
                     "Top.Adc[1].Thresh[0]=2 w=false i=nil",
                     "Top.Adc[0].Thresh[1]=3 w=false i=nil",
                     "writeBlocks force=false", "verifyBlocks", "waitBlocks"}, calls)
    -- a single negative index is not a slice: the load stops (pyrogue's TypeError)
    calls = {}
    local ok, err = pcall(r.setYaml, r, {yml = "Top:\n  Adc[-1]:\n    Label: z\n"})
    assert.is_false(ok)
    assert.are.equal("<string>:2: Adc[-1]: '-1' object is not iterable", err)
    assert.are.same({}, calls)
    r:stop()
  end)

  it("indexes list variables: element, wildcard, slice of a list or a text, mapping", function()
    local r = tree()
    r:setYaml("Top:\n  Adc[0]:\n    Coef[1]: 0x55\n    Coef[-1]: 9\n    Coef[2:4]: [1, 2]\n"
              .. "    Coef[*]: 4\n    Coef[0:2]: '5, 6'\n    Coef[1:3]: '[7, 8, 99]'\n"
              .. "    Coef[2:]: 3\n    Coef: {0: 10, 3: 11}\n", true)
    local c = "Top.Adc[0].Coef="
    assert.are.same({c .. "85 w=true i=1", c .. "9 w=true i=3", c .. "1 w=true i=2",
                     c .. "2 w=true i=3", c .. "4 w=true i=0", c .. "4 w=true i=1",
                     c .. "4 w=true i=2", c .. "4 w=true i=3", c .. "5 w=true i=0",
                     c .. "6 w=true i=1", c .. "7 w=true i=1", c .. "8 w=true i=2",
                     c .. "3 w=true i=2", c .. "3 w=true i=3", c .. "10 w=true i=0",
                     c .. "11 w=true i=3"}, calls)
    r:stop()
  end)

  it("applies a device's load to its own subtree: its name or its children's", function()
    local r = tree()
    local adc = r["Adc[1]"]
    calls = {}
    function adc.writeBlocks(self, o) calls[#calls + 1] = "dev writeBlocks force=" .. tostring(o.force) end
    function adc.verifyBlocks() calls[#calls + 1] = "dev verifyBlocks" end
    function adc.waitBlocks() calls[#calls + 1] = "dev waitBlocks" end
    adc:setYaml("Adc[1]:\n  ScratchPad: 7\nScratchPad: 8\n")
    assert.are.same({"Top.Adc[1].ScratchPad=7 w=false i=nil", "Top.Adc[1].ScratchPad=8 w=false i=nil",
                     "dev writeBlocks force=false", "dev verifyBlocks", "dev waitBlocks"}, calls)
    r:stop()
  end)

  it("skips by mode with pyrogue's warning, by group and commands silently", function()
    local r = tree()
    sl.logging.setFilter("pyrogue.Variable.Top.Adc[1].Version", sl.logging.Warning)
    r:setYaml{yml = "Top:\n  Adc[1]:\n    Version: 5\n    Reset: 1\n    Secret: 2\n    Label: y\n",
              excGroups = "NoConfig"}
    assert.are.same({"Top.Adc[1].Label=y w=false i=nil", "writeBlocks force=false",
                     "verifyBlocks", "waitBlocks"}, calls)
    local h = sl.logging.history(5)
    local found = false
    for _, line in ipairs(h) do
      found = found or line:find("WARNING Variable.Top.Adc[1].Version: Skipping set for "
        .. "Entry Version with mode RO. Enabled Modes=['RW', 'WO'].", 1, true) ~= nil
    end
    assert.is_true(found, table.concat(h, "\n"))
    r:stop()
  end)

  it("refuses an unknown key before staging anything, naming file, line and key", function()
    local r = tree()
    local dir = temp_dir()
    spit(dir .. "/a.yml", "Top:\n  Adc[0]:\n    ScratchPad: 1\n")
    spit(dir .. "/b.yml", "Top:\n  Adc[1]:\n    Label: q\n    Bogus: 3\n")
    local ok, err = pcall(r.loadYaml, r, {name = {dir .. "/a.yml", dir .. "/b.yml"}})
    assert.is_false(ok)
    assert.are.equal(dir .. "/b.yml:4: Entry Bogus not found", err)
    assert.are.same({}, calls)
    -- the same for a root key that is not the root (no ROOT alias), and a key
    -- into a variable that is not a list
    ok, err = pcall(r.setYaml, r, "ROOT:\n  Adc[0]:\n    Label: q\n")
    assert.are.equal("<string>:1: Entry ROOT not found", err)
    ok, err = pcall(r.setYaml, r, "Top:\n  Adc[0]:\n    Label[1]: q\n")
    assert.are.equal("<string>:3: Entry Label with key ['1'] not found", err)
    ok, err = pcall(r.setYaml, r, "Top:\n  Adc[0]:\n    Label: q\n    Coef[4]: 1\n")
    assert.are.equal("<string>:4: Coef[4]: list index out of range", err)
    ok, err = pcall(r.setYaml, r, "Top:\n  Adc[0]:\n    Coef[x]: 1\n")
    assert.are.equal("<string>:3: Coef[x]: invalid index x", err)
    ok, err = pcall(r.setYaml, r, "Top:\n  Empty[1]:\n    enable: False\n")
    assert.are.equal("<string>:2: Entry Empty with key ['1'] not found", err)
    ok, err = pcall(r.setYaml, r, "Top:\n  Adc[0][1]:\n    Label: q\n")
    assert.are.equal("<string>:2: Entry Adc[0][1] not found", err)
    assert.are.same({}, calls)
    -- strict=false: logged, and the rest goes on (pyrogue)
    r:loadYaml{name = dir .. "/b.yml", strict = false}
    assert.are.same({"Top.Adc[1].Label=q w=false i=nil", "writeBlocks force=false",
                     "verifyBlocks", "waitBlocks"}, calls)
    local last = sl.logging.history(1)[1]
    assert.is_truthy(last:find("ERROR Device.Top.Adc[1]: Entry Bogus not found", 1, true), last)
    r:setYaml{yml = "Top:\n  Adc[0]:\n    Label[1]: q\n", strict = false}
    last = sl.logging.history(1)[1]
    assert.is_truthy(last:find("ERROR Variable.Top.Adc[0].Label: Entry Label with key ['1'] not found",
                               1, true), last)
    remove_dir(dir)
    r:stop()
  end)

  it("refuses a malformed file before staging anything", function()
    local r = tree()
    local dir = temp_dir()
    spit(dir .. "/a.yml", "Top:\n  Adc[0]:\n    ScratchPad: 1\n")
    spit(dir .. "/b.yml", "Top:\n  Adc[1]:\n    Label: [q\n")
    local ok, err = pcall(r.loadYaml, r, dir .. "/a.yml," .. dir .. "/b.yml")
    assert.is_false(ok)
    assert.is_truthy(err:find(dir .. "/b.yml:4: ", 1, true), err)
    assert.are.same({}, calls)
    remove_dir(dir)
    r:stop()
  end)

  it("stops at a value that fails to stage: no commit, the file, line and key named", function()
    local r = tree()
    r["Adc[1]"].Gain.fail = "Value range error for Gain"
    local ok, err = pcall(r.setYaml, r, "Top:\n  Adc[0]:\n    Gain: 2.0\n  Adc[1]:\n    Gain: 9.0\n")
    assert.is_false(ok)
    assert.are.equal("<string>:5: Gain: Value range error for Gain", err)
    -- what was staged before stays staged (pyrogue), nothing was committed
    assert.are.same({"Top.Adc[0].Gain=2.0 w=false i=nil"}, calls)
    r:stop()
  end)

  it("loads a list of files, a comma-separated list, and directories in path order", function()
    local r = tree()
    local dir = temp_dir()
    assert(os.execute("mkdir -p '" .. dir .. "/d'"))
    spit(dir .. "/d/b.yaml", "Top:\n  Adc[0]:\n    Label: b\n")
    spit(dir .. "/d/a.yml", "Top:\n  Adc[0]:\n    Label: a\n")
    spit(dir .. "/d/c.txt", "not yaml")
    spit(dir .. "/x.yml", "Top:\n  Adc[0]:\n    Label: x\n")
    r:loadYaml(dir .. "/x.yml," .. dir .. "/d", false, {"RW", "WO"})
    assert.are.same({"Top.Adc[0].Label=x w=false i=nil", "Top.Adc[0].Label=a w=false i=nil",
                     "Top.Adc[0].Label=b w=false i=nil", "writeBlocks force=false",
                     "verifyBlocks", "waitBlocks"}, calls)
    assert.has_error(function() r:loadYaml(dir .. "/d/c.txt") end,
      "loadYaml: Invalid load file: " .. dir .. "/d/c.txt, must be a directory or end in .yml or .yaml")
    assert.has_error(function() r:loadYaml(dir .. "/cfg.zip/sub") end,
      "loadYaml: " .. dir .. "/cfg.zip/sub: zip archives are not supported")
    remove_dir(dir)
    r:stop()
  end)

  it("types values with YAML 1.1 (Q13): 010 is 8, Off is false, 1:30 is 90", function()
    local r = tree()
    r:setYaml("Top:\n  Adc[0]:\n    ScratchPad: 010\n    Enable: Off\n    Thresh[0]: 1:30\n"
              .. "    Label: 'Off'\n", true)
    assert.are.same({"Top.Adc[0].ScratchPad=8 w=true i=nil", "Top.Adc[0].Enable=false w=true i=nil",
                     "Top.Adc[0].Thresh[0]=90 w=true i=nil", "Top.Adc[0].Label=Off w=true i=nil"},
                    calls)
    r:stop()
  end)

  it("round-trips: a saved configuration loads into a fresh tree with the same sets", function()
    local a = tree()
    a:setYaml("Top:\n  Adc[*]:\n    ScratchPad: 0x1234\n    Label: it's\n  Adc[1]:\n    Gain: 1.25\n", true)
    local dir = temp_dir()
    a:saveYaml{name = dir .. "/cfg.yml", readFirst = false, modes = {"RW", "WO"},
               excGroups = "NoConfig"}
    a:stop()
    local b = tree()
    b:loadYaml(dir .. "/cfg.yml", true)
    local again = b:getYaml{modes = {"RW", "WO"}, excGroups = "NoConfig"}
    assert.are.equal(slurp(dir .. "/cfg.yml"), again)
    remove_dir(dir)
    b:stop()
  end)

  it("runs the Root's commands with pyrogue's arguments", function()
    local r = tree()
    local dir = temp_dir()
    local cfg = r:getYaml{modes = {"RW", "WO"}, excGroups = "NoConfig"}
    assert.is_truthy(cfg:match("^Top:\n  enable: True\n  ForceWrite: False\n  InitAfterConfig: False\n"
      .. "  PollEn: False\n  LoadConfigProcess:\n    enable: True\n    UpdatePeriod: 1.0\n"
      .. "    LoadMode: File\n    ConfigFile: ''\n    YamlString: ''\n  SaveConfigProcess:\n"
      .. "    enable: True\n    UpdatePeriod: 1.0\n    DataType: Config\n    SaveMode: File\n"
      .. "    ConfigFile: ''\n  Adc%[0%]:\n"), cfg)
    assert.are.equal(cfg, r.GetYamlConfig(false))
    assert.are.equal(r:getYaml{excGroups = "NoState"}, r.GetYamlState(false))
    r.SaveConfig(dir .. "/c.yml")
    assert.are.equal(cfg, slurp(dir .. "/c.yml"))
    r.SaveState(dir .. "/s.yml")
    assert.are.equal(r:getYaml{excGroups = "NoState"}, slurp(dir .. "/s.yml"))
    calls = {}
    r.SetYamlConfig("Top:\n  Adc[0]:\n    Secret: 5\n    Label: s\n")
    assert.are.same({"Top.Adc[0].Label=s w=false i=nil", "writeBlocks force=false",
                     "verifyBlocks", "waitBlocks"}, calls)
    calls = {}
    spit(dir .. "/l.yml", "Top:\n  ForceWrite: True\n  Adc[1]:\n    Label: l\n")
    r.LoadConfig(dir .. "/l.yml")
    assert.are.same({"Top.Adc[1].Label=l w=false i=nil", "writeBlocks force=true",
                     "verifyBlocks", "waitBlocks"}, calls)
    remove_dir(dir)
    r:stop()
  end)

  it("initializes the tree after a root load when InitAfterConfig is set", function()
    local r = tree()
    local inits = 0
    function r.initialize() inits = inits + 1 end
    r:setYaml("Top:\n  Adc[0]:\n    Label: a\n")
    assert.are.equal(0, inits)
    r:setYaml("Top:\n  InitAfterConfig: True\n  Adc[0]:\n    Label: b\n")
    assert.are.equal(1, inits)
    r:setYaml("Top:\n  Adc[0]:\n    Label: c\n", true)    -- writeEach: no commit step
    assert.are.equal(1, inits)
    r:stop()
  end)

  it("runs the configuration processes: load from a file or text, save to a file or text", function()
    local r = tree()
    local dir = temp_dir()
    local lp, sp = r.LoadConfigProcess, r.SaveConfigProcess
    spit(dir .. "/l.yml", "Top:\n  Adc[1]:\n    Label: p\n")
    lp.ConfigFile:set(dir .. "/l.yml")
    lp.Start()
    assert.are.equal("Done", lp.Message:value())
    assert.are.equal("1.00", lp.Progress:valueDisp())
    assert.is_false(lp.Running:value())
    assert.are.same({"Top.Adc[1].Label=p w=false i=nil", "writeBlocks force=false",
                     "verifyBlocks", "waitBlocks"}, calls)
    lp.LoadMode:setDisp("String")
    lp.YamlString:set("Top:\n  Adc[1]:\n    Bogus: 1\n")
    lp()
    assert.are.equal("Error: <string>:3: Entry Bogus not found", lp.Message:value())
    lp.YamlString:set("  ")
    lp()
    assert.are.equal("Error: YamlString is empty", lp.Message:value())
    sp.ConfigFile:set(dir .. "/s.yml")
    sp()
    assert.are.equal("Done", sp.Message:value())
    assert.are.equal(r:getYaml{modes = {"RW", "WO"}, excGroups = "NoConfig"}, slurp(dir .. "/s.yml"))
    sp.SaveMode:setDisp("String")
    sp.DataType:setDisp("Status")
    sp()
    local state = sp.YamlString:value()    -- taken while the process ran
    assert.is_truthy(state:match("^Top:\n  enable: True\n  RogueVersion: "), state)
    assert.is_truthy(state:find("  SaveConfigProcess:\n    enable: True\n    Running: True\n"
      .. "    Progress: 0.00\n    Message: Running\n", 1, true), state)
    assert.is_truthy(state:find("    Version: 3\n", 1, true), state)
    assert.is_false(sp.Running:value())
    remove_dir(dir)
    r:stop()
  end)

  it("runs a Process's function with its argument and keeps its result", function()
    local r = pr.Root{name = "Top", pollEn = false}
    local argVar = pr.LocalVariable{name = "Arg", value = 0}
    local retVar = pr.LocalVariable{name = "Ret", value = 0}
    local p = pr.Process{name = "P", argVariable = argVar, returnVariable = retVar,
                         func = function(kw) kw.dev:setTotalSteps(4); kw.dev:setStep(2)
                                             assert(kw.dev.Progress:value() == 0.5)
                                             return kw.arg * 2 end}
    local bad = pr.Process{name = "Bad", func = function() error("boom", 0) end}
    r:add{p, bad}
    r:start()
    p("21")
    assert.are.equal(42, retVar:value())
    assert.are.equal("Done", p.Message:value())
    assert.are.equal(1.0, p.Progress:value())
    bad.Start()
    assert.are.equal("Stopped after error!", bad.Message:value())
    assert.is_false(bad.Running:value())
    assert.is_truthy(sl.logging.history(1)[1]:find("ERROR Device.Top.Bad: boom", 1, true))
    r:stop()
  end)
end)
