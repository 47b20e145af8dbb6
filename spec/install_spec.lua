-- Installs streamlua two ways into temporary trees: `make install DESTDIR=`
-- (reusing the build dir: it builds only what is missing) and `make rock`
-- (luarocks make --tree). Against each, the installed program runs a script
-- with no LUA_PATH, and a C program is built with `pkg-config streamlua`
-- and run. Installing is the same in every build: the sanitizer passes
-- skip all but the first case (cmodule_spec builds against their install), and
-- STREAMLUA_ROCK_TEST=0 skips the rock, which builds the library again.
local bin = os.getenv("STREAMLUA_BIN") or "build/streamlua"
-- the environment of a user who set no Lua paths
local bare = "env -u LUA_PATH -u LUA_PATH_5_4 -u LUA_CPATH -u LUA_CPATH_5_4 "

describe("the program in the build tree", function()
  it("finds its pure-Lua modules in the checkout's lua/, run from anywhere", function()
    local cwd = run("pwd"):gsub("\n$", "")
    local abs = bin:sub(1, 1) == "/" and bin or cwd .. "/" .. bin
    local out, err, rc = run(bare .. "-C / " .. shell_quote(abs) .. " " ..
      shell_quote(cwd .. "/spec/install/script.lua"), {timeout = 120})
    assert.are.equal(0, rc, out .. err)
    assert.are.equal(cwd .. "/lua/streamlua/testing.lua", out:match("^[^\n]*"))
  end)
end)

if os.getenv("STREAMLUA_SANITIZED") == "1" then return end

local build = os.getenv("STREAMLUA_BUILD") or "build"
local version = require("streamlua").version
local hello_out = "streamlua " .. version .. " frames 1 bytes 5\n"

-- runs spec/install/script.lua under `program`; returns the file that
-- require found for streamlua.testing and the script's last line
local function run_script(program)
  local out, err, rc = run(bare .. shell_quote(program) .. " spec/install/script.lua",
    {timeout = 120})
  assert.are.equal(0, rc, out .. err)
  local found, last = out:match("^([^\n]*)\n([^\n]*)\n$")
  assert.is_truthy(found, out)
  return found, last
end

-- each of `files` is under `root`; no static library or pkg-config file
-- is under `root`/`clean` if given
local function assert_files(root, files, clean)
  for _, f in ipairs(files) do
    assert.is_truthy(io.open(root .. "/" .. f), f)
  end
  if clean then
    local out, err, rc = run("find " .. shell_quote(root .. "/" .. clean) ..
      " -name '*.a' -o -name '*.pc'")
    assert.are.equal(0, rc, err)
    assert.are.equal("", out)
  end
end

-- builds spec/install/hello.c with pkg-config from `pcdir`, returns the
-- compile line and the program's path
local function build_hello(pcdir, dir)
  local pc = "env PKG_CONFIG_PATH=" .. shell_quote(pcdir) .. " pkg-config"
  local flags, _, rc = run(pc .. " --cflags --libs streamlua")
  assert.are.equal(0, rc, flags)
  local exe = dir .. "/hello"
  local line = "cc -std=c11 -Wall -Werror -o " .. shell_quote(exe) ..
    " spec/install/hello.c " .. flags:gsub("\n", "")
  local out
  out, _, rc = run(line, {merged = true, timeout = 120})
  assert.are.equal(0, rc, line .. "\n" .. out)
  return line, exe
end

describe("make install", function()
  local dest, prefix, scratch

  setup(function()
    dest = temp_dir()
    scratch = temp_dir()
    prefix = dest .. "/usr/local"
    local out, _, rc = run("make install BUILD=" .. shell_quote(build) .. " DESTDIR=" ..
      shell_quote(dest), {merged = true, timeout = 900})
    assert(rc == 0, out)
  end)

  teardown(function()
    if dest then remove_dir(dest) end
    if scratch then remove_dir(scratch) end
  end)

  it("puts each piece in its place under PREFIX, inside DESTDIR", function()
    assert_files(prefix, {"bin/streamlua", "lib/libstreamlua.so", "lib/libstreamlua.a",
      "lib/libstreamlua-lua.so", "lib/lua/5.4/streamlua.so",
      "include/streamlua/streamlua.h", "include/streamlua/lua.h",
      "lib/pkgconfig/streamlua.pc", "lib/pkgconfig/streamlua-lua.pc",
      "share/lua/5.4/streamlua/testing.lua", "share/lua/5.4/streamlua/graph.lua",
      "share/lua/5.4/streamlua/pyrogue/init.lua"}, "lib/lua")
  end)

  it("runs a script whose pure-Lua modules the program finds without LUA_PATH", function()
    local found, last = run_script(prefix .. "/bin/streamlua")
    assert.are.equal(prefix .. "/share/lua/5.4/streamlua/testing.lua", found)
    assert.are.equal(version .. "\t1\t5\ttop", last)
  end)

  it("runs the same script from a copy of the tree moved elsewhere", function()
    local moved = scratch .. "/moved"
    local out, _, rc = run("cp -a " .. shell_quote(prefix) .. " " .. shell_quote(moved),
      {merged = true})
    assert.are.equal(0, rc, out)
    local found, last = run_script(moved .. "/bin/streamlua")
    assert.are.equal(moved .. "/share/lua/5.4/streamlua/testing.lua", found)
    assert.are.equal(version .. "\t1\t5\ttop", last)
  end)

  it("builds and runs a C program with pkg-config streamlua", function()
    local line, exe = build_hello(prefix .. "/lib/pkgconfig", scratch)
    assert.is_nil(line:find("/src/", 1, true), line)
    assert.is_truthy(line:find("-I" .. prefix .. "/lib/pkgconfig/../../include", 1, true), line)
    local out, err, rc = run("env LD_LIBRARY_PATH=" .. shell_quote(prefix .. "/lib") .. " " ..
      shell_quote(exe))
    assert.are.equal(0, rc, out .. err)
    assert.are.equal(hello_out, out)
    out = run("env LD_LIBRARY_PATH=" .. shell_quote(prefix .. "/lib") .. " ldd " .. shell_quote(exe))
    assert.is_truthy(out:find(prefix .. "/lib/libstreamlua.so", 1, true), out)
  end)

  it("is taken away by make uninstall, directories it made too", function()
    local out, _, rc = run("make uninstall BUILD=" .. shell_quote(build) .. " DESTDIR=" ..
      shell_quote(dest), {merged = true})
    assert.are.equal(0, rc, out)
    assert.are.equal("", (run("find " .. shell_quote(dest) .. " -mindepth 1")))
    out, _, rc = run("make uninstall BUILD=" .. shell_quote(build) .. " DESTDIR=" ..
      shell_quote(dest), {merged = true})
    assert.are_not.equal(0, rc)
    assert.matches("has installed nothing into " .. dest:gsub("%p", "%%%0"), out)
  end)
end)

