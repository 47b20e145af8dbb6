-- sl.pyrogue YAML against the bus: the reference's complete example (§6.6)
-- byte for byte and transaction for transaction on a recording slave, a
-- round trip into a fresh tree, writeEach element writes, and a readFirst
-- export on a sub-device reading the whole tree (Q28).
local sl = require "streamlua"
local ph = require "spec.pyrogue_helper"

describe("pyrogue YAML on the bus", function()
  local pr = sl.pyrogue

  local function Adc(args)
    local d = pr.Device(args)
    d:add(pr.RemoteVariable{name = "Version", offset = 0x00, mode = "RO", disp = "{:#08x}"})
    d:add(pr.RemoteVariable{name = "ScratchPad", offset = 0x04, mode = "RW", disp = "{:#08x}"})
    d:add(pr.RemoteVariable{name = "Enable", offset = 0x08, bitSize = 1, bitOffset = 0,
                            base = pr.Bool, mode = "RW"})
    d:add(pr.RemoteVariable{name = "Mode", offset = 0x08, bitSize = 2, bitOffset = 4, mode = "RW",
                            enum = {[0] = "Off", [1] = "Slow", [2] = "Fast"}})
    d:add(pr.RemoteVariable{name = "Gain", offset = 0x0C, bitSize = 16, base = pr.Fixed(16, 8),
                            mode = "RW", disp = "{:.3f}"})
    d:add(pr.RemoteVariable{name = "Coef", offset = 0x10, numValues = 4, valueBits = 16,
                            valueStride = 16, base = pr.Int, mode = "RW"})
    d:addRemoteVariables(2, 4, {name = "Thresh", offset = 0x20, bitSize = 12, mode = "RW",
                                disp = "{:d}"})
    d:add(pr.RemoteVariable{name = "Status", offset = 0x30, bitSize = 8, mode = "RO",
                            pollInterval = 1})
    d:add(pr.RemoteCommand{name = "Reset", offset = 0x34, bitSize = 1,
                           func = pr.BaseCommand.toggle})
    d:add(pr.LocalVariable{name = "Label", value = "adc"})
    return d
  end

  local function Top()
    local rec = ph.recorder{min = 4}
    local r = pr.Root{name = "Top", pollEn = false}
    r:add(Adc{name = "Adc[0]", offset = 0x10000, memBase = rec.slave})
    r:add(Adc{name = "Adc[1]", offset = 0x20000, memBase = rec.slave})
    r:start()
    rec:take()
    return r, rec
  end

  local ADC = [[
    enable: True
    ScratchPad: 0x000000
    Enable: False
    Mode: 'Off'
    Gain: 0.000
    Coef: '[0, 0, 0, 0]'
    Thresh[0]: 0
    Thresh[1]: 0
    Label: adc
]]
  local CONFIG = [[
Top:
  enable: True
  ForceWrite: False
  InitAfterConfig: False
  PollEn: False
  LoadConfigProcess:
    enable: True
    UpdatePeriod: 1.0
    LoadMode: File
    ConfigFile: ''
    YamlString: ''
  SaveConfigProcess:
    enable: True
    UpdatePeriod: 1.0
    DataType: Config
    SaveMode: File
    ConfigFile: ''
]] .. "  Adc[0]:\n" .. ADC .. "  Adc[1]:\n" .. ADC

  local LOAD = [[
Top:
  Adc[*]:
    ScratchPad: 0x1234
    Mode: Fast
    Coef: '[1, -2, 3, -4]'
    Thresh[*]: 100
  Adc[1]:
    Gain: -1.5
    Coef[3]: 7
    Thresh[1]: 200
    Reset: 1
    Version: 5
    Label: second
]]

  local WRITES = {
    {"0x10004 4", "34120000"}, {"0x10008 4", "20000000"}, {"0x10010 8", "0100feff0300fcff"},
    {"0x10020 4", "64000000"}, {"0x10024 4", "64000000"}, {"0x20004 4", "34120000"},
    {"0x20008 4", "20000000"}, {"0x2000c 4", "80fe0000"}, {"0x20010 8", "0100feff03000700"},
    {"0x20020 4", "64000000"}, {"0x20024 4", "c8000000"}}

  local function loadTrace()
    local t = {}
    for _, w in ipairs(WRITES) do t[#t + 1] = "W " .. w[1] .. " " .. w[2] end
    for _, w in ipairs(WRITES) do t[#t + 1] = "V " .. w[1] .. " " .. w[2] end
    return t
  end

  it("exports the configuration of §6.6 byte for byte", function()
    local r = Top()
    assert.are.equal(CONFIG, r.GetYamlConfig(false))
    r:stop()
  end)

  it("loads §6.6's file: all writes in tree order, then the verifies; RO skipped with a warning", function()
    local r, rec = Top()
    local dir = temp_dir()
    spit(dir .. "/load.yml", LOAD)
    sl.logging.setFilter("pyrogue.Variable.Top.Adc[1].Version", sl.logging.Warning)
    local logged = ph.captureLog("Version", function() r.LoadConfig(dir .. "/load.yml") end)
    assert.are.same(loadTrace(), rec:take())
    assert.are.same({"WARNING Variable.Top.Adc[1].Version: Skipping set for Entry Version "
                     .. "with mode RO. Enabled Modes=['RW', 'WO']."}, logged)
    local after = r.GetYamlConfig(false)
    assert.is_truthy(after:find("  Adc[0]:\n    enable: True\n    ScratchPad: 0x001234\n"
      .. "    Enable: False\n    Mode: Fast\n    Gain: 0.000\n    Coef: '[1, -2, 3, -4]'\n"
      .. "    Thresh[0]: 100\n    Thresh[1]: 100\n    Label: adc\n", 1, true), after)
    assert.is_truthy(after:find("  Adc[1]:\n    enable: True\n    ScratchPad: 0x001234\n"
      .. "    Enable: False\n    Mode: Fast\n    Gain: -1.500\n    Coef: '[1, -2, 3, 7]'\n"
      .. "    Thresh[0]: 100\n    Thresh[1]: 200\n    Label: second\n", 1, true), after)
    assert.are.same({}, rec:take())
    remove_dir(dir)
    r:stop()
  end)

  it("round-trips: the saved configuration, loaded into a fresh tree, writes the same registers", function()
    local a, recA = Top()
    a.SetYamlConfig(LOAD)
    local dir = temp_dir()
    a.SaveConfig(dir .. "/cfg.yml")
    a:stop()
    -- every RW register of both devices, once, in tree order, with A's contents
    local want, verifies = {}, {}
    for _, base in ipairs{0x10000, 0x20000} do
      for _, blk in ipairs{{0x04, 4}, {0x08, 4}, {0x0c, 4}, {0x10, 8}, {0x20, 4}, {0x24, 4}} do
        local at, n = base + blk[1], blk[2]
        local line = ("0x%x %d %s"):format(at, n, ph.hex(recA:peek(at, n)))
        want[#want + 1] = "W " .. line
        verifies[#verifies + 1] = "V " .. line
      end
    end
    for _, v in ipairs(verifies) do want[#want + 1] = v end
    for _, try in ipairs{1, 2} do
      local b, recB = Top()
      b.LoadConfig(dir .. "/cfg.yml")
      assert.are.same(want, recB:take(), "load " .. try)
      assert.are.equal(slurp(dir .. "/cfg.yml"), b.GetYamlConfig(false))
      b:stop()
    end
    remove_dir(dir)
  end)

  it("writeEach sets element by element, each written and verified in YAML order", function()
    local r, rec = Top()
    r:setYaml{yml = "Top:\n  Adc[1]:\n    Coef[1]: 0x55\n    Thresh[1]: 3\n", writeEach = true}
    assert.are.same({"W 0x20010 4 00005500", "V 0x20010 4 00005500",
                     "W 0x20024 4 03000000", "V 0x20024 4 03000000"}, rec:take())
    r:stop()
  end)

  it("writes list elements and slices as §6.4's verified example", function()
    local rec = ph.recorder{min = 4}
    local r = pr.Root{name = "Top", pollEn = false}
    local d = pr.Device{name = "Dev", offset = 0x1000, memBase = rec.slave}
    d:add(pr.RemoteVariable{name = "Tbl", offset = 0x40, numValues = 4, valueBits = 8,
                            valueStride = 8, mode = "RW"})
    r:add(d)
    r:start()
    rec:poke(0x1040, "\9\8\7\6")
    r.ReadAll()
    rec:take()
    r:setYaml("Top:\n  Dev:\n    Tbl[1]: 0x55\n    Tbl[2:4]: [1, 2]\n", true)
    assert.are.same({"W 0x1040 4 09550706", "V 0x1040 4 09550706",
                     "W 0x1040 4 09550106", "V 0x1040 4 09550106",
                     "W 0x1040 4 09550102", "V 0x1040 4 09550102"}, rec:take())
    r:stop()
  end)

  it("a readFirst export of one device reads the whole tree (Q28)", function()
    local r, rec = Top()
    r["Adc[1]"]:getYaml{readFirst = true}
    local reads = rec:take()
    local seen0, seen1 = false, false
    for _, l in ipairs(reads) do
      seen0 = seen0 or l:match("^R 0x1") ~= nil
      seen1 = seen1 or l:match("^R 0x2") ~= nil
    end
    assert.is_true(seen0 and seen1, table.concat(reads, "\n"))
    r:stop()
  end)
end)
