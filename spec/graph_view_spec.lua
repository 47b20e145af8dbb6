-- Looking at a running graph: sl.monitor covers every node that moves
-- frames, g:dot() and g:svg() show memory-bus links, sl.top() without a
-- terminal prints one table (on a terminal: prompt_spec.lua).
local sl = require "streamlua"
local testing = require "streamlua.testing"

local serve_until = testing.serveUntil

-- The part of a monitor line about the node called `name`.
local function part(line, name)
  for p in (line:gsub("^%d%d:%d%d:%d%d ", "") .. " | "):gmatch("(.-) | ") do
    if p:sub(1, #name + 1) == name .. " " then return p end
  end
end

describe("sl.monitor by default", function()
  it("covers a TCP client that only sends, a Fifo and the sink, with their rates", function()
    local srv = sl.stream.TcpServer("127.0.0.1", 0)
    local cli = sl.stream.TcpClient("127.0.0.1", srv:getPort())
    assert.is_true(serve_until(function() return cli:ready() and srv:ready() end, 20))
    srv.name, cli.name = "view-tcp-server", "view-tcp-client"
    local src, fifo, sink = sl.stream.Master(), sl.stream.Fifo(0, 0, true), sl.stream.Slave()
    fifo.name, sink.name = "view-fifo", "view-sink"
    _ = src >> fifo >> cli
    _ = srv >> sink
    local lines = {}
    local t = sl.monitor(0.05, nil, function(l) lines[#lines + 1] = l end)
    finally(function() t:cancel(); cli:stop(); srv:stop(); fifo:stop() end)
    local function moving(name)
      for _, l in ipairs(lines) do
        local p = part(l, name)
        local fps = p and tonumber(p:match("^%S+ ([%d%.]+)k?M?G? fr/s"))
        if fps and fps > 0 then return p end
      end
    end
    local sent = 0
    assert.is_true(serve_until(function()
      if sent < 2000 then
        src:sendFrame(testing.frame(string.rep("x", 4096)))
        sent = sent + 1
      end
      return moving("view-tcp-client") and moving("view-fifo") and moving("view-sink")
    end, 30))
    t:cancel()
    assert.matches("^view%-tcp%-client [%d%.]+[kMG]? fr/s [%d%.]+ MB/s drops 0$", moving("view-tcp-client"))
    assert.matches("^view%-fifo [%d%.]+[kMG]? fr/s [%d%.]+ MB/s drops 0$", moving("view-fifo"))
    assert.is_truthy(part(lines[1], "view-tcp-server"))   -- a bridge, even when idle
    assert.is_nil(part(lines[1], "Master#"))             -- moves nothing it counts
  end)
end)

describe("the graph drawn", function()
  local function memory_graph()
    local hub = sl.memory.Hub(0x100)
    local emu = sl.memory.Emulate(4, 0x1000)
    hub.name, emu.name = "view-hub", "view-emulate"
    _ = hub >> emu
    local m, s = sl.stream.Master(), sl.stream.Slave()
    m.name, s.name = "view-src", 'view "sink"'
    _ = m >> s
    return {hub, emu, m, s}
  end

  it("g:dot() draws memory-bus links dashed, and quotes names", function()
    local keep = memory_graph()
    local dot = sl.graph():dot()
    local hub = dot:match('n(%d+) %[label="view%-hub')
    local emu = dot:match('n(%d+) %[label="view%-emulate')
    assert.is_truthy(hub and emu)
    assert.matches(("n%s %%-> n%s %%[style=dashed, label=\"mem\"%%];"):format(hub, emu), dot)
    assert.matches('n%d+ %[label="view \\"sink\\"\\ncachedBytes=0 rxBytes=0 rxFrames=0"%];', dot)
    assert.matches("n%d+ %-> n%d+ %[style=bold%];", dot)
    assert.is_truthy(keep)
  end)

  it("g:svg() renders with Graphviz and names every node", function()
    local probe = io.popen("command -v dot")
    local dot = probe:read("l")
    probe:close()
    assert.is_truthy(dot, "Graphviz's dot is needed: scripts/deps.sh test installs graphviz")
    local keep = memory_graph()
    local g = sl.graph()
    local dir = temp_dir()
    local svg = g:svg(dir .. "/g.svg")
    assert.equal(svg, slurp(dir .. "/g.svg"))
    remove_dir(dir)
    assert.matches("^<%?xml", svg)
    assert.matches("</svg>%s*$", svg)
    local entities = {amp = "&", lt = "<", gt = ">", quot = '"', apos = "'"}
    local text = svg:gsub("<text[^>]*>(.-)</text>", function(t)   -- each text, decoded
      return "\0" .. t:gsub("&#(%d+);", function(c) return utf8.char(tonumber(c)) end)
                      :gsub("&(%a+);", entities) .. "\0"
    end)
    for _, n in ipairs(g.nodes) do
      assert.is_truthy(text:find("\0" .. n.name .. "\0", 1, true), n.name)
    end
    assert.has_error(function() g:svg(5) end, "bad argument #1 to 'svg' (string expected, got number)")
    assert.is_truthy(keep)
  end)

  it("g:svg() says plainly when Graphviz is not installed", function()
    local code = "local g = sl.graph(); local ok, err = pcall(g.svg, g); io.write(err)"
    local out = run("env PATH=/nonexistent " .. shell_quote(STREAMLUA_BIN) .. " -e " .. shell_quote(code))
    assert.equal("svg: Graphviz's 'dot' program was not found on PATH " ..
                 "(install Graphviz, e.g. apt-get install graphviz)", out)
  end)
end)

describe("sl.top without a terminal", function()
  it("prints one table of every node with its rates and returns", function()
    local out = run(shell_quote(STREAMLUA_BIN) .. " -e " .. shell_quote([[
      f = sl.stream.Fifo(10, 0, false); f.name = "top-fifo"
      m = sl.stream.Master(); _ = m >> f
      local fr = m:reqFrame(3, true); fr:write("abc"); m:sendFrame(fr)
      sl.top(0.05); print("returned")]]))
    assert.matches("^NAME +CLASS +FR/S +MB/S +DROPS +DEPTH\n", out)
    assert.matches("\ntop%-fifo +Fifo +0 +0%.0 +0 +0\n", out)
    assert.matches("\nMaster#%d+ +Master +%- +%- +%- +%-\n", out)
    assert.matches("\nreturned\n$", out)
  end)

  it("checks its period", function()
    assert.has_error(function() sl.top(0) end,
      "bad argument #1 to 'top' (number of seconds in (0, 3600] expected)")
    assert.has_error(function() sl.top("x") end)
  end)
end)
