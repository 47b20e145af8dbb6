-- Installs the rock into a temporary tree with `luarocks make` and loads it
-- from the plain lua5.4 interpreter. It builds the whole tree once, so the
-- sanitizer passes skip it (STREAMLUA_ROCK_TEST=0).
if os.getenv("STREAMLUA_ROCK_TEST") == "0" then return end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  return out, tonumber(out:match("rc=(%d+)%s*$"))
end

describe("the rock", function()
  local tree

  setup(function()
    tree = os.tmpname()
    os.remove(tree)
  end)

  teardown(function()
    if tree then os.execute("rm -rf '" .. tree .. "' build.luarocks") end
  end)

  it("installs with luarocks make and loads in plain lua5.4", function()
    local out, rc = sh("timeout 600 luarocks --lua-version 5.4 --tree '" .. tree ..
      "' make rocks/streamlua-scm-1.rockspec")
    assert.are.equal(0, rc, out)
    local env = "LUA_CPATH='" .. tree .. "/lib/lua/5.4/?.so' LUA_PATH='" .. tree ..
      "/share/lua/5.4/?.lua;" .. tree .. "/share/lua/5.4/?/init.lua' "
    out, rc = sh(env .. "lua5.4 -e 'local sl = require \"streamlua\"; " ..
      "local t = require \"streamlua.testing\"; " ..
      "local m = sl.stream.Master(); local s = sl.stream.Slave(); _ = m >> s; " ..
      "m:sendFrame(t.frame(\"hello\")); print(sl.version, s:getByteCount())'")
    assert.are.equal(0, rc, out)
    assert.matches("0%.1%.0%s+5", out)
    out, rc = sh("'" .. tree .. "/bin/streamlua' --version")
    assert.are.equal(0, rc, out)
    assert.matches("streamlua 0%.1%.0", out)
  end)
end)
