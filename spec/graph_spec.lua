local sl = require "streamlua"
local testing = require "streamlua.testing"

describe("seeing the graph", function()
  it("sl.graph() lists nodes, links and counters", function()
    local m = sl.stream.Master()
    m.name = "source"
    local fifo = sl.stream.Fifo(10, 0, true)
    local sink = sl.stream.Slave()
    local tap = sl.stream.Slave{name = "tap", acceptFrame = function() end}
    _ = m >> fifo >> sink
    _ = fifo >> tap
    m:sendFrame(testing.frame("12345"))
    assert.is_true(testing.serveUntil(function()
      return fifo:counters().txFrames == 1 and tap:counters().rxFrames == 1 end, 20))
    local g = sl.graph()
    local by = {}
    for _, n in ipairs(g.nodes) do by[n.name] = n end
    assert.is_truthy(by.source and by.tap)
    local fnode
    for _, n in ipairs(g.nodes) do if rawequal(n.object, fifo) then fnode = n end end
    assert.are.equal("Fifo", fnode.kind)
    assert.are.equal("Fifo#" .. fnode.id, fnode.name)
    assert.are.equal(1, fnode.counters.txFrames)
    assert.are.equal(5, fnode.counters.rxBytes)
    assert.are.equal(1, by.tap.counters.rxFrames)      -- Lua slaves count arrivals
    -- the graph is the whole process's: look at this test's nodes only
    local mine = function(n)
      return rawequal(n.object, m) or rawequal(n.object, fifo) or
             rawequal(n.object, sink) or rawequal(n.object, tap)
    end
    local links = {}
    for _, l in ipairs(g.links) do
      local from, to = g.nodes[l.from], g.nodes[l.to]
      if mine(from) and mine(to) then
        links[#links + 1] = from.kind .. ">" .. to.kind .. (l.primary and "*" or "")
      end
    end
    table.sort(links)
    assert.are.same({"Fifo>LuaSlave", "Fifo>Slave*", "Master>Fifo*"}, links)
    local text = tostring(g)
    assert.matches("source %-> Fifo#%d+%*", text)
  end)

  it("graph:dot() writes Graphviz text", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    m.name = "dot-src"; s.name = "dot-sink"
    _ = m >> s
    local dot = sl.graph():dot()
    assert.matches("^digraph streamlua {\n", dot)
    assert.matches('n%d+ %[label="dot%-src"%];', dot)
    assert.matches('n%d+ %[label="dot%-sink\\ncachedBytes=0 rxBytes=0 rxFrames=0"%];', dot)
    assert.matches("n%d+ %-> n%d+ %[style=bold%];", dot)
    assert.matches("}\n$", dot)
  end)

  it("sl.monitor() prints a rate line every period", function()
    local fifo = sl.stream.Fifo(0, 0, true)
    local sink = sl.stream.Slave()
    sink.name = "mon-sink"
    _ = fifo >> sink
    local lines = {}
    local t = sl.monitor(0.05, {sink}, function(line) lines[#lines + 1] = line end)
    local h = testing.harness(fifo)
    for _ = 1, 50 do h:push(string.rep("x", 1000)) end
    -- the period in which the 50 frames arrive has a line with a rate
    local function rated()
      for _, l in ipairs(lines) do
        if tonumber(l:match("mon%-sink ([%d%.]+)")) > 0 then return true end
      end
      return false
    end
    assert.is_true(testing.serveUntil(function() return #lines >= 2 and rated() end, 20))
    t:cancel()
    assert.matches("^%d%d:%d%d:%d%d mon%-sink [%d%.kMG]+ fr/s [%d%.]+ MB/s drops 0$", lines[1])
  end)

  it("sl.monitor() watches the sinks by default and checks arguments", function()
    local m, s = sl.stream.Master(), sl.stream.Slave()
    s.name = "default-sink"
    _ = m >> s
    local lines = {}
    local t = sl.monitor(0.02, nil, function(l) lines[#lines + 1] = l end)
    assert.is_true(testing.serveUntil(function() return #lines >= 1 end, 20))
    t:cancel()
    assert.matches("default%-sink", lines[1])
    assert.has_error(function() sl.monitor(0) end,
      "bad argument #1 to 'monitor' (positive number of seconds expected)")
    assert.has_error(function() sl.monitor(1, 5) end)
    assert.has_error(function() sl.monitor(1, nil, 5) end)
  end)

  it("sl.now() is a monotonic clock in seconds", function()
    local a = sl.now()
    sl.sleep(0.02)
    local b = sl.now()
    assert.is_true(b - a >= 0.015 and b - a < 30)   -- slept; no hang
  end)

  it("getSlaves() lists a master's slaves, the primary first", function()
    local m, a, b = sl.stream.Master(), sl.stream.Slave(), sl.stream.Slave()
    _ = m >> a; _ = m >> b
    local s = m:getSlaves()
    assert.are.equal(2, #s)
    assert.is_true(rawequal(a, s[1]))
    assert.is_true(rawequal(b, s[2]))
  end)
end)

describe("streamlua.graph", function()
  local build = os.getenv("STREAMLUA_BUILD") or "build"

  it("is built into the module: sl.graph works with no Lua path", function()
    if os.getenv("STREAMLUA_SANITIZED") then return end   -- the module needs its runtime
    local code = "local sl = require 'streamlua'; local m, s = sl.stream.Master(), " ..
      "sl.stream.Slave(); _ = m >> s; io.write(tostring(sl.graph()), '\\n', sl.graph():dot())"
    local out, err, rc = run("env LUA_PATH=" .. shell_quote("/nonexistent/?.lua") .. " LUA_CPATH=" ..
      shell_quote(build .. "/?.so") .. " lua5.4 -e " .. shell_quote(code))
    assert.are.equal(0, rc, err)
    assert.matches("Master#%d+ %-> Slave#%d+%*", out)
    assert.matches("digraph streamlua {", out, 1, true)
  end)

  it("is not for require: it says to use the module's functions", function()
    local ok, err = pcall(require, "streamlua.graph")
    assert.is_false(ok)
    assert.matches("use sl.graph() and sl.monitor()", err, 1, true)
  end)
end)
