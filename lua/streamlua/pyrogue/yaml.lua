-- streamlua.pyrogue.yaml: YAML configuration of the register tree (§6 of
-- the reference): export (getYaml, saveYaml) and import (loadYaml,
-- setYaml), on every node. The text itself is
-- streamlua.pyrogue.yamltext's (PyYAML's output byte for byte; YAML 1.1
-- input through lua-yaml).
--
--   node:getYaml{readFirst=false, modes={'RW','RO','WO'}, incGroups=, excGroups=,
--                recurse=true}                                  -> text
--   dev:saveYaml{name=, readFirst=true, modes=, incGroups=, excGroups=,
--                autoPrefix='', autoCompress=false}             -> the file name
--   dev:loadYaml{name=, writeEach=false, modes={'RW','WO'}, incGroups=, excGroups=,
--                strict=true}
--   dev:setYaml{yml=, writeEach=false, modes={'RW','WO'}, incGroups=, excGroups=,
--                strict=true}
-- Each also takes pyrogue's positional order: getYaml(readFirst, modes,
-- incGroups, excGroups, recurse), saveYaml(name, readFirst, modes, ...),
-- loadYaml(name, writeEach, modes, incGroups, excGroups), setYaml(yml, ...),
-- with an optional trailing table of the same names.
--
-- Import applies pyrogue's rules (key resolution §6.3, values §6.4, staged
-- commit in tree order or writeEach sets in document order, the logged
-- messages of §6.2), with one difference: with strict (the default) every
-- file is parsed and every key resolved before anything is staged, and a
-- key that names nothing (pyrogue logs `Entry Bogus not found` and goes on)
-- is logged the same way and then raised as `<file>:<line>: Entry <key> not
-- found`, with nothing staged or written. Keys skipped by mode (logged
-- warning) or by group (silent) and commands are not errors; strict=false
-- gives pyrogue's log-and-go-on. An error while staging a value (a bad
-- value, out of range) raises `<file>:<line>: <key>: <error>` before the
-- commit; values staged before it stay stale (pyrogue's behaviour).
-- Zip archives (SaveState's default, `.zip` inputs) are not supported: a
-- `.zip` name raises, and autoCompress is ignored (SaveState with no name
-- writes a plain state_YYYYmmdd_HHMMSS.yml). The Root's YAML commands
-- (SaveConfig, LoadConfig, ...) call these methods with pyrogue's arguments.
local yt = require "streamlua.pyrogue.yamltext"
local node = require "streamlua.pyrogue.node"

local M = {}

local CONFIG_MODES = {"RW", "WO"}
local ALL_MODES = {"RW", "RO", "WO"}

-- pyrogue's loggers: the node's logName, else pyrogue.<kind>.<path>.
local function log(n, level, msg)
  local kind = n._isDevice and "Device" or (n._isVariable and "Variable" or "Node")
  local name = n.logName or ("pyrogue.%s.%s"):format(kind, n.path or n.name)
  require("streamlua").logging.log(name, level, msg)
end

local function inModes(mode, modes)
  for _, m in ipairs(modes) do
    if m == mode then return true end
  end
  return false
end

-- Python's repr of a list of strings: ['RW', 'WO'].
local function pyList(t)
  local out = {}
  for i, s in ipairs(t) do out[i] = "'" .. tostring(s) .. "'" end
  return "[" .. table.concat(out, ", ") .. "]"
end

---------------------------------------------------------------------------
-- Arguments: pyrogue's positional order, or one table of names, or both.

local function isKw(t)
  if type(t) ~= "table" or node.isinstance(t, node.Node) then return false end
  return next(t) == nil or #t == 0
end

local function args(fname, names, ...)
  local n = select("#", ...)
  local a = {}
  local last = n > 0 and select(n, ...) or nil
  if n > 0 and isKw(last) then
    for k, v in pairs(last) do a[k] = v end
    n = n - 1
  end
  for i = 1, n do
    local v = select(i, ...)
    if names[i] == nil then
      error(("%s: too many arguments"):format(fname), 3)
    end
    if v ~= nil then a[names[i]] = v end
  end
  for k in pairs(a) do
    local known = false
    for _, nm in ipairs(names) do known = known or nm == k end
    if not known then error(("%s: unknown argument '%s'"):format(fname, tostring(k)), 3) end
  end
  return a
end

local function groupsArg(g) return g end

local function modesArg(fname, m, default)
  if m == nil then return default end
  if type(m) == "string" then return {m} end
  if type(m) ~= "table" then
    error(("%s: argument 'modes' must be a list of 'RW', 'RO', 'WO'"):format(fname), 3)
  end
  return m
end

---------------------------------------------------------------------------
-- Export

-- A Python int beyond 64 bits, as the models hold it ("0x..." text).
local function isBig(v)
  return type(v) == "string" and v:match("^%-?0x%x+$") ~= nil
end

-- The tagged display string of one variable (pyrogue's variable representer).
local function varScalar(var)
  local v = var:value()
  local disp = var:genDisp(v)
  if disp == nil then return yt.scalar("null", "null") end
  local tag
  if type(v) == "boolean" then tag = "bool"
  elseif var.enum ~= nil then tag = "str"
  elseif math.type(v) == "integer" or (var.nativeType ~= "str" and isBig(v)) then tag = "int"
  elseif math.type(v) == "float" then tag = "float"
  else tag = "str" end
  return yt.scalar(tag, tostring(disp))
end

local function isCommand(n) return n._isCommand end

-- A device's mapping: its variables in add order, then its devices; nil
-- when empty.
local function deviceDict(dev, o)
  local m = yt.map()
  for _, n in ipairs(dev._nodes) do
    if n._isVariable and not isCommand(n) and inModes(n.mode, o.modes)
       and n:filterByGroup(o.incGroups, o.excGroups) then
      m:put(n.name, varScalar(n))
    end
  end
  if o.recurse then
    for _, n in ipairs(dev._nodes) do
      if n._isDevice and n:filterByGroup(o.incGroups, o.excGroups) then
        local sub = deviceDict(n, o)
        if sub then m:put(n.name, sub) end
      end
    end
  end
  if m:len() == 0 then return nil end
  return m
end

local function readAll(root)
  if root._readAll then return root:_readAll() end
end

local GET_NAMES = {"readFirst", "modes", "incGroups", "excGroups", "recurse"}

-- getYaml(readFirst=false, modes=all, incGroups, excGroups, recurse=true).
function M.getYaml(self, ...)
  local a = args("getYaml", GET_NAMES, ...)
  local o = {modes = modesArg("getYaml", a.modes, ALL_MODES),
             incGroups = groupsArg(a.incGroups), excGroups = groupsArg(a.excGroups),
             recurse = a.recurse ~= false}
  if a.readFirst then readAll(self._root or self) end
  local top = yt.map()
  if self._isDevice then
    top:put(self.name, deviceDict(self, o) or yt.scalar("null", "null"))
  elseif self._isVariable and not isCommand(self) and inModes(self.mode, o.modes) then
    top:put(self.name, varScalar(self))
  else
    top:put(self.name, yt.scalar("null", "null"))
  end
  return yt.emit(top)
end

local SAVE_NAMES = {"name", "readFirst", "modes", "incGroups", "excGroups", "autoPrefix",
                    "autoCompress"}

-- saveYaml(name, readFirst=true, modes=all, incGroups, excGroups,
-- autoPrefix='', autoCompress=false): writes getYaml's text; returns the name.
function M.saveYaml(self, ...)
  local a = args("saveYaml", SAVE_NAMES, ...)
  local name = a.name
  if name == nil or name == "" then
    name = (a.autoPrefix or "") .. os.date("_%Y%m%d_%H%M%S.yml")
  end
  if type(name) ~= "string" then
    error("saveYaml: argument 'name' must be a string", 2)
  end
  if name:match("%.zip$") then
    error(("saveYaml: %s: zip archives are not supported"):format(name), 0)
  end
  local text = M.getYaml(self, {readFirst = a.readFirst ~= false,
                                modes = modesArg("saveYaml", a.modes, ALL_MODES),
                                incGroups = a.incGroups, excGroups = a.excGroups})
  local f, err = io.open(name, "wb")
  if not f then error(("saveYaml: %s"):format(err), 0) end
  f:write(text)
  f:close()
  return name
end

---------------------------------------------------------------------------
-- Import: resolution (a plan of assignments), staging, commit.

-- A plan entry: {var=, value=, keys=, file=, line=, key=}.
local function where(ctx)
  return ("%s:%s"):format(ctx.file or "<string>", ctx.line or "?")
end

local function problem(o, n, ctx, msg)
  log(n, "Error", msg)
  if o.strict then
    error(("%s: %s"):format(where(ctx), msg), 0)
  end
end

local function isList(var)
  if (var.numValues or 0) > 0 then return true end
  local nt = var.nativeType
  return nt == "list" or nt == "ndarray"
end

-- Indices selected by a Python index or slice text over 0..n-1.
local function indexSelection(key, n)
  if key:find(":", 1, true) then
    return node.sliceIndices(key, n), true
  end
  local i = math.tointeger(tonumber(key))
  if i == nil then error(("invalid index %s"):format(key), 0) end
  if i < 0 then i = i + n end
  if i < 0 or i >= n then error("list index out of range", 0) end
  return {i}, false
end

local function numValues(var)
  if (var.numValues or 0) > 0 then return var.numValues end
  local v = var:value()
  return type(v) == "table" and #v or 0
end

local resolveNode

local function resolveVar(o, var, value, keys, ctx, plan)
  if isCommand(var) then return end
  if keys ~= nil and (#keys ~= 1 or not isList(var)) then
    problem(o, var, ctx, ("Entry %s with key %s not found"):format(var.name, pyList(keys)))
    return
  end
  if not inModes(var.mode, o.modes) then
    log(var, "Warning", ("Skipping set for Entry %s with mode %s. Enabled Modes=%s.")
        :format(var.name, var.mode, pyList(o.modes)))
    return
  end
  if keys ~= nil and keys[1] ~= "*" and keys[1] ~= ":" then
    -- a bad index stops the load (pyrogue's IndexError), here before staging
    local ok, err = pcall(indexSelection, keys[1], numValues(var))
    if not ok then error(("%s: %s: %s"):format(where(ctx), ctx.key, err), 0) end
  end
  plan[#plan + 1] = {var = var, value = value, keys = keys, file = ctx.file, line = ctx.line,
                     key = ctx.key}
end

local function resolveDevice(o, dev, value, keys, ctx, plan)
  if keys ~= nil then
    problem(o, dev, ctx, ("Entry %s with key %s not found"):format(dev.name, pyList(keys)))
    return
  end
  if not yt.isMap(value) then
    -- pyrogue iterates the value's items; anything else fails there.
    error(("%s: %s: a device needs a mapping, got %s"):format(where(ctx), ctx.key,
          value == yt.NULL and "null" or type(value)), 0)
  end
  for k, v in value:pairs() do
    local key = tostring(k)
    local sub = {file = value.file or ctx.file, line = value.lines[k], key = key}
    local ok, nodes, subKeys = pcall(dev.nodeMatch, dev, key)
    if not ok then error(("%s: %s: %s"):format(where(sub), key, nodes), 0) end
    if #nodes == 0 then
      problem(o, dev, sub, ("Entry %s not found"):format(key))
    else
      for _, n in ipairs(nodes) do
        if n:filterByGroup(o.incGroups, o.excGroups) then
          resolveNode(o, n, v, subKeys, sub, plan)
        end
      end
    end
  end
end

resolveNode = function(o, n, value, keys, ctx, plan)
  if n._isDevice then
    resolveDevice(o, n, value, keys, ctx, plan)
  elseif n._isVariable then
    resolveVar(o, n, value, keys, ctx, plan)
  end
end

-- The top-level keys of one document, applied to `self`.
local function resolveTop(o, self, doc, file, plan)
  if doc == nil or doc == yt.NULL then return end
  if not yt.isMap(doc) then
    error(("%s:1: the document must be a mapping"):format(file or "<string>"), 0)
  end
  local isRoot = self._root == self or self._isRoot
  for k, v in doc:pairs() do
    local key = tostring(k)
    local ctx = {file = doc.file or file, line = doc.lines[k], key = key}
    if isRoot and self.getNode then
      local n = self:getNode(key)
      if n == nil then
        problem(o, self, ctx, ("Entry %s not found"):format(key))
      else
        resolveNode(o, n, v, nil, ctx, plan)
      end
    elseif key == self.name then
      resolveNode(o, self, v, nil, ctx, plan)
    else
      local one = yt.map(doc.file or file)
      one:put(k, v, doc.lines[k])
      resolveDevice(o, self, one, nil, ctx, plan)
    end
  end
end

-- Elements of a slice's value: a list, or a '[a, b]' / 'a, b' string.
local function sliceValues(d)
  if type(d) == "table" and not yt.isMap(d) then return d end
  if type(d) ~= "string" then return nil end
  local s = d:gsub("^%s*%[", ""):gsub("%]%s*$", "")
  local out = {}
  for piece in (s .. ","):gmatch("([^,]*),") do
    piece = piece:match("^%s*(.-)%s*$"):gsub("^(['\"])(.*)%1$", "%2")
    out[#out + 1] = piece
  end
  return out
end

local function plainValue(v)
  if v == yt.NULL then return nil end
  return v
end

-- One assignment of the plan (§6.4).
local function stage(entry, write)
  local var, d = entry.var, entry.value
  local opts = {write = write}
  if entry.keys then
    local key = entry.keys[1]
    local n = numValues(var)
    if key == "*" or key == ":" then
      for i = 0, n - 1 do var:setDisp(plainValue(d), {write = write, index = i}) end
      return
    end
    local idx, isSlice = indexSelection(key, n)
    if not isSlice then
      var:setDisp(plainValue(d), {write = write, index = idx[1]})
      return
    end
    local vals = sliceValues(d)
    for j, i in ipairs(idx) do
      local v
      if vals == nil then v = d else v = vals[j] end
      if v == nil then break end
      var:setDisp(plainValue(v), {write = write, index = i})
    end
    return
  end
  if yt.isMap(d) then
    for k, v in d:pairs() do
      var:setDisp(plainValue(v), {write = write, index = k})
    end
    return
  end
  var:setDisp(plainValue(d), opts)
end

local function forceWrite(root)
  local fw = root and root:node("ForceWrite")
  if fw then return fw:value() == true end
  return false
end

local function initAfterConfig(root)
  local v = root and root:node("InitAfterConfig")
  return v ~= nil and v:value() == true
end

-- The commit of a staged load: WriteAll semantics over the subtree.
local function commit(self)
  local root = self._root or self
  local force = forceWrite(root)
  if self.writeBlocks then
    self:writeBlocks{force = force, recurse = true}
    self:verifyBlocks{recurse = true}
    self:waitBlocks{recurse = true}
  end
  if self == root and initAfterConfig(root) then root:initialize() end
end

-- Runs f with polling paused and updates grouped, when the tree offers it
-- (pollBlock returns its end function, updateGroup a token with close()).
local function quiet(self, f)
  local root = self._root or self
  local endPoll = root.pollBlock and root:pollBlock()
  local group = root.updateGroup and root:updateGroup()
  local ok, err = pcall(f)
  if type(group) == "table" and group.close then group:close() end
  if type(endPoll) == "function" then endPoll() end
  if not ok then error(err, 0) end
end

-- Resolves the documents, stages every assignment, commits.
local function apply(self, docs, o)
  local plan = {}
  for _, d in ipairs(docs) do resolveTop(o, self, d.doc, d.file, plan) end
  quiet(self, function()
    for _, entry in ipairs(plan) do
      local ok, err = pcall(stage, entry, o.writeEach)
      if not ok then
        log(entry.var, "Error", tostring(err))
        error(("%s: %s: %s"):format(where(entry), entry.key or entry.var.name, tostring(err)), 0)
      end
    end
    if not o.writeEach then commit(self) end
  end)
end

local function importOpts(fname, a)
  return {writeEach = a.writeEach == true,
          modes = modesArg(fname, a.modes, CONFIG_MODES),
          incGroups = a.incGroups, excGroups = a.excGroups,
          strict = a.strict ~= false}
end

-- The .yml and .yaml files directly in dir, sorted by path; nil when dir is
-- not a directory.
local function listDir(dir)
  local probe = io.open(dir .. "/.", "r")
  if not probe then return nil end
  probe:close()
  local found = {}
  local p = io.popen("ls -1A -- '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  if p then
    for entry in p:lines() do
      local path = dir:gsub("/+$", "") .. "/" .. entry
      if entry:match("%.ya?ml$") then
        local f = io.open(path .. "/.", "r")
        if f then f:close() else found[#found + 1] = path end
      end
    end
    p:close()
  end
  table.sort(found)
  return found
end

-- The files named by a loadYaml argument (§6.2): a list or a comma-separated
-- string of .yml/.yaml files and directories.
local function listFiles(name)
  local entries = {}
  if type(name) == "table" then
    for _, e in ipairs(name) do entries[#entries + 1] = e end
  elseif type(name) == "string" then
    for e in (name .. ","):gmatch("([^,]*),") do
      if e ~= "" then entries[#entries + 1] = e end
    end
  else
    error("loadYaml: argument 'name' must be a file name or a list of them", 3)
  end
  local files = {}
  for _, e in ipairs(entries) do
    if e:find(".zip", 1, true) then
      error(("loadYaml: %s: zip archives are not supported"):format(e), 0)
    elseif e:match("%.ya?ml$") then
      files[#files + 1] = e
    else
      local found = listDir(e)
      if not found then
        error(("loadYaml: Invalid load file: %s, must be a directory or end in .yml or .yaml")
              :format(e), 0)
      end
      for _, f in ipairs(found) do files[#files + 1] = f end
    end
  end
  return files
end

local LOAD_NAMES = {"name", "writeEach", "modes", "incGroups", "excGroups", "strict"}

function M.loadYaml(self, ...)
  local a = args("loadYaml", LOAD_NAMES, ...)
  local o = importOpts("loadYaml", a)
  local docs = {}
  for _, f in ipairs(listFiles(a.name)) do
    docs[#docs + 1] = {doc = yt.loadFile(f), file = f}
  end
  apply(self, docs, o)
end

local SET_NAMES = {"yml", "writeEach", "modes", "incGroups", "excGroups", "strict"}

function M.setYaml(self, ...)
  local a = args("setYaml", SET_NAMES, ...)
  if type(a.yml) ~= "string" then
    error("setYaml: argument 'yml' must be a string of YAML text", 2)
  end
  local o = importOpts("setYaml", a)
  apply(self, {{doc = yt.load(a.yml, nil), file = nil}}, o)
end

---------------------------------------------------------------------------
-- Methods of the tree's nodes.

node.Node.getYaml = M.getYaml
local device = node.optional("streamlua.pyrogue.device")
local target = device and device.Device or node.Node
target.saveYaml = M.saveYaml
target.loadYaml = M.loadYaml
target.setYaml = M.setYaml

M._export = {}
return M
