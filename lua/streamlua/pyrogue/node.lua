-- streamlua.pyrogue.node: the class mechanism and the Node base of the
-- register tree (Root, Device, variables and commands are Nodes).
--
-- Classes. `class(name, super)` makes a class table C: `C{...}` builds an
-- instance (setmetatable({}, C), then `obj:_init(args)`); each _init calls
-- its super's `_init` first. An instance's metatable is its class, whose
-- __index chain is C -> super -> ... -> Node, so a field is looked up as:
-- the object's raw fields (children, properties, per-instance hook
-- overrides such as `function dev.initialize(self) ... end`), then the
-- class's methods. Metamethods (__call, __tostring, ...) are copied from
-- the super when the class is made.
--
-- Children are raw fields of their parent: `dev.Var`. A child named
-- `Base[i]` (or `Base[i][j]`) is also reached as `dev.Base[i]` (`dev.Base`
-- is a table keyed by the integer index, nested per key). Adding a child
-- whose name is a field, a method, another child or an array base is
-- `Name collision`.
--
-- Node fields: name, path, description, groups (an array, copied), hidden,
-- expand, guiGroup; _nodes (children in add order), _parent, _root.
local M = {}

local Node = {}

-- require(name) when the module exists (preloaded or on package.path), else
-- nil: the tree works with the files present; an error inside one raises.
function M.optional(name)
  if package.loaded[name] ~= nil then return package.loaded[name] end
  if package.preload[name] or package.searchpath(name, package.path) then
    return require(name)
  end
  return nil
end

local function copyMeta(C, super)
  for k, v in pairs(super) do
    if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__index" and C[k] == nil then
      C[k] = v
    end
  end
end

local function construct(cls, args)
  if args == nil then args = {} end
  if type(args) ~= "table" then
    error(("pr.%s: expected a table of arguments, got %s"):format(cls._className, type(args)), 2)
  end
  local o = setmetatable({}, cls)
  o:_init(args)
  return o
end

-- A new class table; instances are made by calling it with one table.
function M.class(name, super)
  local C = {_className = name, _super = super}
  C.__index = C
  if super then copyMeta(C, super) end
  setmetatable(C, {__index = super, __call = construct,
                   __tostring = function() return "pr." .. name end})
  return C
end

-- Node is a class too (made by hand: it has no super).
Node._className = "Node"
Node.__index = Node
setmetatable(Node, {__call = construct, __tostring = function() return "pr.Node" end})

local function toGroups(g)
  if g == nil then return {} end
  if type(g) == "string" then return {g} end
  local t = {}
  for i = 1, #g do t[i] = g[i] end
  return t
end
M.toGroups = toGroups

function Node:_init(args)
  local name = args.name
  if name == nil then
    error(("pr.%s: argument 'name' is required"):format(self._className), 4)
  end
  if type(name) ~= "string" then
    error(("pr.%s: argument 'name' must be a string"):format(self._className), 4)
  end
  self.name = name
  self.path = name
  self.description = args.description or ""
  self.groups = toGroups(args.groups)
  self.expand = args.expand == nil and true or args.expand
  self.guiGroup = args.guiGroup
  if args.hidden then self:addToGroup("Hidden") end
  self.hidden = args.hidden and true or false
  self._nodes = {}
end

-- isinstance(obj, cls): is cls in obj's class chain?
function M.isinstance(obj, cls)
  if type(obj) ~= "table" then return false end
  local c = getmetatable(obj)
  while c do
    if c == cls then return true end
    c = rawget(c, "_super")
  end
  return false
end

function Node:isinstance(cls) return M.isinstance(self, cls) end

-- Class(path); a class's `_show` method, when it has one, gives the text
-- instead (show.lua: devices and variables of a started tree).
function Node:__tostring()
  local show = self._show
  if show then return show(self) end
  return ("%s(%s)"):format(self._className, self.path)
end

-- Groups ------------------------------------------------------------------

function Node:inGroup(group)
  local gs = self.groups
  if type(group) == "string" then
    for i = 1, #gs do if gs[i] == group then return true end end
    return false
  end
  for _, g in ipairs(group) do
    if self:inGroup(g) then return true end
  end
  return false
end

