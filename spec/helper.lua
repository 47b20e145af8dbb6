-- Loaded by busted before the specs: find the build's module and the
-- pure-Lua files of this tree, and give specs a few shared tools.
local build = os.getenv("STREAMLUA_BUILD") or "build"
package.cpath = build .. "/?.so;" .. package.cpath
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
