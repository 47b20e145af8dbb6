-- examples/cmodule: a stream stage written in C, built as a Lua module
-- against an installed streamlua (headers, libraries and pkg-config files
-- from `cmake --install`, nothing from src/) and run in a graph by the
-- installed program. In the sanitizer passes the module is built with the
-- same sanitizer as the library it joins.
local build = os.getenv("STREAMLUA_BUILD") or "build"
local sanitized = os.getenv("STREAMLUA_SANITIZED") == "1"
-- a cross build's installed program runs under this (qemu-user); CC and
-- PKG_CONFIG_LIBDIR in the environment build the module for it
local emulator = os.getenv("STREAMLUA_EMULATOR")
emulator = emulator and (shell_quote(emulator) .. " ") or ""

describe("a C module built against the installed streamlua", function()
  local prefix, mod, make_out

  -- env words that let the installed program find the installed Lua files
  -- and the module
  local function lua_env(cpath)
    return "env LUA_PATH=" .. shell_quote(prefix .. "/share/lua/5.4/?.lua;;") ..
      " LUA_CPATH=" .. shell_quote(cpath .. ";;")
  end

  setup(function()
    prefix = temp_dir()
    mod = prefix .. "/mod"
    local out, _, rc = run("cmake --install " .. shell_quote(build) .. " --prefix " ..
      shell_quote(prefix), {merged = true, timeout = 300})
    assert(rc == 0, out)
    local cflags = "-O2 -g -Werror"
    local san = slurp(build .. "/CMakeCache.txt", ""):match("\nSL_SANITIZE:STRING=([^\n]*)")
    if san and san ~= "" then cflags = cflags .. " -fsanitize=" .. san end
    make_out, _, rc = run("make -C examples/cmodule OUT=" .. shell_quote(mod .. "/byteswap.so") ..
      " PKG_CONFIG_PATH=" .. shell_quote(prefix .. "/lib/pkgconfig") ..
      " CFLAGS=" .. shell_quote(cflags), {merged = true, timeout = 300})
    assert(rc == 0, make_out)
  end)

  teardown(function()
    if prefix then remove_dir(prefix) end
  end)

  it("builds from the installed headers and pkg-config alone", function()
    local compile = ("\n" .. make_out):match("\n([^\n]*%-shared[^\n]*)")   -- first line too
    assert.is_truthy(compile, make_out)
    assert.is_nil(compile:find("/src/", 1, true), compile)
    assert.is_truthy(compile:find("-I" .. prefix .. "/lib/pkgconfig/../../include", 1, true),
      compile)
    assert.is_truthy(compile:find("-lstreamlua-lua", 1, true), compile)
    -- the installed .pc files name the tree they are in, wherever it is
    local out, _, rc = run("env PKG_CONFIG_PATH=" .. shell_quote(prefix .. "/lib/pkgconfig") ..
      " pkg-config --variable=INSTALL_CMOD streamlua-lua")
    assert.are.equal(0, rc)
    assert.are.equal(prefix .. "/lib/pkgconfig/../../lib/lua/5.4\n", out)
  end)

  it("passes frames through it in a graph run by the installed program", function()
    local out, err, rc = run(lua_env(mod .. "/?.so") .. " " ..
      emulator .. shell_quote(prefix .. "/bin/streamlua") .. " spec/cmodule/graph.lua", {timeout = 300})
    assert.are.equal(0, rc, out .. err)
    assert.are.equal("ok\n", out)
  end)

  it("runs its example", function()
    local out, err, rc = run(lua_env(mod .. "/?.so") .. " " ..
      emulator .. shell_quote(prefix .. "/bin/streamlua") .. " examples/cmodule/demo.lua 200 256",
      {timeout = 300})
    assert.are.equal(0, rc, out .. err)
    assert.are.equal("swapped\t0403020108070605090a\n" ..
      "checked\ttrue\terrors\t0\tdrops\t0\tpassed\ttrue\n", out)
  end)

  if sanitized then
    pending("plain lua5.4 loads no sanitizer runtime: the plain pass loads the module there")
    return
  end

  it("loads beside the installed module in plain lua5.4", function()
    local out, err, rc = run(lua_env(prefix .. "/lib/lua/5.4/?.so;" .. mod .. "/?.so") ..
      " lua5.4 spec/cmodule/graph.lua", {timeout = 300})
    assert.are.equal(0, rc, out .. err)
    assert.are.equal("ok\n", out)
  end)
end)