if os.getenv("STREAMLUA_ROCK_TEST") == "0" then return end

describe("make rock", function()
  local tree, rockdir, scratch

  setup(function()
    tree = temp_dir()
    scratch = temp_dir()
    local out, _, rc = run("make rock BUILD=" .. shell_quote(build) .. " ROCK_TREE=" ..
      shell_quote(tree), {merged = true, timeout = 900})
    assert(rc == 0, out)
    out, _, rc = run("luarocks --lua-version 5.4 --tree " .. shell_quote(tree) ..
      " show --rock-dir streamlua")
    assert(rc == 0, out)
    rockdir = out:gsub("\n$", "")
  end)

  teardown(function()
    if tree then remove_dir(tree) end
    if scratch then remove_dir(scratch) end
    remove_dir("build.luarocks")
  end)

  it("puts the module, its libraries, Lua parts and program where luarocks looks", function()
    assert_files(tree, {"bin/streamlua", "lib/lua/5.4/streamlua.so",
      "lib/lua/5.4/libstreamlua.so", "lib/lua/5.4/libstreamlua-lua.so",
      "share/lua/5.4/streamlua/testing.lua", "share/lua/5.4/streamlua/pyrogue/init.lua"},
      "lib/lua")
  end)

  it("keeps the headers, static library and pkg-config file in the rock's directory", function()
    assert_files(rockdir, {"c/include/streamlua/streamlua.h", "c/lib/libstreamlua.a",
      "c/lib/pkgconfig/streamlua.pc"})
  end)

  it("records this checkout as its source", function()
    local spec = slurp(rockdir .. "/streamlua-scm-1.rockspec")
    local cwd = run("pwd"):gsub("\n$", "")
    assert.is_truthy(spec:find('url = "git+file://' .. cwd .. '"', 1, true), spec)
  end)

  it("runs a script whose pure-Lua modules the program finds without LUA_PATH", function()
    local found, last = run_script(tree .. "/bin/streamlua")
    assert.are.equal(tree .. "/share/lua/5.4/streamlua/testing.lua", found)
    assert.are.equal(version .. "\t1\t5\ttop", last)
    local out, err, rc = run(bare .. shell_quote(tree .. "/bin/streamlua") .. " --version")
    assert.are.equal(0, rc, out .. err)
    assert.matches("^streamlua " .. version:gsub("%p", "%%%0"), out)
  end)

  it("loads in plain lua5.4 from the tree", function()
    local env = "env LUA_CPATH=" .. shell_quote(tree .. "/lib/lua/5.4/?.so") ..
      " LUA_PATH=" .. shell_quote(tree .. "/share/lua/5.4/?.lua;" .. tree ..
      "/share/lua/5.4/?/init.lua") .. " "
    local out, err, rc = run(env .. "lua5.4 -e " .. shell_quote(
      'local sl = require "streamlua"; local t = require "streamlua.testing"; ' ..
      'local m = sl.stream.Master(); local s = sl.stream.Slave(); _ = m >> s; ' ..
      'm:sendFrame(t.frame("hello")); print(sl.version, s:getByteCount())'), {timeout = 120})
    assert.are.equal(0, rc, out .. err)
    assert.are.equal(version .. "\t5\n", out)
  end)

  it("builds a C program with pkg-config streamlua that needs nothing at run time", function()
    local line, exe = build_hello(rockdir .. "/c/lib/pkgconfig", scratch)
    assert.is_nil(line:find("/src/", 1, true), line)
    local out, err, rc = run(shell_quote(exe))
    assert.are.equal(0, rc, out .. err)
    assert.are.equal(hello_out, out)
    out = run("ldd " .. shell_quote(exe))
    assert.is_nil(out:find("libstreamlua", 1, true), out)
  end)
end)
