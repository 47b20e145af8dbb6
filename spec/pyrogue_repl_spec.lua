-- sl.pyrogue at the REPL: tab completion of node names (the REPL run on a
-- pseudo-terminal by script(1)), print(dev) / tostring(var), the tree's
-- memory links in sl.graph() and a Device in sl.monitor.
local sl = require "streamlua"
local testing = require "streamlua.testing"

local pr = sl.pyrogue

-- A started tree: Top.AxiVersion with local variables, a command, an
-- array of devices Ch[0..1] and a sub-device, over an Emulate.
local function tree()
  local em = sl.memory.Emulate(4, 0x1000)
  local root = pr.Root{name = "Top", pollEn = false}
  local dev = pr.Device{name = "AxiVersion", memBase = em}
  dev:add(pr.LocalVariable{name = "ScratchPad", value = 0x1234, disp = "{:#08x}"})
  dev:add(pr.LocalVariable{name = "UpTime", value = 5, units = "s", pollInterval = 1})
  dev:add(pr.LocalVariable{name = "Secret", value = 1, hidden = true})
  dev:add(pr.LocalCommand{name = "Reset", func = function() end})
  for i = 0, 1 do
    local ch = pr.Device{name = ("Ch[%d]"):format(i)}
    ch:add(pr.LocalVariable{name = "Value", value = 10 + i, units = "mV"})
    dev:add(ch)
  end
  root:add(dev)
  return root, dev, em
end

