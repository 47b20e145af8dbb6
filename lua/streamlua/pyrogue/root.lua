-- streamlua.pyrogue.root: Root, the top Device of a tree: start/stop
-- (§1.6), getNode, the bulk ReadAll/WriteAll core, the transaction timeout,
-- initRead/initWrite and polling (§1.7) on loop timers.
--
-- pr.Root{name='Root', description='', expand=true, timeout=1.0,
-- initRead=false, initWrite=false, pollEn=true, maxLog=1000}
--
-- Fields: running, timeout, initRead, initWrite, pollEn. Methods: start(),
-- stop(), getNode(path), _readAll(), _writeAll(force) (the bodies of the
-- ReadAll/WriteAll commands), pollBlock() (a pause of the poller while a
-- bulk operation runs; returns its end function).
local node = require "streamlua.pyrogue.node"
local device = require "streamlua.pyrogue.device"

local M = {}

local Device = device.Device
local Root = node.class("Root", Device)

function Root:_init(args)
  Device._init(self, args)
  if args.expand == nil then self.expand = true end
  self.timeout = args.timeout or 1.0
  self.initRead = args.initRead or false
  self.initWrite = args.initWrite or false
  self.pollEn = args.pollEn ~= false
  self.maxLog = args.maxLog or 1000
  self.running = false
  self._root = self
  self:_addRootNodes()
end

-- The built-in variables and commands, when their classes exist.
function Root:_addRootNodes()
  local cmd = node.optional("streamlua.pyrogue.command")
  if type(cmd) ~= "table" or not cmd.addRootNodes then return end
  cmd.addRootNodes(self)
end

-- Depth-first walk calling f(node) on every node below (and with) n.
local function walk(n, f)
  f(n)
  for _, c in ipairs(n._nodes) do walk(c, f) end
end
M.walk = walk

-- Interfaces' _start, the Root first, then devices in add order.
local function startInterfaces(dev, method)
  for _, o in ipairs(dev._ifaces) do
    local fn = o[method]
    if fn then fn(o) end
  end
  for _, d in ipairs(dev:devices()) do startInterfaces(d, method) end
end

function Root:start()
  if self.running then error("Root is already started! Can't restart!", 0) end
  self:_rootAttached(self, self)
  walk(self, function(n)
    if n._isVariable then n:_finishInit() end
  end)
  self:_checkOverlaps()
  if self.timeout ~= 1.0 then self:_setTimeout(self.timeout) end
  self.running = true
  startInterfaces(self, "_start")
  if self.initRead then self:_initOp("_readAll") end
  if self.initWrite then self:_initOp("_writeAll") end
  self:_startPoller()
  return self
end

-- initRead / initWrite: errors are logged, start goes on.
function Root:_initOp(method)
  local ok, err = pcall(self[method], self)
  if not ok then
    require("streamlua").logging.log("pyrogue.Root", "Error", tostring(err))
  end
end

function Root:stop()
  self.running = false
  self:_stopPoller()
  startInterfaces(self, "_stop")
end

-- getNode("Top.Dev.Var") or getNode("root.Dev.Var"); nil when not found.
function Root:getNode(path)
  local first = true
  local n = self
  for part in (path .. "."):gmatch("([^.]*)%.") do
    if first then
      if part ~= self.name and part ~= "root" then return nil end
      first = false
    else
      n = n:node(part)
      if n == nil then return nil end
    end
  end
  return n
end

