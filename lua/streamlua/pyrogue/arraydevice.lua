-- streamlua.pyrogue.arraydevice: ArrayDevice, a Device holding `number`
-- devices of one class, element i at offset i*stride.
--
-- pr.ArrayDevice{arrayClass=, number=, stride=0, arrayArgs=, ...Device args}
--
-- arrayClass: a class (pr.Device, or one made with pr.class) or a function
-- building a device from one table (a Device subclass written as a
-- function). Its name is the class's name, or for a function the name the
-- calling code knows it by (a local, an upvalue or a global; one level of
-- table fields too: `lib.MyDev`).
-- Element i is arrayClass{name = "<Class>[i]", offset = i*stride, ...args}:
-- arrayArgs is nil, one table (given to every element) or an array of
-- `number` tables (arrayArgs[i+1] for element i). A `name` in the args
-- names the element instead; from a single shared table it names only
-- element 0, the others keep "<Class>[i]" (pyrogue takes the name out of
-- its dict on first use). The device's name defaults to "<Class>Array".
local node = require "streamlua.pyrogue.node"
local device = require "streamlua.pyrogue.device"

local M = {}

local ArrayDevice = node.class("ArrayDevice", device.Device)

local function argError(what)
  error("pr.ArrayDevice: " .. what, 5)
end

-- The key under which `t`, or a table in one of its fields, holds f.
local function keyIn(t, f)
  for k, v in pairs(t) do
    if v == f and type(k) == "string" then return k end
  end
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "table" and v ~= t then
      for k2, v2 in pairs(v) do
        if v2 == f and type(k2) == "string" then return k2 end
      end
    end
  end
  return nil
end

local SOURCE = debug.getinfo(1, "S").source

-- The name a function is known by to the code calling the constructor:
-- a local or upvalue of a calling function (outside this file), else a
-- global.
local function functionName(f)
  for level = 2, 40 do
    local info = debug.getinfo(level, "fS")
    if info == nil then break end
    if info.source ~= SOURCE then
      for i = 1, 250 do
        local k, v = debug.getlocal(level, i)
        if k == nil then break end
        if v == f and k:sub(1, 1) ~= "(" then return k end
      end
      for i = 1, 250 do
        local k, v = debug.getupvalue(info.func, i)
        if k == nil then break end
        if v == f and k ~= "" then return k end
      end
    end
  end
  return keyIn(_G, f)
end

local function className(cls)
  if type(cls) == "table" and type(rawget(cls, "_className")) == "string" then
    return cls._className
  end
  if type(cls) == "function" then return functionName(cls) end
  return nil
end

local copy = device.copyArgs   -- a shallow copy

-- The args of each element, an array indexed from 1 (element i at i+1).
local function elementArgs(arrayArgs, number)
  local list = {}
  if arrayArgs == nil then
    for i = 1, number do list[i] = {} end
  elseif type(arrayArgs) ~= "table" then
    argError("argument 'arrayArgs' must be a table or an array of tables")
  elseif arrayArgs[1] == nil then
    for i = 1, number do list[i] = copy(arrayArgs) end
    for i = 2, number do list[i].name = nil end
  else
    if #arrayArgs < number then
      argError(("argument 'arrayArgs' has %d entries for number = %d"):format(#arrayArgs, number))
    end
    for i = 1, number do
      if type(arrayArgs[i]) ~= "table" then
        argError(("argument 'arrayArgs' entry %d is not a table"):format(i))
      end
      list[i] = copy(arrayArgs[i])
    end
  end
  return list
end

function ArrayDevice:_init(args)
  local cls, number, stride = args.arrayClass, args.number, args.stride or 0
  if cls == nil or (type(cls) ~= "function" and not (getmetatable(cls) or {}).__call) then
    argError("argument 'arrayClass' must be a class or a function")
  end
  if math.type(number) ~= "integer" or number < 0 then
    argError("argument 'number' must be an integer >= 0")
  end
  if math.type(stride) ~= "integer" then argError("argument 'stride' must be an integer") end
  local base = className(cls)
  local list = elementArgs(args.arrayArgs, number)
  local kw = copy(args)
  kw.arrayClass, kw.number, kw.stride, kw.arrayArgs = nil, nil, nil, nil
  if kw.name == nil then
    if base == nil then argError("cannot tell the name of 'arrayClass'; pass name=") end
    kw.name = base .. "Array"
  end
  device.Device._init(self, kw)
  for i = 0, number - 1 do
    local a = list[i + 1]
    if a.offset ~= nil then argError("arrayArgs may not hold 'offset' (element offsets are i*stride)") end
    if a.name == nil then
      if base == nil then argError("cannot tell the name of 'arrayClass'; name the elements in arrayArgs") end
      a.name = ("%s[%d]"):format(base, i)
    end
    a.offset = i * stride
    self:add(cls(a))
  end
end

M.ArrayDevice = ArrayDevice
return M
