-- streamlua.pyrogue.block: the Lua half of a register block. A Block owns
-- a C sl.memory.Block (the shadow, one transaction at a time, the verify
-- snapshot) connected to its device's hub, and keeps pyrogue's rules: stale
-- flags and ranges (§3.4), the skip rules and byte ranges of a transaction
-- start (§3.5), wait and check with the verify mask (§3.6), retries, and
-- pyrogue's error texts (§3.9). Main thread only.
--
-- Block.new(dev, offset, size, vars, minAccess) -> block; fields: offset,
-- size, address (bus address as pyrogue prints it), path (first variable),
-- mode, bulkOpEn, updateNotify, retryCount, verifyEn, enabled, stale, _cb,
-- _vars, _mask (verify mask, a string of `size` bytes).
-- block:startTransaction(type, forceWr, wait, var, index)
-- block:check()          wait + check; raises pyrogue's texts
-- block:setEnable(on), block:setTimeout(seconds)
--
-- LocalBlock.new(var): a LocalVariable's block: no bus traffic; its check
-- queues the variable's listener update. Same methods.
local sl = require "streamlua"

local M = {}

local mem = sl.memory
local READ, WRITE, POST, VERIFY = mem.Read, mem.Write, mem.Post, mem.Verify
M.READ, M.WRITE, M.POST, M.VERIFY = READ, WRITE, POST, VERIFY

local Block = {}
Block.__index = Block
M.Block = Block

local function generalError(fn, text)
  error(("%s: General Error: %s"):format(fn, text), 0)
end
M.generalError = generalError

-- Marks every bit of var in `bits` (block bit -> owner kind), raising
-- pyrogue's overlap errors; `size` bounds the block.
local function claimBits(blk, bits, var, lo, n)
  local limit = blk.size * 8
  local function fail(masked)
    if masked then
      generalError("Block::addVariables",
        ("Variable bit mask overlap detected for block %s with address 0x%08x")
        :format(blk.path, blk.address & 0xffffffff))
    end
    generalError("Block::addVariables",
      ("Variable bit overlap detected for block %s with address 0x%08x and variable %s")
      :format(blk.path, blk.address & 0xffffffff, var.name))
  end
  local mine = var.overlapEn and "o" or "x"
  for b = lo, lo + n - 1 do
    local owner = bits[b]
    if b >= limit then fail(false) end
    if owner == "x" and mine == "x" then fail(false) end
    if owner ~= nil and owner ~= mine then fail(true) end
    bits[b] = mine
  end
end

-- Calls f(bitOffset, bitSize) for every piece of var's bits.
local function eachPiece(var, f)
  if var._numValues > 0 then
    for i = 0, var._numValues - 1 do
      f(var._bitOffset[1] + i * var._valueStride, var._valueBits)
    end
  else
    for i = 1, #var._bitOffset do f(var._bitOffset[i], var._bitSize[i]) end
  end
end

-- How many of vars have a listener (kept up to date by addListener and
-- delListener once the block is built).
local function listenedVars(vars)
  local n = 0
  for i = 1, #vars do
    if vars[i]._listeners[1] ~= nil then n = n + 1 end
  end
  return n
end

-- Binds vars (sorted) to the block: attributes §3.3, overlap checks, mask.
function Block:_addVariables(vars)
  local bits = {}
  local verifyBits, noVerify = {}, {}
  self.mode = vars[1].mode
  self.bulkOpEn, self.updateNotify, self.retryCount, self.verifyEn = false, false, 0, false
  for _, v in ipairs(vars) do
    if v.mode ~= self.mode then self.mode = "RW" end
    if v.bulkOpEn then self.bulkOpEn = true end
    if v.updateNotify then self.updateNotify = true end
    if v.retryCount > self.retryCount then self.retryCount = v.retryCount end
    local verified = v.mode == "RW" and v.verify
    if verified then self.verifyEn = true end
    eachPiece(v, function(bo, bs)
      claimBits(self, bits, v, bo, bs)
      local into = verified and verifyBits or noVerify
      for b = bo, bo + bs - 1 do into[b] = true end
    end)
    v._block = self
  end
  local mask = {}
  for i = 1, self.size do mask[i] = 0 end
  for b in pairs(verifyBits) do
    if not noVerify[b] then
      local i = (b >> 3) + 1
      mask[i] = mask[i] | (1 << (b & 7))
    end
  end
  self._mask = string.char(table.unpack(mask))
  self._vars = vars
  -- the bulk start serves the block itself (no retries; startBlocks)
  self._bulkPlain = self.bulkOpEn and self.retryCount == 0
  self._bulkRead = self._bulkPlain and self.mode ~= "WO"
  self._listened = listenedVars(vars)
  -- a Read needs no more than the start and the wait (no retries, not WO)
  self._plainRead = self.mode ~= "WO" and self.retryCount == 0
end

