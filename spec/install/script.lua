-- Run by an installed streamlua program with no LUA_PATH: its pure-Lua
-- parts (streamlua.testing, streamlua.pyrogue) come from where it is.
local testing = require "streamlua.testing"
local pr = require "streamlua.pyrogue"
local src = sl.stream.Master()
local dst = sl.stream.Slave()
_ = src >> dst
src:sendFrame(testing.frame("hello"))
local root = pr.Root{name = "top"}
print(package.searchpath("streamlua.testing", package.path))
print(sl.version, dst:getFrameCount(), dst:getByteCount(), root.name)
