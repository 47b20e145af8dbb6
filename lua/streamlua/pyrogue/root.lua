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

-- Filled in by the block, overlap, timeout and poller code.
function Root:_checkOverlaps() end
function Root:_setTimeout() end
function Root:_startPoller() end
function Root:_stopPoller() end
function Root:_readAll() end
function Root:_writeAll() end

M.Root = Root
return M
