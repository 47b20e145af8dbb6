-- streamlua.pyrogue.yamltext: the emitter against PyYAML's output and the
-- loader against PyYAML's Loader (fixtures written by
-- spec/fixtures/yaml/gen_emit.py and gen_load.py), includes, errors, and
-- hostile input.
local yt = require "streamlua.pyrogue.yamltext"

local FIX = "spec/fixtures/yaml/"

local function build(list)
  local m = yt.map()
  for _, kv in ipairs(list) do
    local v = kv[2]
    if type(v[1]) == "string" and type(v[2]) == "string" then
      m:put(kv[1], yt.scalar(v[1], v[2]))
    else
      m:put(kv[1], build(v))
    end
  end
  return m
end

-- Does the loaded value `got` equal the fixture's description `exp`?
local function same(exp, got)
  local k = exp[1]
  if k == "map" then
    if not yt.isMap(got) or got:len() ~= #exp - 1 then return false end
    for i = 2, #exp do
      local key = got.keys[i - 1]
      if not same(exp[i][1], key) or not same(exp[i][2], got.vals[key]) then return false end
    end
    return true
  elseif k == "seq" then
    if type(got) ~= "table" or yt.isMap(got) or #got ~= #exp - 1 then return false end
    for i = 2, #exp do
      if not same(exp[i], got[i - 1]) then return false end
    end
    return true
  elseif k == "int" then return math.type(got) == "integer" and got == exp[2]
  elseif k == "bigint" then return type(got) == "string"   -- left for parseDisp
  elseif k == "float" then
    if math.type(got) ~= "float" then return false end
    if exp[2] == "nan" then return got ~= got end
    if exp[2] == "inf" then return got == math.huge end
    if exp[2] == "-inf" then return got == -math.huge end
    return got == tonumber(exp[2])
  elseif k == "bool" then return got == exp[2]
  elseif k == "null" then return got == yt.NULL or got == nil
  elseif k == "str" then return got == exp[2]
  end
  return false
end