function Block.new(dev, offset, size, vars, address)
  local cb = mem.Block(offset, size)
  cb:setSlave(dev._hub)
  local self = setmetatable({
    _cb = cb, _dev = dev, offset = offset, size = size, address = address + offset,
    path = vars[1].path, enabled = true, stale = false, _verifyPending = false,
    _doVerify = false, _minAccess = 4,
  }, Block)
  self._log = "pyrogue.memory.block." .. self.path
  self:_addVariables(vars)
  return self
end

function Block:setEnable(on) self.enabled = on end
function Block:setTimeout(s) self._cb:setTimeout(s * 1e6) end   -- the master's is in us

-- Byte range [low, high] of a Write/Post for var (§3.5 step 2) and the
-- clearing of every stale flag.
local function writeRange(self, var)
  local low, high = var._staleLow, var._staleHigh
  local vars = self._vars
  for i = 1, #vars do
    local v = vars[i]
    if v._stale then
      if v._staleLow < low then low = v._staleLow end
      if v._staleHigh > high then high = v._staleHigh end
      v._stale = false
    end
  end
  self.stale = false
  return low, high
end

Block._writeRange = writeRange

local function clearStale(self)
  local vars = self._vars
  for i = 1, #vars do vars[i]._stale = false end
  self.stale = false
end

-- §3.5: skip rules, range, issue; with wait (or retries) also check.
function Block:startTransaction(ttype, forceWr, wait, var, index)
  local mode = self.mode
  local low, high
  if ttype == READ then
    if mode == "WO" or self.stale then return end
  elseif ttype == WRITE then
    if mode == "RO" or (not self.stale and not forceWr) then return end
  elseif ttype == POST then
    if mode == "RO" then return end
  elseif ttype == VERIFY then
    if mode ~= "RW" or self.stale or not self._verifyPending or not self.verifyEn then return end
  end
  if var == nil then
    low, high = 0, self.size - 1
    if ttype == WRITE or ttype == POST then clearStale(self) end
  elseif ttype == READ or ttype == VERIFY then
    if index ~= nil and index >= 0 and index < var._numValues then
      low, high = var:_elementRange(index)
    else
      low, high = var._low, var._high
    end
  else
    low, high = writeRange(self, var)
  end
  if not self.enabled then return end
  local cb = self._cb
  if ttype == VERIFY then
    local vl, vn = cb:verifyRange()
    low, high = vl, vl + vn - 1
    self._doVerify = true
  elseif ttype == WRITE then
    self._verifyPending = self.verifyEn
  end
  local n = high - low + 1
  cb:start(ttype, low, n)
  if wait or self.retryCount > 0 then
    self._lastType, self._lastLow, self._lastN = ttype, low, n
    if self.retryCount > 0 then return self:_checkRetry() end
    return self:check()
  end
end

-- Queues the listener updates of the block's variables (§1.8); skipped
-- while nobody listens (no Root listener, notify.lua's _varListeners, and
-- none on the variable): the update would call nothing.
local function queueUpdates(vars, root, q, anyRoot)
  for i = 1, #vars do
    local v = vars[i]
    if v.updateNotify and (anyRoot or v._listeners[1] ~= nil) then q(root, v) end
  end
end

function Block:_notify()
  local root = self._dev._root
  local q = root and root._queueUpdate
  if q then
    local rl = root._varListeners
    local anyRoot = rl ~= nil and rl[1] ~= nil
    if anyRoot or self._listened > 0 then queueUpdates(self._vars, root, q, anyRoot) end
  end
end

-- pyrogue's texts of a failed transaction and of a verify mismatch.
function Block:_transactionError(err)
  return ("Block::checkTransaction: General Error: Transaction error for block %s with address 0x%08x. Error %s")
         :format(self.path, self.address & 0xffffffff, err)
end

function Block:_verifyError(i, got, exp, m)
  return ("Block::checkTransaction: General Error: Verify error for block %s with address 0x%08x. Byte: %d. Got: 0x%02x, Exp: 0x%02x, Mask: 0x%02x")
         :format(self.path, self.address & 0xffffffff, i, got, exp, m)
end

-- §3.6: wait for the outstanding transaction; its error, a verify
-- mismatch, as pyrogue's text (nil when fine); queues listener updates.
function Block:waitCheck()
  local err = self._cb:wait()
  if err ~= nil then
    self._doVerify = false
    return self:_transactionError(err)
  end
  if not self.enabled then return nil end
  if self._doVerify then
    self._doVerify = false
    self._verifyPending = false
    local i, got, exp, m = self._cb:verifyCheck(self._mask)
    if i then return self:_verifyError(i, got, exp, m) end
  end
  if self.updateNotify then self:_notify() end
  return nil
end

-- The same, raising.
function Block:check()
  local err = self:waitCheck()
  if err ~= nil then error(err, 0) end
end

-- A variable's forced Write of the block's stale range and its Verify, not
-- waited (the set path; §3.5 rules for a stale, non-RO block).
function Block:_writeVerify(var)
  if self.mode == "RO" then return end
  local low, high = writeRange(self, var)
  if not self.enabled then return end
  local cb, n = self._cb, high - low + 1
  self._verifyPending = self.verifyEn
  cb:start(WRITE, low, n)
  if self.verifyEn and self.mode == "RW" then
    self._doVerify = true
    cb:start(VERIFY, low, n)
  end
