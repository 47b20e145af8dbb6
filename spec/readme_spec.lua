-- The README is part of the product: its example must run, and every name
-- the binding registers must be documented in its API section.

describe("README", function()
  local readme = slurp("README.md")

  it("starts with the two commands", function()
    local first = readme:match("```sh\n(.-)```")
    assert.matches("^make run", first)
    assert.matches("\nmake test", first)
  end)

  it("its Lua example runs and prints what it says", function()
    local code = readme:match("```lua\n(.-)```")
    local out = {}
    local env = setmetatable({print = function(...)
      local t = table.pack(...)
      for i = 1, t.n do t[i] = tostring(t[i]) end
      out[#out + 1] = table.concat(t, "\t")
    end}, {__index = _G})
    assert(load(code, "README", "t", env))()
    assert.are.same({"got\thello", "1\t5"}, out)
  end)

  it("documents every name the binding registers", function()
    local missing = {}
    for file in io.popen("ls src/lua/*.c"):lines() do
      local src = slurp(file)
      for name in src:gmatch('{"([%w_]+)",%s*[%w_]+}') do
        if not name:match("^__") and not readme:find(name, 1, true) then
          missing[#missing + 1] = file .. ": " .. name
        end
      end
    end
    assert.are.same({}, missing)
  end)
end)