describe("pyrogue YAML text", function()
  it("emits exactly PyYAML's text for every fixture", function()
    local cases = dofile(FIX .. "emit_cases.lua")
    assert.is_true(#cases > 300)
    for i, c in ipairs(cases) do
      local got = yt.emit(build(c[1]))
      if got ~= c[2] then
        error(("case %d:\nwant %q\ngot  %q"):format(i, c[2], got))
      end
    end
  end)

  it("emits the tags, quoting, folding and null of the reference's table", function()
    local m = yt.map():put("Top", yt.map()
      :put("Mode", yt.scalar("str", "Off"))
      :put("Counts", yt.scalar("int", "5 counts"))
      :put("Nan", yt.scalar("float", "nan"))
      :put("Dict", yt.scalar("str", "{'a': 1}"))
      :put("N", yt.scalar("null", "null"))
      :put("Dev", yt.map():put("Tbl", yt.scalar("str",
        "[" .. string.rep("0x0000, ", 10) .. "0x0000]"))))
    assert.are.equal("Top:\n  Mode: 'Off'\n  Counts: !!int '5 counts'\n  Nan: !!float 'nan'\n"
      .. "  Dict: '{''a'': 1}'\n  N: null\n  Dev:\n"
      .. "    Tbl: '[0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,\n"
      .. "      0x0000, 0x0000]'\n", yt.emit(m))
  end)

  it("loads every fixture as PyYAML's Loader does (YAML 1.1 typing, key order)", function()
    local cases = dofile(FIX .. "load_cases.lua")
    for i, c in ipairs(cases) do
      local ok, got = pcall(yt.load, c[1], "case.yml")
      if c[2][1] == "error" then
        if ok then error(("case %d should fail: %q"):format(i, c[1])) end
        assert.is_truthy(got:match("^case%.yml:%d+: "), got)
      elseif not ok or not same(c[2], got) then
        error(("case %d: %q -> %s"):format(i, c[1], tostring(got)))
      end
    end
  end)

  it("resolves plain scalars with YAML 1.1's rules", function()
    local t = {Off = "bool", yes = "bool", ["010"] = "int", ["1:30"] = "int", ["0x1F"] = "int",
               ["1_000"] = "int", ["1.0"] = "float", ["1e5"] = "str", ["1.0e5"] = "str",
               [".inf"] = "float", ["~"] = "null", [""] = "null", ["2024-01-01"] = "timestamp",
               hi = "str", ["v6.15.0"] = "str", ["0o17"] = "str", ["<<"] = "merge"}
    for text, tag in pairs(t) do
      assert.are.equal(tag, yt.resolve(text), text)
    end
    local doc = yt.load("a: Off\nb: 010\nc: 1:30\n")
    assert.are.same({"a", "b", "c"}, doc.keys)
    assert.are.equal(false, doc:get("a"))
    assert.are.equal(8, doc:get("b"))
    assert.are.equal(90, doc:get("c"))
  end)

  it("names the file and line of a malformed document", function()
    local ok, err = pcall(yt.load, "Top:\n  a: 1\n  b: [1, 2\n", "cfg.yml")
    assert.is_false(ok)
    assert.is_truthy(err:match("^cfg%.yml:4: "), err)
    ok, err = pcall(yt.load, "Top:\n  a: !!int 'ff'\n", "cfg.yml")
    assert.is_false(ok)
    assert.are.equal("cfg.yml:2: invalid !!int value 'ff'", err)
    ok, err = pcall(yt.load, "a: 1\n", nil)
    assert.is_true(ok)
    ok, err = pcall(yt.load, "a: [\n")
    assert.is_truthy(err:match("^<string>:%d+: "), err)
    assert.has_error(function() yt.load(5) end)
  end)

  it("keeps the line of each key and the file of each mapping", function()
    local doc = yt.load("Top:\n  A: 1\n\n  B:\n    C: 2\n", "x.yml")
    local top = doc:get("Top")
    assert.are.equal(1, doc.lines.Top)
    assert.are.equal(2, top.lines.A)
    assert.are.equal(4, top.lines.B)
    assert.are.equal(5, top:get("B").lines.C)
    assert.are.equal("x.yml", top.file)
  end)

  it("replaces !include nodes by the included file, relative to the including one", function()
    local d = temp_dir()
    assert(os.execute("mkdir -p '" .. d .. "/sub'"))
    spit(d .. "/main.yml", "Top:\n  Dev: !include sub/dev.yml\n  X: 1\n")
    spit(d .. "/sub/dev.yml", "A: 5\nB: !include more.yml\n")
    spit(d .. "/sub/more.yml", "C: Off\n")
    spit(d .. "/abs.yml", "Top: !include " .. d .. "/sub/more.yml\n")
    spit(d .. "/self.yml", "a: !include self.yml\n")
    spit(d .. "/missing.yml", "a: 1\nb: !include nothere.yml\n")
    local doc = yt.loadFile(d .. "/main.yml")
    local dev = doc:get("Top"):get("Dev")
    assert.are.equal(5, dev:get("A"))
    assert.are.equal(false, dev:get("B"):get("C"))
    assert.are.equal(d .. "/sub/dev.yml", dev.file)
    assert.are.equal(false, yt.loadFile(d .. "/abs.yml"):get("Top"):get("C"))
    local ok, err = pcall(yt.loadFile, d .. "/self.yml")
    assert.is_false(ok)
    assert.is_truthy(err:find("nested more than 16 deep", 1, true), err)
    ok, err = pcall(yt.loadFile, d .. "/missing.yml")
    assert.is_false(ok)
    assert.is_truthy(err:find(d .. "/missing.yml:2: !include nothere.yml", 1, true), err)
    remove_dir(d)
  end)

  it("reads back what it writes", function()
    local m = yt.map():put("Top", yt.map()
      :put("S", yt.scalar("str", "it's 'x' \"y\" # z: w"))
      :put("L", yt.scalar("str", string.rep("word ", 40)))
      :put("U", yt.scalar("str", "caf\u{e9}\tx\n"))
      :put("Y", yt.scalar("str", "yes")))
    local doc = yt.load(yt.emit(m)):get("Top")
    assert.are.equal("it's 'x' \"y\" # z: w", doc:get("S"))
    assert.are.equal(string.rep("word ", 40), doc:get("L"))
    assert.are.equal("caf\u{e9}\tx\n", doc:get("U"))
    assert.are.equal("yes", doc:get("Y"))
  end)

  it("answers hostile input with a value or an error naming the input", function()
    local seeds = {"Top:\n  Adc[*]:\n    ScratchPad: 0x1234\n    Coef: '[1, -2]'\n",
                   "a: &x [1, {b: *x}]\nc: !include\n", "- [a, {b: c}]\n? k\n: v\n",
                   "a: \"\\u00e9\\x41\"\nb: |\n  x\n"}
    local bytes = "\0\t\n\r :-?[]{},#&*!|>'\"%@`\\~0123456789abcxyz\128\195\169"
    math.randomseed(14)
    for n = 1, 3000 do
      local s = seeds[(n % #seeds) + 1]
      for _ = 1, math.random(1, 6) do
        local i = math.random(1, #s + 1)
        local c = math.random(1, #bytes)
        local op = math.random(3)
        if op == 1 then s = s:sub(1, i - 1) .. bytes:sub(c, c) .. s:sub(i)
        elseif op == 2 then s = s:sub(1, i - 1) .. s:sub(i + 1)
        else s = s:sub(1, i - 1) .. s:sub(i, i + math.random(0, 8)) .. s:sub(i) end
      end
      local ok, err = pcall(yt.load, s, "f.yml")
      if not ok then
        assert.are.equal("string", type(err))
        if not err:match("^f%.yml:[%d?]+: ") and not err:find("!include", 1, true)
           and not err:find("No such file", 1, true) then
          error(("input %q: %s"):format(s, err))
        end
      end
    end
  end)
end)
