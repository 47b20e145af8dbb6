rockspec_format = "3.0"
package = "streamlua"
version = "scm-1"
source = {
  url = "git+https://example.invalid/streamlua.git",
}
description = {
  summary = "Rogue-compatible stream and register-bus graphs in C, steered from Lua",
  detailed = [[
streamlua moves frames between masters and slaves on C threads, in a graph
that a Lua script builds with `src >> fifo >> dst`, and speaks the wire
protocols of SLAC's Rogue. This rock installs the `streamlua` module, its
pure-Lua parts and the `streamlua` host program.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  LIBEVENT = { header = "event2/event.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA_LIBDIR = "$(LUA_LIBDIR)",
    LUA_CMOD_DIR = "$(LIBDIR)",
    LUA_LMOD_DIR = "$(LUADIR)",
    CMAKE_INSTALL_BINDIR = "$(BINDIR)",
    CMAKE_INSTALL_LIBDIR = "$(LIBDIR)",
    -- luarocks puts LIBDIR's files (the module and its libraries) in the
    -- tree's lib/lua/5.4 and the program in the tree's bin.
    SL_BIN_LIBDIR = "../lib/lua/5.4",
    SL_BUILD_TESTS = "OFF",
    SL_BUILD_BENCH = "OFF",
  },
}
test = {
  type = "command",
  command = "make test",
}