describe("sl.pyrogue at the REPL", function()
  describe("tab completion", function()
    local dir
    setup(function() dir = temp_dir() end)
    teardown(function() remove_dir(dir) end)

    -- Runs the REPL on a pseudo-terminal with a tree in the global `root`;
    -- `keys` are typed once the loop runs (the script leaves a file then).
    local function repl(keys)
      local ready = dir .. "/ready"
      os.remove(ready)
      local init = dir .. "/init.lua"
      spit(init, ([[
        local pr = sl.pyrogue
        root = pr.Root{name = "Top", pollEn = false}
        local dev = pr.Device{name = "AxiVersion"}
        dev:add(pr.LocalVariable{name = "ScratchPad", value = 0x1234})
        dev:add(pr.LocalVariable{name = "Scale", value = 3})
        local ch = pr.Device{name = "Ch[0]"}
        ch:add(pr.LocalVariable{name = "Value", value = 7})
        dev:add(ch)
        root:add(dev)
        root:start()
        sl.after(0, function() io.open(%q, "w"):close() end)
      ]]):format(ready))
      local feed = ("i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; " ..
                    "printf %s"):format(shell_quote(ready), shell_quote(keys .. "os.exit(0)\n"))
      local out, err, rc = run("env STREAMLUA_HISTORY= script -qec " ..
        shell_quote(shell_quote(STREAMLUA_BIN) .. " -i " .. shell_quote(init)) .. " /dev/null",
        {feed = "sh -c " .. shell_quote(feed)})
      assert.are.equal(0, rc, err)
      return (out:gsub("\r", ""))
    end

    it("completes node names, array children and methods, not private fields", function()
      local out = repl("root.AxiVersion.Scr\t:get()\n" ..
                       "root.AxiVersion.Ch[0].Va\t:get()\n" ..
                       "root.AxiVersion.Sc\t\t\n" ..
                       "root.AxiVersion.Ch[0].Value:getD\t()\n" ..
                       "root.AxiVersion._n\t\n" ..
                       "root.AxiVersion.Ch[0]\tValue:get() + 100\n" ..
                       "x = {[tr\t] = 41}; print(x[true])\n")
      assert.matches("\n4660\n", out)                   -- ScratchPad:get()
      assert.matches("\n7\n", out)                      -- Ch[0].Value:get()
      assert.matches("root%.AxiVersion%.Scale +root%.AxiVersion%.ScratchPad", out)
      assert.matches("isp%(%)\n7\n", out)              -- Value:getDisp()
      assert.matches("%._n[^\n]*odes\n{EnableVariable%(Top%.AxiVersion%.enable%)", out)  -- _nodes
      assert.matches("\n107\n", out)                    -- Ch[0]<TAB> adds the '.'
      assert.matches("\n41\n", out)                     -- [tr<TAB>: the keyword true
      local listed = out:match("root%.AxiVersion%.Scale[^\n]*")
      assert.is_nil(listed:match("_"))
    end)
  end)

  describe("print(dev) and tostring(var)", function()
    it("list the variables with values and units once the tree has started", function()
      local root, dev = tree()
      assert.equal("Device(AxiVersion)", tostring(dev))
      assert.equal("LocalVariable(UpTime)", tostring(dev.UpTime))
      root:start()
      assert.equal(table.concat({
        "Device(Top.AxiVersion)",
        "  enable      True",
        "  ScratchPad  0x001234",
        "  UpTime      5 s",
        "  Reset()",
        "  Ch[0]       Device(Top.AxiVersion.Ch[0])",
        "  Ch[1]       Device(Top.AxiVersion.Ch[1])"}, "\n"), tostring(dev))
      assert.equal("LocalVariable(Top.AxiVersion.UpTime) = 5 s", tostring(dev.UpTime))
      assert.equal("LocalVariable(Top.AxiVersion.ScratchPad) = 0x001234",
                   tostring(dev.ScratchPad))
      assert.equal("LocalCommand(Top.AxiVersion.Reset)", tostring(dev.Reset))
      dev.ScratchPad:set(0xabcd)
      assert.matches("\n  ScratchPad  0x00abcd\n", tostring(dev))
      root:stop()
      assert.matches("\n  ScratchPad  0x00abcd\n", tostring(dev))   -- values stay
    end)

    it("shows a variable whose value cannot be made as an error, and goes on", function()
      local root, dev = tree()
      dev:add(pr.LocalVariable{name = "Bad", value = 1,
                               localGet = function() error("no value", 0) end})
      root:start()
      sl.logging.setEmit(false)                   -- the variable logs its error
      local ok, text = pcall(tostring, dev)
      sl.logging.setEmit(true)
      assert.is_true(ok, text)
      assert.matches("\n  Bad +<error: [^\n]*no value>$", text)
      assert.matches("\n  UpTime +5 s\n", text)
      root:stop()
    end)
  end)

  describe("sl.graph()", function()
    it("shows the memory links: device hubs named by path, to memBase", function()
      local root, dev, em = tree()
      em.name = "repl-emulate"
      root:start()
      local g = sl.graph()
      local byName = {}
      for _, n in ipairs(g.nodes) do byName[n.name] = n end
      local function linked(from, to)
        for _, l in ipairs(g.links) do
          if l.from == byName[from].id and l.to == byName[to].id then return l end
        end
      end
      local l = linked("Top.AxiVersion", "repl-emulate")
      assert.is_truthy(l)
      assert.is_true(l.memory and l.primary)
      assert.is_truthy(linked("Top.AxiVersion.Ch[0]", "Top.AxiVersion"))
      assert.matches("\nTop%.AxiVersion %-> repl%-emulate%*", tostring(g))
      assert.is_truthy(rawequal(byName["Top.AxiVersion"].object, dev._hub))
      root:stop()
    end)

    it("shows each block to its device's hub; print(dev) makes no bus traffic", function()
      local count, bytes = 0, {}        -- transactions seen, memory by address
      local slave = sl.memory.Slave({doTransaction = function(_, t)
        count = count + 1
        local a, n = t:address(), t:size()
        if t:type() == sl.memory.Read or t:type() == sl.memory.Verify then
          local d = {}
          for i = 1, n do d[i] = bytes[a + i - 1] or "\0" end
          t:setData(table.concat(d))
        else
          local d = t:getData()
          for i = 1, n do bytes[a + i - 1] = d:sub(i, i) end
        end
        t:done()
      end}, 4, 0)
      slave.name = "repl-recorder"
      local root = pr.Root{name = "Top", pollEn = false}
      local dev = pr.Device{name = "Regs", offset = 0x100, memBase = slave}
      dev:add(pr.RemoteVariable{name = "A", offset = 0x4, bitSize = 32, base = pr.UInt,
                                disp = "{:#x}", units = "V"})
      dev:add(pr.RemoteVariable{name = "B", offset = 0x10, bitSize = 8, base = pr.UInt})
      root:add(dev)
      root:start()
      dev.A:set(0x55)
      local before = count
      assert.equal("Device(Top.Regs)\n  enable  True\n  A       0x55 V\n  B       0x0", tostring(dev))
      assert.equal("RemoteVariable(Top.Regs.A) = 0x55 V", tostring(dev.A))
      assert.equal(before, count)
      local text = tostring(sl.graph())
      assert.matches("\nTop%.Regs@0x4 %-> Top%.Regs%*", text)
      assert.matches("\nTop%.Regs@0x10 %-> Top%.Regs%*", text)
      assert.matches("\nTop%.Regs %-> repl%-recorder%*", text)
      root:stop()
    end)

    it("keeps a memory master out of sl.monitor's default sinks", function()
      local m, s = sl.stream.Master(), sl.stream.Slave()
      s.name = "repl-sink"
      _ = m >> s
      local hub = sl.memory.Hub(0)
      hub.name = "repl-hub"
      hub:setSlave(sl.memory.Emulate(4, 0x100))
      local lines = {}
      local t = sl.monitor(0.02, nil, function(l) lines[#lines + 1] = l end)
      assert.is_true(testing.serveUntil(function() return #lines >= 1 end, 20))
      t:cancel()
      assert.matches("repl%-sink", lines[1])
      assert.is_nil(lines[1]:find("repl-hub", 1, true))
    end)
  end)

  describe("sl.monitor(period, dev)", function()
    it("prints the device's polled variables each period", function()
      local root, dev = tree()
      root:start()
      assert.equal("Top.AxiVersion: UpTime=5 s", dev:monitorText())
      local lines = {}
      local t = sl.monitor(0.02, dev, function(l) lines[#lines + 1] = l end)
      assert.is_true(testing.serveUntil(function() return #lines >= 1 end, 20))
      dev.UpTime:set(6)
      local n = #lines
      assert.is_true(testing.serveUntil(function() return #lines > n end, 20))
      t:cancel()
      assert.matches("^%d%d:%d%d:%d%d Top%.AxiVersion: UpTime=5 s$", lines[1])
      assert.matches("^%d%d:%d%d:%d%d Top%.AxiVersion: UpTime=6 s$", lines[#lines])
      root:stop()
    end)

    it("shows a device's own variables when none is polled, beside stream rates", function()
      local root, dev = tree()
      root:start()
      assert.equal("Top.AxiVersion.Ch[1]: enable=True  Value=11 mV", dev.Ch[1]:monitorText())
      local m, s = sl.stream.Master(), sl.stream.Slave()
      s.name = "mon-dev-sink"
      _ = m >> s
      local lines = {}
      local t = sl.monitor(0.02, {dev.Ch[0], s}, function(l) lines[#lines + 1] = l end)
      assert.is_true(testing.serveUntil(function() return #lines >= 1 end, 20))
      t:cancel()
      assert.matches("^%d%d:%d%d:%d%d Top%.AxiVersion%.Ch%[0%]: enable=True  Value=10 mV | " ..
                     "mon%-dev%-sink 0 fr/s 0%.0 MB/s drops 0$", lines[1])
      root:stop()
    end)
  end)
end)
