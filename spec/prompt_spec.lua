-- The prompt: objects and tables as text (tostring, sl.show), completion of
-- objects' methods, hints for other languages' habits, sl.interactive()
-- and -i. The REPL runs on a pseudo-terminal made by script(1).
local sl = require "streamlua"

local bin = STREAMLUA_BIN

-- Runs `streamlua -i init.lua` on a pseudo-terminal; once the script's
-- loop turn has come (it leaves a file then), types `keys` and then
-- os.exit(0). Returns what the terminal showed, without carriage returns.
-- `keys` may be a list: strings are typed, {touch = f} makes file f,
-- {file = f} waits (60 s at most) until file f exists, {shown = text,
-- times = n} until the terminal has shown text n times.
-- A string is typed only while the terminal is out of canonical mode (the
-- line editor waits at a prompt, or sl.top runs): keys that came while a
-- line ran, the terminal cooked, would be echoed by the terminal itself,
-- wherever the output was then. Lines typed in one write all reach the
-- terminal in the mode of that moment, so several lines go as one string,
-- os.exit(0) with the last one; a string typed after another line's
-- string waits for something that line shows first.
local function pty(dir, init, keys)
  local ready, log, tty = dir .. "/ready", dir .. "/typescript", dir .. "/tty"
  os.remove(ready)
  os.remove(log)
  os.remove(tty)
  local path = dir .. "/init.lua"
  spit(path, init .. ("\nos.execute(%q)\nsl.after(0, function() io.open(%q, 'w'):close() end)\n"):format(
    "tty > " .. shell_quote(tty), ready))
  local raw = ('stty -F "$(cat %s)" -a 2>/dev/null | grep -q -F -e -icanon'):format(shell_quote(tty))
  if type(keys) == "string" then keys = {keys} end
  local steps = {{file = ready}}
  for _, k in ipairs(keys) do steps[#steps + 1] = k end
  if type(steps[#steps]) == "string" then   -- in the same write: see above
    steps[#steps] = steps[#steps] .. "os.exit(0)\n"
  else
    steps[#steps + 1] = "os.exit(0)\n"
  end
  local feed = {}
  for _, k in ipairs(steps) do
    local cond = type(k) == "table" and not k.touch and (k.file and ("[ -e %s ]"):format(shell_quote(k.file)) or
      ('[ "$(grep -o -F %s %s 2>/dev/null | wc -l)" -ge %d ]'):format(
        shell_quote(k.shown), shell_quote(log), k.times or 1))
    feed[#feed + 1] = cond and ("i=0; until %s || [ $i -ge 1200 ]; do sleep 0.05; i=$((i+1)); done"):format(cond)
                      or type(k) == "table" and ("touch %s"):format(shell_quote(k.touch))
                      or ("i=0; until %s || [ $i -ge 1200 ]; do sleep 0.05; i=$((i+1)); done; printf %s"):format(
                           raw, shell_quote(k))
  end
  local out, err, rc = run("env STREAMLUA_HISTORY= script -qfec " ..
    shell_quote(shell_quote(bin) .. " -i " .. shell_quote(path)) .. " " .. shell_quote(log),
    {feed = "sh -c " .. shell_quote(table.concat(feed, "; "))})
  assert.are.equal(0, rc, err .. out)
  return (out:gsub("\r", ""))
end

describe("the prompt", function()
  describe("tostring of an object", function()
    it("gives its kind, its name and its key counters", function()
      local f = sl.stream.Fifo(4, 0, false)
      assert.matches("^Fifo#%d+ rxFrames 0 txFrames 0 depth 0/4 drops 0$", tostring(f))
      f.name = "tap"
      local m = sl.stream.Master()
      _ = m >> f
      local fr = m:reqFrame(8, true)
      fr:write("12345678")
      m:sendFrame(fr)
      assert.matches('^Fifo "tap" rxFrames 1 txFrames [01] depth [01]/4 drops 0$', tostring(f))
      assert.matches('^Fifo#%d+ rxFrames 0 txFrames 0 depth 0 drops 0$', tostring(sl.stream.Fifo(0)))
      assert.matches("^Master#%d+$", tostring(m))
      assert.matches('^RateDrop#%d+ txFrames 0 drops 0$', tostring(sl.stream.RateDrop(true, 1)))
      f:stop()
    end)

    it("says when the object is closed", function()
      local s = sl.stream.Slave()
      getmetatable(s).__close(s)
      assert.equal("streamlua.Slave (closed)", tostring(s))
    end)
  end)

  describe("sl.show", function()
    it("lists a table one level deep: its sequence, then its keys sorted", function()
      local f = sl.stream.Fifo(4, 0, false)
      f.name = "q"
      assert.equal('{1, "two", {...}, {}, [true] = 1, b = true, q = Fifo "q" rxFrames 0 ' ..
                   'txFrames 0 depth 0/4 drops 0, ["x y"] = 3}',
                   sl.show({1, "two", {5}, {}, q = f, b = true, ["x y"] = 3, [true] = 1}))
      assert.equal("{}", sl.show({}))
    end)

    it("leaves anything else, and tables that print themselves, to tostring", function()
      assert.equal("abc", sl.show("abc"))
      assert.equal("12", sl.show(12))
      assert.equal("nil", sl.show(nil))
      assert.equal("me", sl.show(setmetatable({}, {__tostring = function() return "me" end})))
    end)

    it("lists at most 40 entries and counts the rest", function()
      local t = {}
      for i = 1, 45 do t[i] = i end
      t.x = 1
      local text = sl.show(t)
      assert.matches("^{1, 2, 3, ", text)
      assert.matches(", 40, %.%.%. %(6 more%)}$", text)
    end)
  end)

  describe("sl.interactive", function()
    it("is false under a plain script and -e, true under -i and the prompt", function()
      assert.is_false(sl.interactive())
      local out = run(shell_quote(bin) .. " -e 'print(sl.interactive())'")
      assert.equal("false\n", out)
      out = run(shell_quote(bin) .. " -i -e 'x = sl.interactive()'", {input = "print(x)\n"})
      assert.equal("true\n", out)
      out = run(shell_quote(bin), {input = "print(sl.interactive())\n"})
      assert.equal("true\n", out)
    end)
  end)

  describe("typed at the prompt", function()
    it("echoes objects and tables by sl.show", function()
      local out = run(shell_quote(bin), {input =
        "f = sl.stream.Fifo(4, 0, false); f.name = 'tap'\nf\n{1, a = f}\n'text'\n"})
      assert.equal('Fifo "tap" rxFrames 0 txFrames 0 depth 0/4 drops 0\n' ..
                   '{1, a = Fifo "tap" rxFrames 0 txFrames 0 depth 0/4 drops 0}\ntext\n', out)
    end)

    it("hints at '_ = a >> b' when a link is written as a statement", function()
      local out, err = run(shell_quote(bin), {input =
        "m, s = sl.stream.Master(), sl.stream.Slave()\nm >> s; m >> s\nm >> s\nprint(m:_slaveCount())\n"})
      assert.matches("syntax error near '>>'\n  hint: Lua takes 'a >> b' only as a value: " ..
                     "write '_ = a >> b'", err, 1, true)
      assert.matches("Slave#%d+ rxFrames 0\n1\n", out)   -- one line is a value: it links
    end)

    it("hints at true, false and nil for True, False and None, once a statement", function()
      local out, err = run(shell_quote(bin), {input =
        "x = True\nprint(x, None, None)\nfunction f() return False end\nprint(f())\n" ..
        "True = 1\nprint(True)\n"})
      assert.equal("nil\tnil\tnil\nnil\n1\n", out)
      local _, n = err:gsub("hint: 'None' is not defined %(nil%); Lua writes nil", "")
      assert.equal(1, n)
      assert.matches("hint: 'True' is not defined %(nil%); Lua writes true", err)
      assert.matches("hint: 'False' is not defined %(nil%); Lua writes false", err)
    end)

    it("reads and writes the script's globals; a script gets no hint", function()
      local dir = temp_dir()
      spit(dir .. "/s.lua", "answer = 41\nprint(True)\n")
      local out, err = run(shell_quote(bin) .. " -i " .. shell_quote(dir .. "/s.lua"),
        {input = "answer = answer + 1\nprint(answer, rawget(_G, 'answer'))\n" ..
                 "for k in pairs(_ENV) do if k == 'answer' then print('listed') end end\n"})
      remove_dir(dir)
      assert.equal("nil\n42\t42\nlisted\n", out)
      assert.equal("", err)
    end)
  end)

  describe("examples under -i", function()
    it("monitor_tap.lua leaves its generator running and its nodes in globals", function()
      local out, err, rc = run(shell_quote(bin) .. " -i examples/monitor_tap.lua 0.3 4096",
        {input = "local a, t0 = check:getRxCount(), sl.now(); " ..
                 "while check:getRxCount() <= a and sl.now() - t0 < 20 do sl.sleep(0.01) end; " ..
                 "print('moving', check:getRxCount() > a)\n"})
      assert.are.equal(0, rc, err)
      assert.matches("\nmoving\ttrue\n", out)
    end)

    it("axiversion.lua leaves its tree started", function()
      local out, err, rc = run(shell_quote(bin) .. " -i examples/axiversion.lua 1",
        {input = "print(root.AxiVersion.ScratchPad:get())\n"})
      assert.are.equal(0, rc, err)
      assert.matches("\n4660\n$", out)
    end)
  end)

  describe("on a terminal", function()
    local dir
    setup(function() dir = temp_dir() end)
    teardown(function() remove_dir(dir) end)

    it("completes an object's methods and fields, and a table's fields", function()
      local out = pty(dir, [[
        gen = sl.utilities.Prbs()
        fifo = sl.stream.Fifo(4, 0, false)
        fifo.name = "tap"
        sink = sl.stream.Slave()
        t = {alpha = 1, beta = {gamma = 2}}
      ]], "gen:getTxC\t()\n" ..
          "fifo:dropC\t()\n" ..
          "sink:getFrameC\t()\n" ..
          "fifo.na\t\n" ..
          "t.al\t + t.beta.gam\t\n" ..
          "fifo:s\t\tize() + 5\n")
      -- the terminal shows each completion as the rest of the word
      assert.matches("> gen:getTxC[^\n]*ount%(%)\n0\n", out)
      assert.matches("> fifo:dropC[^\n]*nt%(%)\n0\n", out)
      assert.matches("> sink:getFrameC[^\n]*ount%(%)\n0\n", out)
      assert.matches("> fifo%.na[^\n]*me\ntap\n", out)
      assert.matches("> t%.al[^\n]*pha %+ t%.beta%.gam[^\n]*ma\n3\n", out)
      local listed = out:match("> fifo:s[^\n]*\n(.-)\n[^\n]*> fifo:s") or ""   -- the choices
      for _, m in ipairs({"sendFrame", "setDebug", "size", "slaveCount", "stop"}) do
        assert.matches("fifo:" .. m .. "%f[%s]", listed)
      end
      assert.is_nil(listed:find("fifo:dropCnt", 1, true))
      assert.matches("ize%(%) %+ 5\n5\n", out)
      assert.is_nil(out:find("fifo:_", 1, true))                   -- no private names
    end)

    it("after a script, points to sl.graph, sl.top and sl.monitor and echoes objects", function()
      local out = pty(dir, [[
        q = sl.stream.Fifo(100, 0, false)
        q.name = "tap"
      ]], "q\n")
      assert.matches("the graph runs on: sl%.graph%(%) lists it, sl%.top%(%) watches it, " ..
                     "sl%.monitor%(1%) prints its rates\n", out)
      assert.matches('\nFifo "tap" rxFrames 0 txFrames 0 depth 0/100 drops 0\n', out)
    end)

    it("sl.top() draws every node each period until a key, and gives the terminal back", function()
      local out = pty(dir, [[
        gen, q = sl.utilities.Prbs(), sl.stream.Fifo(100, 0, false)
        gen.name, q.name = "top-gen", "top-q"
        _ = gen >> q
        gen:setTxPeriod(1000)
        gen:enable(1000)
        function modes()   -- the terminal's line editing and echo, then a mark
          os.execute("stty -a | grep -o -e -icanon -e icanon -e -echo -e echo | head -2")
          print("modes shown")
        end
      ]], {"sl.top(0.05); modes()\n", {shown = "any key quits", times = 3}, "q",
           {shown = "modes shown"},
           "sl.top(0.05); print('after Ctrl-C')\n", {shown = "any key quits", times = 5}, "\3",
           {shown = "after Ctrl-C", times = 2},
           "sl.after(0, function() print(pcall(sl.top, 0.05)) end); sl.sleep(0.05)\n",
           {shown = "already running"}, "modes()\n", {shown = "modes shown", times = 2}})
      assert.matches("\027%[%?1049h", out)                      -- a screen of its own
      assert.matches("streamlua top  %d%d:%d%d:%d%d  every 0%.05 s  any key quits\n" ..
                     "NAME +CLASS +FR/S +MB/S +DROPS +DEPTH\n", out)
      assert.matches("\ntop%-gen +Prbs +[%d%.]+k? +[%d%.]+ +0 +%-", out)
      assert.matches("\ntop%-q +Fifo +[%d%.]+k? +[%d%.]+ +0 +%d+", out)
      assert.matches("\027%[%?1049licanon\necho\nmodes shown\n", out)   -- cooked after a key
      assert.matches("\027%[%?1049lafter Ctrl%-C\n", out)        -- Ctrl-C is a key too
      assert.matches("false\t[^\n]*the loop is already running", out)   -- an error
      assert.matches("\nicanon\necho\nmodes shown\n> os%.exit%(0%)\n$", out)   -- after the error too
    end)

    it("prints sl.monitor's lines above the line being typed", function()
      local out = pty(dir, ([[
        q = sl.stream.Fifo(4, 0, false)
        q.name = "mon-q"
        local started
        local function exists(p) local f = io.open(p) if f then f:close() return true end end
        sl.every(0.05, function()
          if not started and exists(%q) then
            started = true
            local lines = 0
            sl.monitor(0.05, nil, function(l)   -- three lines, then quiet
              lines = lines + 1
              if lines <= 3 then print(l) end
              if lines == 3 then io.open(%q, "w"):close() end
            end)
          end
        end)
      ]]):format(dir .. "/typed", dir .. "/printed"),
        -- typed and echoed, then the monitor starts; the rest is typed once
        -- it has printed its three lines, so none lands between the last two
        {"x = 4", {shown = "x = 4"}, {touch = dir .. "/typed"}, {file = dir .. "/printed"},
         " + 1\nprint(x)\n"})
      assert.matches("> x = 4\027%[K%d%d:%d%d:%d%d [^\n]*mon%-q 0 fr/s 0%.0 MB/s drops 0\n> x = 4", out)
      assert.matches("\n> x = 4 %+ 1\n> print%(x%)\n5\n", out)
    end)

    it("shows the hints", function()
      local out = pty(dir, "m, s = sl.stream.Master(), sl.stream.Slave()",
                      "m >> s; m >> s\nx = None\n")
      assert.matches("hint: Lua takes 'a >> b' only as a value", out, 1, true)
      assert.matches("hint: 'None' is not defined (nil); Lua writes nil", out, 1, true)
    end)
  end)
end)
