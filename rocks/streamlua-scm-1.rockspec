rockspec_format = "3.0"
package = "streamlua"
version = "scm-1"
-- No public repository is known: the source is a local clone. `make rock`
-- installs from the checkout it runs in and records that checkout's path
-- here; a packager with a public clone puts its git+https URL here.
source = {
  url = "git+file:///usr/local/src/streamlua",
}
description = {
  summary = "Rogue-compatible stream and register-bus graphs in C, steered from Lua",
  detailed = [[
streamlua moves frames between masters and slaves on C threads, in a graph
that a Lua script builds with `src >> fifo >> dst`, and speaks the wire
protocols of SLAC's Rogue. This rock installs the `streamlua` module, its
pure-Lua parts and the `streamlua` host program, and for C programs the
headers, the static core library and its pkg-config file.
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
    -- luarocks moves the rock's lib/ (the module and the shared libraries
    -- it links) to the tree's lib/lua/5.4, its lua/ to share/lua/5.4 and
    -- its bin/ to bin: the program finds both from there.
    SL_BIN_LIBDIR = "../lib/lua/5.4",
    SL_BIN_LUADIR = "../share/lua/5.4",
    -- What a C program needs stays in the rock's own directory (luarocks
    -- show --rock-dir streamlua), laid out as a prefix: c/include,
    -- c/lib/libstreamlua.a and c/lib/pkgconfig/streamlua.pc, which links
    -- the core statically. C modules of the Lua graph need the shared
    -- libraries of an install (make install): no streamlua-lua.pc here.
    CMAKE_INSTALL_INCLUDEDIR = "$(PREFIX)/c/include",
    SL_INSTALL_DEVLIBDIR = "$(PREFIX)/c/lib",
    SL_INSTALL_LUA_PC = "OFF",
    SL_BUILD_TESTS = "OFF",
    SL_BUILD_BENCH = "OFF",
  },
}
test = {
  type = "command",
  command = "make test",
}