-- Every block of the tree, depth first (device's own blocks first).
local function eachDevice(dev, f)
  f(dev)
  for _, d in ipairs(dev:devices()) do eachDevice(d, f) end
end

-- The memory slave at the end of a device's chain (the overlap domain).
local function memSlave(dev)
  while dev do
    if dev.memBase ~= nil then return dev.memBase end
    if dev._parent == dev then return dev end
    dev = dev._parent
  end
end

-- Two blocks on one memory slave must not overlap (§1.4).
function Root:_checkOverlaps()
  local bySlave, slaves = {}, {}
  eachDevice(self, function(d)
    local s = memSlave(d)
    for _, b in ipairs(d._blocks) do
      if not b._local then
        local l = bySlave[s]
        if not l then l = {}; bySlave[s] = l; slaves[#slaves + 1] = s end
        l[#l + 1] = b
      end
    end
  end)
  for _, s in ipairs(slaves) do
    local l = bySlave[s]
    node.stableSort(l, "address", "size")
    for i = 2, #l do
      local prev, cur = l[i - 1], l[i]
      if prev.address + prev.size > cur.address then
        error(("%s at address=%#x overlaps %s at address=%#x with size=%d")
              :format(cur.path, cur.address, prev.path, prev.address, prev.size), 0)
      end
    end
  end
end

-- The transaction timeout of every block (§1.6 step 5).
function Root:_setTimeout(timeout)
  if timeout > 10 then
    require("streamlua").logging.log("pyrogue.Root", "Warning",
      ("Large timeout value of %s seconds. Consider reducing it."):format(timeout))
  end
  eachDevice(self, function(d)
    for _, b in ipairs(d._blocks) do b:setTimeout(timeout) end
  end)
end

-- pollBlock(): pauses the poller until the returned function is called.
function Root:pollBlock()
  self._pollBlocked = (self._pollBlocked or 0) + 1
  local done = false
  return function()
    if done then return end
    done = true
    self._pollBlocked = self._pollBlocked - 1
    if self._pollBlocked == 0 and self._pollDue then self:_pollRun() end
  end
end

local function withPollBlock(self, f, ...)
  local release = self:pollBlock()
  local ok, err = pcall(f, ...)
  release()
  if not ok then error(err, 0) end
end

-- The bodies of ReadAll and WriteAll (§3.7).
function Root:_readAll()
  withPollBlock(self, function()
    self:readBlocks{recurse = true}
    self:waitBlocks{recurse = true}
  end)
end

function Root:_writeAll(force)
  if force == nil then
    local fw = rawget(self, "ForceWrite")
    force = fw ~= nil and fw:value() == true
  end
  withPollBlock(self, function()
    self:writeBlocks{force = force, recurse = true}
    self:verifyBlocks{recurse = true}
    self:waitBlocks{recurse = true}
  end)
end

-- Polling (§1.7) -------------------------------------------------------------

-- Sets the poll interval of var's block to the smallest interval of its
-- variables (none: not polled); a running poller takes it at once.
function Root:_pollAdd(var)
  local blk = var._block
  if blk == nil or self._pollBlocks == nil then return end
  local iv
  for _, v in ipairs(blk._vars) do
    local p = v.pollInterval or 0
    if p > 0 and (iv == nil or p < iv) then iv = p end
  end
  if self._pollBlocks[blk] == iv then return end
  self._pollBlocks[blk] = iv
  if self._pollTimers then self:_pollSchedule() end
end

-- One poll cycle over the due blocks: every Read issued, then each waited;
-- errors are logged.
function Root:_pollRun()
  local due = self._pollDue
  self._pollDue = nil
  if not due or not self._pollEnabled or not self.running then return end
  if (self._pollBlocked or 0) > 0 then self._pollDue = due; return end
  local sl = require "streamlua"
  for _, blk in ipairs(due) do
    local ok, err = pcall(blk.startTransaction, blk, 1, false, false, nil, -1)
    if not ok then sl.logging.log("pyrogue.PollQueue", "Error", tostring(err)) end
  end
  for _, blk in ipairs(due) do
    local ok, err = pcall(blk.check, blk)
    if not ok then sl.logging.log("pyrogue.PollQueue", "Error", tostring(err)) end
  end
end

local function addDue(self, blocks)
  local due = self._pollDue or {}
  local seen = {}
  for _, b in ipairs(due) do seen[b] = true end
  for _, b in ipairs(blocks) do
    if not seen[b] then due[#due + 1] = b; seen[b] = true end
  end
  self._pollDue = due
  self:_pollRun()
end

-- One sl.every timer per interval; each new interval is due at once.
function Root:_pollSchedule()
  local sl = require "streamlua"
  local byIv, order = {}, {}
  for blk, iv in pairs(self._pollBlocks or {}) do
    if not byIv[iv] then byIv[iv] = {}; order[#order + 1] = iv end
    local l = byIv[iv]
    l[#l + 1] = blk
  end
  self:_stopTimers()
  self._pollTimers = {}
  table.sort(order)
  for _, iv in ipairs(order) do
    local blocks = byIv[iv]
    table.sort(blocks, function(a, b) return a.address < b.address end)
    self._pollTimers[#self._pollTimers + 1] = sl.after(0, function() addDue(self, blocks) end)
    self._pollTimers[#self._pollTimers + 1] = sl.every(iv, function() addDue(self, blocks) end)
  end
end

function Root:_stopTimers()
  for _, t in ipairs(self._pollTimers or {}) do t:cancel() end
  self._pollTimers = nil
end

-- Pauses (false) or resumes (true) the poller: the body of PollEn.
function Root:_setPollEn(on)
  on = on and true or false
  if on == self._pollEnabled then return end
  self._pollEnabled = on
  if on and self.running then self:_pollSchedule() else self:_stopTimers() end
end

function Root:_startPoller()
  self._pollBlocks = {}
  walk(self, function(n)
    if n._isVariable and (n.pollInterval or 0) > 0 then self:_pollAdd(n) end
  end)
  local pe = rawget(self, "PollEn")
  if pe ~= nil and pe.set then pe:set(self.pollEn) else self:_setPollEn(self.pollEn) end
end

function Root:_stopPoller()
  self._pollEnabled = false
  self:_stopTimers()
end

M.Root = Root
return M
