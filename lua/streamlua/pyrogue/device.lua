-- streamlua.pyrogue.device: Device, a Node holding variables, commands and
-- devices, and a memory Hub (sl.memory.Hub(offset [, hubMin, hubMax])):
-- its blocks' transactions pass through it, get its offset added, and go on
-- to memBase, or to the parent device's hub when there is no memBase.
--
-- pr.Device{name=<class name>, description='', memBase=, offset=0,
-- hidden=false, groups=, expand=false, enabled=true, defaults=,
-- enableDeps=, hubMin=0, hubMax=0, guiGroup=}
--
-- Fields: offset, memBase, hubMin, hubMax, forceWaitEach (false), _hub,
-- _blocks (built at start, block.lua), _ifaces (addInterface), _defaults,
-- _enableDeps, _blocksEn (whether its blocks are enabled now: the enable
-- follows its enableDeps as their updates are delivered). Children made
-- here: `enable` (§1.5), and ReadDevice / WriteDevice when the command
-- module is present.
-- Hooks to override per instance or per class: initialize(), hardReset(),
-- countReset(), enableChanged(value), readBlocks/writeBlocks/verifyBlocks/
-- waitBlocks(opts) (bulk operations, §3.7).
local sl = require "streamlua"
local node = require "streamlua.pyrogue.node"
local variable = require "streamlua.pyrogue.variable"
local blockmod = require "streamlua.pyrogue.block"

local M = {}

local Device = node.class("Device", node.Node)
Device._isDevice = true

-- EnableVariable: the `enable` child of every device (no block).
local EnableVariable = node.class("EnableVariable", variable.BaseVariable)
M.EnableVariable = EnableVariable

function EnableVariable:_init(args)
  variable.BaseVariable._init(self, {name = "enable", mode = "RW", groups = {"Enable"},
                                     description = "Determines if device is enabled for hardware access"})
  self.enum = {[false] = "False", [true] = "True", parent = "ParentFalse", deps = "ExtDepFalse"}
  self.revEnum = {False = false, True = true, ParentFalse = "parent", ExtDepFalse = "deps"}
  self.disp = "enum"
  self.typeStr = "bool"
  self._value = args.enabled
  self._dev = args.dev
end

-- A dependency's value; one that has none yet (its device's blocks are not
-- built) counts as false.
local function depValue(v)
  local ok, value = pcall(v.value, v)
  return ok and value
end

-- The effective value (§1.5): false, 'deps', 'parent', or the own value.
function EnableVariable:get()
  if not self._value then return false end
  local dev = self._dev
  for _, v in ipairs(dev._enableDeps) do
    if not depValue(v) then return "deps" end
  end
  local parent = dev._parent
  if parent == nil or parent == dev or parent._parent == parent then return self._value end
  if parent.enable:value() ~= true then return "parent" end
  return true
end

function EnableVariable:value() return self:get() end

function EnableVariable:set(value)
  if type(value) ~= "boolean" or value == self._value then return end
  self._value = value
  local dev = self._dev
  dev:_updateBlockEnable()
  dev:enableChanged(value)
  self:_queueUpdate()
end

function EnableVariable:_finishInit() end