end

-- check() with retries of the same transaction (§3.5 step 7).
function Block:_checkRetry()
  local tries = self.retryCount + 1
  for try = 1, tries do
    local ok, err = pcall(self.check, self)
    if ok then return end
    sl.logging.log(self._log, try == tries and "Error" or "Warning",
                   ("Error on try %d out of %d: %s"):format(try, tries, err))
    if try == tries then error(err, 0) end
    if self._lastType == VERIFY then self._doVerify = true end
    self._cb:start(self._lastType, self._lastLow, self._lastN)
  end
end

-- Bulk operations ------------------------------------------------------------

local mem_startBlocks, mem_waitBlocks = mem.startBlocks, mem.waitBlocks
-- scratch lists of the C calls (main thread only; filled, then used at once)
local scratchList, scratchMasks, scratchAt = {}, {}, {}

-- startTransaction(ttype, force, each, nil, -1) of every bulk-enabled block
-- of `blocks` in order: the rules of §3.5 here, the transactions of the
-- blocks that need no wait of their own issued by one C call per run.
function M.startBlocks(blocks, ttype, force, each)
  local list, n = scratchList, 0
  local writing = ttype == WRITE or ttype == POST
  for i = 1, #blocks do
    local blk = blocks[i]
    if each or not blk._bulkPlain then
      if blk.bulkOpEn and not blk._local then
        if n > 0 then mem_startBlocks(list, ttype, n); n = 0 end
        blk:startTransaction(ttype, force, each, nil, -1)
      end
    elseif ttype == READ then
      if blk._bulkRead and not blk.stale and blk.enabled then
        n = n + 1
        list[n] = blk._cb
      end
    else
      local mode, go = blk.mode, false
      if ttype == WRITE then go = mode ~= "RO" and (blk.stale or force)
      elseif ttype == POST then go = mode ~= "RO"
      elseif ttype == VERIFY then
        go = mode == "RW" and not blk.stale and blk._verifyPending and blk.verifyEn
      end
      if go then
        if writing then clearStale(blk) end
        if blk.enabled then
          if ttype == VERIFY then blk._doVerify = true
          elseif ttype == WRITE then blk._verifyPending = blk.verifyEn end
          n = n + 1
          list[n] = blk._cb
        end
      end
    end
  end
  if n > 0 then mem_startBlocks(list, ttype, n) end
end

-- waitCheck() of every block of `blocks` (a device's, of Root `root`) in
-- order, raising the first error: the waits and verify checks by one C
-- call, then the listener updates of the blocks that went through.
function M.waitBlocks(blocks, root)
  local list, masks, at, n = scratchList, scratchMasks, scratchAt, 0
  local verify, locals, listened = false, false, false
  for i = 1, #blocks do
    local blk = blocks[i]
    local cb = blk._cb
    if cb then
      n = n + 1
      list[n], at[n] = cb, i
      local mask = blk._doVerify and blk.enabled and blk._mask
      masks[n] = mask
      if mask then verify = true end
      if blk._listened > 0 then listened = true end
    else
      locals = true
    end
  end
  local k, a, got, exp, m = mem_waitBlocks(list, masks, n)
  -- _notify's tests of the Root, once
  local q = root and root._queueUpdate
  local rl = q and root._varListeners
  local anyRoot = rl ~= nil and rl ~= false and rl[1] ~= nil
  local notify = q and (anyRoot or listened)
  if not (k or verify or locals or notify) then return end
  local last = k and at[k] or #blocks
  for i = 1, last do
    local blk = blocks[i]
    if not blk._cb then
      blk:waitCheck()
    elseif i == last and k then
      blk._doVerify = false
      if type(a) == "string" then error(blk:_transactionError(a), 0) end
      blk._verifyPending = false
      error(blk:_verifyError(a, got, exp, m), 0)
    elseif blk.enabled then
      if blk._doVerify then
        blk._doVerify = false
        blk._verifyPending = false
      end
      if notify and blk.updateNotify and (anyRoot or blk._listened > 0) then
        queueUpdates(blk._vars, root, q, anyRoot)
      end
    end
  end
end

-- LocalBlock -----------------------------------------------------------------

local LocalBlock = {}
LocalBlock.__index = LocalBlock
M.LocalBlock = LocalBlock

function LocalBlock.new(var)
  return setmetatable({_var = var, _vars = {var}, path = var.path, bulkOpEn = true,
                       stale = false, enabled = true, mode = var.mode, size = 0,
                       offset = 0, _local = true, _listened = listenedVars{var}},
                      LocalBlock)
end

function LocalBlock:setEnable(on) self.enabled = on end
function LocalBlock:setTimeout() end
function LocalBlock:startTransaction() end
function LocalBlock:waitCheck()
  local v = self._var
  local root = v._root
  local q = root and root._queueUpdate
  if q and v.updateNotify then q(root, v) end
  return nil
end
LocalBlock.check = LocalBlock.waitCheck

return M