-- incGroups/excGroups: nil, a string or an array of strings.
function Node:filterByGroup(incGroups, excGroups)
  local function empty(g) return g == nil or (type(g) == "table" and #g == 0) end
  return (empty(incGroups) or self:inGroup(incGroups))
     and (empty(excGroups) or not self:inGroup(excGroups))
end

function Node:addToGroup(group)
  if not self:inGroup(group) then self.groups[#self.groups + 1] = group end
  if group == "Hidden" then self.hidden = true end
  for _, n in ipairs(self._nodes or {}) do n:addToGroup(group) end
end

function Node:removeFromGroup(group)
  local gs = self.groups
  for i = #gs, 1, -1 do
    if gs[i] == group then table.remove(gs, i) end
  end
  if group == "Hidden" then self.hidden = false end
end

-- Children ----------------------------------------------------------------

-- Splits `Base[1][2]` into "Base", {"1", "2"}; nil when no brackets.
local function splitArrayName(name)
  local base, rest = name:match("^([^%[%]]+)(%[.*%])$")
  if not base then return nil end
  local keys = {}
  for k in rest:gmatch("%[([^%[%]]*)%]") do keys[#keys + 1] = k end
  if table.concat(keys, "][") ~= rest:sub(2, -2) then return nil end
  return base, keys
end
M.splitArrayName = splitArrayName

local function log(name, level, msg)
  local sl = require "streamlua"
  sl.logging.log(name, level, msg)
end

local function collision(self, node)
  error(("Error adding node with name %s to %s. Name collision."):format(node.name, self.name), 0)
end

-- Registers node in the array index of self when its name is Base[i]...
local function addArray(self, node)
  local base, keys = splitArrayName(node.name)
  if not base then return end
  local ints = {}
  for i, k in ipairs(keys) do
    if not k:match("^%d+$") then
      log("pyrogue.Node", "Warning",
          ("Array node %s with non numeric key will cause lookup errors."):format(node.name))
      return
    end
    ints[i] = math.tointeger(tonumber(k))
  end
  local arrays = rawget(self, "_arrays")
  if not arrays then arrays = {}; rawset(self, "_arrays", arrays) end
  local t = arrays[base]
  if not t then
    if rawget(self, base) ~= nil or self[base] ~= nil then collision(self, node) end
    t = {}
    arrays[base] = t
    rawset(self, base, t)
  end
  for i = 1, #ints - 1 do
    local sub = t[ints[i]]
    if sub == nil then sub = {}; t[ints[i]] = sub end
    if getmetatable(sub) ~= nil then collision(self, node) end
    t = sub
  end
  if t[ints[#ints]] ~= nil then collision(self, node) end
  t[ints[#ints]] = node
end

-- Appends a child (no checks of the tree state: Device:add does those).
function Node:_addChild(node)
  local name = node.name
  if rawget(self, name) ~= nil or self[name] ~= nil then collision(self, node) end
  if not name:match("^[%w_%[%]]+$") then
    log("pyrogue.Node", "Warning",
        ("Node %s with one or more special characters will cause lookup errors."):format(name))
  end
  addArray(self, node)
  rawset(self, name, node)
  self._nodes[#self._nodes + 1] = node
  node._parent = self
end

-- The child called name, or nil.
function Node:node(name)
  local n = rawget(self, name)
  if M.isinstance(n, Node) and n._parent == self then return n end
  return nil
end

function Node:parent() return self._parent end
function Node:root() return self._root end

local function collect(self, pred, out, recurse)
  for _, n in ipairs(self._nodes) do
    if pred(n) then out[#out + 1] = n end
    if recurse then collect(n, pred, out, true) end
  end
  return out
end

local function always() return true end
local function isVar(n) return n._isVariable and not n._isCommand end
local function isVarOrCmd(n) return n._isVariable end
local function isCmd(n) return n._isCommand end
local function isDev(n) return n._isDevice end

-- Children in add order (arrays), and recursive lists (depth first).
function Node:nodes() return collect(self, always, {}) end
function Node:variables() return collect(self, isVar, {}) end
function Node:commands() return collect(self, isCmd, {}) end
function Node:devices() return collect(self, isDev, {}) end
function Node:nodeList() return collect(self, always, {}, true) end
function Node:variableList() return collect(self, isVarOrCmd, {}, true) end
function Node:deviceList() return collect(self, isDev, {}, true) end

-- Attaches the subtree at start: parent, root, path, inherited groups.
function Node:_rootAttached(parent, root)
  self._parent = parent
  self._root = root
  if parent ~= self then
    self.path = parent.path .. "." .. self.name
    for _, g in ipairs(parent.groups) do
      if not self:inGroup(g) then self.groups[#self.groups + 1] = g end
    end
    if self:inGroup("Hidden") then self.hidden = true end
  end
  for _, n in ipairs(self._nodes) do n:_rootAttached(self, root) end
end

-- nodeMatch ---------------------------------------------------------------

-- Elements of a Python slice "a:b:c" over 0..n-1.
local function sliceIndices(s, n)
  local parts = {}
  for p in (s .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = p end
  if #parts < 2 or #parts > 3 then return nil end
  local function num(p)
    if p == "" then return nil end
    local v = p:match("^%s*([-+]?%d+)%s*$")
    if not v then error(("invalid slice %s"):format(s), 0) end
    return math.tointeger(tonumber(v))
  end
  local a, b, c = num(parts[1]), num(parts[2]), num(parts[3] or "")
  c = c or 1
  if c == 0 then error("slice step cannot be zero", 0) end
  local function clamp(v, lo, hi)
    if v < 0 then v = v + n end
    if v < lo then return lo end
    if v > hi then return hi end
    return v
  end
  local out = {}
  if c > 0 then
    a = a and clamp(a, 0, n) or 0
    b = b and clamp(b, 0, n) or n
    for i = a, b - 1, c do out[#out + 1] = i end
  else
    a = a and clamp(a, -1, n - 1) or n - 1
    b = b and clamp(b, -1, n - 1) or -1
    for i = a, b + 1, c do out[#out + 1] = i end
  end
  return out
end
M.sliceIndices = sliceIndices

local function selectLevel(t, key, out)
  if key == "*" or key == ":" then
    local idx = {}
    for k in pairs(t) do idx[#idx + 1] = k end
    table.sort(idx)
    for _, k in ipairs(idx) do out[#out + 1] = t[k] end
  elseif key:match("^%d+$") then
    local v = t[math.tointeger(tonumber(key))]
    if v ~= nil then out[#out + 1] = v end
  else
    if not key:find(":", 1, true) then
      error(("'%s' object is not iterable"):format(key), 0)
    end
    local max = -1
    for k in pairs(t) do if k > max then max = k end end
    for _, i in ipairs(sliceIndices(key, max + 1)) do
      if t[i] ~= nil then out[#out + 1] = t[i] end
    end
  end
end

-- nodeMatch(key) -> array of nodes, plus the keys (an array of strings)
-- when key is Base[...] over a plain child (they index into a list variable).
function Node:nodeMatch(key)
  local exact = self:node(key)
  if exact then return {exact} end
  local base, keys = key:match("^([^%[%]]+)(%[.*%])$")
  if not base then return {} end
  local ks = {}
  for k in keys:gmatch("%[([^%[%]]*)%]") do ks[#ks + 1] = k end
  local plain = self:node(base)
  if plain then return {plain}, ks end
  local arrays = rawget(self, "_arrays")
  local t = arrays and arrays[base]
  if not t then return {} end
  local level = {t}
  for _, k in ipairs(ks) do
    local nextLevel = {}
    for _, sub in ipairs(level) do
      if type(sub) == "table" and not M.isinstance(sub, Node) then
        selectLevel(sub, k, nextLevel)
      end
    end
    level = nextLevel
  end
  local out = {}
  for _, n in ipairs(level) do
    if M.isinstance(n, Node) then out[#out + 1] = n end
  end
  return out
end

-- Sorts list by (item[k1], item[k2]), keeping the order of equal items.
function M.stableSort(list, k1, k2)
  local pos = {}
  for i, x in ipairs(list) do pos[x] = i end
  table.sort(list, function(a, b)
    if a[k1] ~= b[k1] then return a[k1] < b[k1] end
    if a[k2] ~= b[k2] then return a[k2] < b[k2] end
    return pos[a] < pos[b]
  end)
end

M.Node = Node
return M