-- At start: each dependency gets the enable as a listener (its update is
-- the enable's too) and a function that, when the dependency's update is
-- delivered and the device's effective enable changed with it, sets the
-- blocks' enable flags here and below and calls enableChanged.
function EnableVariable:_rootAttached(parent, root)
  node.Node._rootAttached(self, parent, root)
  if self._depsHooked then return end
  self._depsHooked = true
  for _, v in ipairs(self._dev._enableDeps) do
    if type(v.addListener) == "function" then
      v:addListener(function() self:_depUpdate() end)
      v:addListener(self)
    end
  end
end

function EnableVariable:_depUpdate()
  local dev = self._dev
  local en = self:value() == true
  if en == dev._blocksEn then return end
  dev:_updateBlockEnable()
  dev:enableChanged(en)
end

local function copyArgs(args)
  local t = {}
  for k, v in pairs(args) do t[k] = v end
  return t
end
M.copyArgs = copyArgs

local function slaveOf(memBase)
  if type(memBase) == "table" and memBase._hub then return memBase._hub end
  return memBase
end

function Device:_init(args)
  if args.name == nil then
    args = copyArgs(args)
    args.name = self._className
  end
  node.Node._init(self, args)
  if args.expand == nil then self.expand = false end
  self.offset = args.offset or 0
  self.memBase = args.memBase
  self.hubMin = args.hubMin or 0
  self.hubMax = args.hubMax or 0
  self.forceWaitEach = false
  if self.hubMin ~= 0 and self.hubMax ~= 0 then
    self._hub = sl.memory.Hub(self.offset, self.hubMin, self.hubMax)
  else
    self._hub = sl.memory.Hub(self.offset)
  end
  if self.memBase ~= nil then self._hub:setSlave(slaveOf(self.memBase)) end
  self._blocks = {}
  self._ifaces = {}
  self._defaults = args.defaults or {}
  self._enableDeps = args.enableDeps or {}
  self:_addChild(EnableVariable{enabled = args.enabled ~= false, dev = self})
  self:_addDeviceCommands()
end

-- ReadDevice / WriteDevice, when the command classes exist.
function Device:_addDeviceCommands()
  local cmd = node.optional("streamlua.pyrogue.command")
  if type(cmd) ~= "table" or not cmd.addDeviceCommands then return end
  cmd.addDeviceCommands(self)
end

local function addError(self, n, what)
  error(("Error adding node with name %s to %s. %s"):format(n.name, self.name, what), 0)
end

-- add(node) or add{node1, node2, ...} (§1.1).
function Device:add(n)
  if type(n) == "table" and not node.isinstance(n, node.Node) then
    for _, x in ipairs(n) do self:add(x) end
    return
  end
  if not node.isinstance(n, node.Node) then
    error(("Device.add: expected a node, got %s"):format(type(n)), 2)
  end
  local root = rawget(self, "_root")
  if root and root.running then addError(self, n, "Tree is already started.") end
  if n._parent ~= nil then addError(self, n, "Node is already attached.") end
  self:_addChild(n)
  if n._isDevice and n.memBase == nil then n._hub:setSlave(self._hub) end
end

-- add() on any other node: pyrogue's NodeError.
function node.Node:add(n)
  error(("Attempting to add node with name %s to non device node %s.")
        :format(tostring(n and n.name), self.name), 0)
end

function Device:addNode(cls, kw)
  self:add(cls(kw))
end

-- addNodes(cls, number, stride, {name=N, offset=O, ...}): N[i] at O + i*stride.
function Device:addNodes(cls, number, stride, kw)
  local name, offset = kw.name, kw.offset or 0
  for i = 0, number - 1 do
    local a = copyArgs(kw)
    a.name = ("%s[%d]"):format(name, i)
    if type(offset) == "table" then
      a.offset = {}
      for j, o in ipairs(offset) do a.offset[j] = o + i * stride end
    else
      a.offset = offset + i * stride
    end
    self:add(cls(a))
  end
end

function Device:addInterface(...)
  for _, o in ipairs{...} do self._ifaces[#self._ifaces + 1] = o end
end
Device.addProtocol = Device.addInterface
Device.manage = Device.addInterface

-- Hooks: the base versions call the same hook of every child device.
function Device:initialize()
  for _, d in ipairs(self:devices()) do d:initialize() end
end
function Device:hardReset()
  for _, d in ipairs(self:devices()) do d:hardReset() end
end
-- pyrogue's wrapper hooks: on the memory bus a Device stands for its hub
-- (m >> dev, sl.busConnect(dev, slave), dev >> slave).
function Device:_getMemorySlave() return self._hub end
function Device:_getMemoryMaster() return self._hub end

function Device:countReset()
  for _, d in ipairs(self:devices()) do d:countReset() end
end
function Device:enableChanged() end

function Device:hideVariables(hidden, variables)
  for _, v in ipairs(variables or self:variables()) do
    if type(v) == "string" then v = self:node(v) end
    if hidden then v:addToGroup("Hidden") else v:removeFromGroup("Hidden") end
  end
end

-- setPollInterval(interval [, names]): the named variables (default: those
-- already polled) poll at `interval`.
function Device:setPollInterval(interval, variables)
  local list = {}
  if variables == nil then
    for _, v in ipairs(self:variables()) do
      if (v.pollInterval or 0) > 0 then list[#list + 1] = v end
    end
  else
    for _, name in ipairs(variables) do list[#list + 1] = self:node(name) end
  end
  for _, v in ipairs(list) do v:setPollInterval(interval) end
end

-- Pre-made blocks are not supported (pyrogue v6.15.0's never bind their
-- variables).
function Device:addCustomBlock()
  error("Device.addCustomBlock: custom blocks are not supported; variables form their blocks", 2)
end

-- Sets every block's enable flag per the effective enable value, here and
-- below.
function Device:_updateBlockEnable()
  local en = self.enable:value() == true
  self._blocksEn = en
  for _, b in ipairs(self._blocks) do b:setEnable(en) end
  for _, d in ipairs(self:devices()) do d:_updateBlockEnable() end
end

-- The memory slave this device's hub forwards to: memBase or the parent.
function Device:_hasMemBase()
  local d = self
  while d do
    if d.memBase ~= nil then return true end
    local p = d._parent
    if p == d then return false end
    d = p
  end
  return false
end

-- At start, after the children: blocks and defaults.
function Device:_rootAttached(parent, root)
  node.Node._rootAttached(self, parent, root)
  self:_buildBlocks()
  self:_finishBlocks()
  self:_applyDefaults()
  rawset(self, "_devList", self:devices())   -- no child is added once started
end

-- The child devices (the list kept at start, before it a new one).
function Device:_devices()
  return rawget(self, "_devList") or self:devices()
end

-- Access sizes for block building (§1.4).
function Device:_blkMinAccess()
  if self.hubMin ~= 0 and self.hubMax ~= 0 then return self.hubMin end
  return self._hub:doMinAccess()
end

function Device:_blkMaxAccess()
  if self.hubMin ~= 0 and self.hubMax ~= 0 then return self.hubMax end
  return 0xFFFFFFFF
end

-- The address the device's hub reports to its blocks and child devices:
-- 0 below an address root (hubMin and hubMax set), else the downstream
-- address plus the offset.
function Device:_childAddress()
  if self.hubMin ~= 0 and self.hubMax ~= 0 then return 0 end
  return self:_addressValue()
end

function Device:_addressValue()
  local down = 0
  local slave = self.memBase
  if slave == nil then
    local p = self._parent
    if p ~= nil and p ~= self then down = p:_childAddress() end
  elseif type(slave) == "table" and slave._isDevice then
    down = slave:_childAddress()
  end
  return down + self.offset
end

local function memoryError(self, blk, mn, mx)
  error(("'Memory Error for %s at address %s Block size %d is not in the range: %d - %d'")
        :format(self.path, ("0x%06x"):format(self:_addressValue() + blk.offset), blk.size, mn, mx), 0)
end

-- Groups the variables into blocks (§3.1), after the children attached.
function Device:_buildBlocks()
  self.address = self:_addressValue()
  local blocks, remotes = {}, {}
  local m = self:_blkMinAccess()
  for _, n in ipairs(self._nodes) do
    if n._isLocal then
      n._block = blockmod.LocalBlock.new(n)
      blocks[#blocks + 1] = n._block
    elseif n._isRemote then
      n:_shiftOffsetDown(n.offset % m, m)
      remotes[#remotes + 1] = n
    end
  end
  if #remotes > 0 and self._parent ~= self and not self:_hasMemBase() then
    error(("Device '%s' has RemoteVariables or RemoteCommands but no memBase. Pass memBase= when creating this device or when adding it to the tree.")
          :format(self.path), 0)
  end
  node.stableSort(remotes, "offset", "varBytes")
  local groups, cur = {}, nil
  for _, v in ipairs(remotes) do
    if cur and cur.offset + cur.size > v.offset then
      v:_shiftOffsetDown(v.offset - cur.offset, m)
      if v.varBytes > cur.size then cur.size = v.varBytes end
      cur.vars[#cur.vars + 1] = v
    else
      cur = {offset = v.offset, size = v.varBytes, vars = {v}}
      groups[#groups + 1] = cur
    end
  end
  local mn, mx = m, self:_blkMaxAccess()
  local base = self:_childAddress()
  local en = self.enable:value() == true
  self._blocksEn = en
  for _, g in ipairs(groups) do
    if g.size > mx or g.size < mn then memoryError(self, g, mn, mx) end
    local blk = blockmod.Block.new(self, g.offset, g.size, g.vars, base)
    blk.enabled = en
    blocks[#blocks + 1] = blk
  end
  for _, v in ipairs(remotes) do
    v.address = v._block.address
  end
  self._blocks = blocks
end

-- Whether the bulk methods are the Device's own (then variables go to
-- their block directly).
function Device:_ownBulk()
  return self.writeBlocks == Device.writeBlocks and self.readBlocks == Device.readBlocks
     and self.verifyBlocks == Device.verifyBlocks and self.waitBlocks == Device.waitBlocks
end

-- Per variable flags used on every access, set when the tree starts.
function Device:_finishBlocks()
  local direct = self:_ownBulk()
  for _, n in ipairs(self._nodes) do
    if n._isRemote then
      n._direct = direct
      n._waitEach = self.forceWaitEach
      -- the fast get/set paths apply (variable.lua)
      n._quick = direct and not self.forceWaitEach and n._block.retryCount == 0
    end
  end
end

-- Bulk operations (§3.7). opts: force, recurse (true), variable, index,
-- waitEach (checkEach).
local READ, WRITE, VERIFY = blockmod.READ, blockmod.WRITE, blockmod.VERIFY

local function bulk(self, ttype, force, opts)
  local each = opts.waitEach or opts.checkEach or self.forceWaitEach or false
  local var = opts.variable
  if var ~= nil then
    var._block:startTransaction(ttype, force, each, var, opts.index or -1)
    return
  end
  blockmod.startBlocks(self._blocks, ttype, force, each)
  if opts.recurse ~= false then
    for _, d in ipairs(self:_devices()) do
      if ttype == WRITE then d:writeBlocks(opts)
      elseif ttype == READ then d:readBlocks(opts)
      else d:verifyBlocks(opts) end
    end
  end
end

function Device:writeBlocks(opts)
  opts = opts or {}
  bulk(self, WRITE, opts.force or false, opts)
end

function Device:verifyBlocks(opts)
  bulk(self, VERIFY, false, opts or {})
end

function Device:readBlocks(opts)
  bulk(self, READ, false, opts or {})
end

function Device:waitBlocks(opts)
  opts = opts or {}
  local var = opts.variable
  if var ~= nil then return var._block:check() end
  blockmod.waitBlocks(self._blocks, self._root)
  if opts.recurse ~= false then
    for _, d in ipairs(self:_devices()) do d:waitBlocks(opts) end
  end
end
Device.checkBlocks = Device.waitBlocks

function Device:writeAndVerifyBlocks(opts)
  opts = opts or {}
  self:writeBlocks(opts)
  self:verifyBlocks{recurse = opts.recurse, variable = opts.variable, waitEach = opts.waitEach}
  self:waitBlocks{recurse = opts.recurse, variable = opts.variable}
end

function Device:readAndWaitBlocks(opts)
  opts = opts or {}
  self:readBlocks(opts)
  self:waitBlocks{recurse = opts.recurse, variable = opts.variable}
end
Device.readAndCheckBlocks = Device.readAndWaitBlocks

-- addRemoteVariables(number, stride, {pack=, name=, offset=, ...}) (§1.3).
function Device:addRemoteVariables(number, stride, kw)
  local a = copyArgs(kw)
  local pack = a.pack
  a.pack = nil
  if pack then a.hidden = true end
  self:addNodes(variable.RemoteVariable, number, stride, a)
  if pack then self:_addPackLink(kw.name, number, kw) end
end

-- The N_All LinkVariable of a packed addRemoteVariables, when LinkVariable
-- exists.
function Device:_addPackLink(name, number, kw)
  local lv = node.optional("streamlua.pyrogue.localvar")
  if type(lv) ~= "table" or not lv.LinkVariable then return end
  local deps = {}
  for i = number - 1, 0, -1 do deps[#deps + 1] = self:node(("%s[%d]"):format(name, i)) end
  self:add(lv.LinkVariable{
    name = name .. "_All", mode = kw.mode, dependencies = deps,
    linkedGet = function(k)
      local t = {}
      for i, d in ipairs(deps) do t[i] = d:getDisp{read = k.read} end
      return table.concat(t, "_")
    end,
    linkedSet = function(k)
      if k.value == "" then return end
      local i = 0
      for part in (k.value .. "_"):gmatch("([^_]*)_") do
        i = i + 1
        if deps[i] then deps[i]:setDisp(part, {write = k.write}) end
      end
    end,
  })
end

function Device:addRemoteCommands(number, stride, kw)
  local cmd = node.optional("streamlua.pyrogue.command")
  self:addNodes(cmd.RemoteCommand, number, stride, kw)
end

-- `defaults` entries replace the default value of the matching children.
function Device:_applyDefaults()
  for key, value in pairs(self._defaults) do
    local nodes = self:nodeMatch(key)
    for _, n in ipairs(nodes) do
      if n._isVariable then n._default = value end
    end
  end
end

M.Device = Device
return M
