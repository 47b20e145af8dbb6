-- The streamlua host program, run as a user runs it: options, `arg`,
-- script errors, stdin, and the REPL over a pipe while the loop runs.
-- STREAMLUA_BIN names the binary (default build/streamlua). Every process
-- is bounded by `timeout 60`; a step that depends on another (input after
-- a timer fired, a signal once a loop runs) waits for its output instead
-- of sleeping.

local BIN = STREAMLUA_BIN

local q = shell_quote
local run_command = run

-- Runs `BIN args` (args already quoted), stdin from `feed` (a shell
-- command piped in) or /dev/null. Returns stdout, stderr, exit code;
-- `merged` sends stderr into stdout, to check the order of the two.
local function run(args, feed, merged)
  return run_command(q(BIN) .. " " .. args, {feed = feed, merged = merged})
end

local function version()
  local f = io.open("src/include/streamlua/version.h")
  local v = f and f:read("a"):match('#define SL_VERSION "([^"]+)"')
  if f then f:close() end
  return v or "%d+%.%d+%.%d+"
end

describe("streamlua host", function()
  local dir

  setup(function()
    dir = temp_dir()
  end)

  teardown(function()
    remove_dir(dir)
  end)

  local function script(name, text)
    local path = dir .. "/" .. name
    spit(path, text)
    return path
  end

  describe("options", function()
    it("--version and -v print the streamlua and Lua versions", function()
      for _, opt in ipairs{"--version", "-v"} do
        local out, err, rc = run(opt)
        assert.are.equal(0, rc)
        assert.are.equal("", err)
        assert.truthy(out:match("^streamlua " .. version():gsub("%.", "%%.")))
        assert.truthy(out:find("Lua 5.4", 1, true))
      end
    end)

    it("--help and -h print the usage", function()
      for _, opt in ipairs{"--help", "-h"} do
        local out, _, rc = run(opt)
        assert.are.equal(0, rc)
        assert.truthy(out:match("^usage: streamlua %[options%] %[script %[args%]%]"))
        assert.truthy(out:find("-e stat", 1, true))
        assert.truthy(out:find("-i ", 1, true))
      end
    end)

    it("rejects an unknown option with the usage on stderr", function()
      local out, err, rc = run("-z")
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.truthy(err:find("unrecognized option '-z'", 1, true))
      assert.truthy(err:find("usage: streamlua", 1, true))
      out, err, rc = run("-e")
      assert.are.equal(1, rc)
      assert.truthy(err:find("'-e' needs argument", 1, true))
    end)
  end)

  describe("scripts", function()
    it("see arg and ... as the stock interpreter gives them", function()
      local s = script("args.lua", [[
print(arg[-1], arg[0], #arg, arg[1], arg[2])
print(select("#", ...), ...)
]])
      local out, err, rc = run(q(s) .. " one 'two words'")
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.are.equal(BIN .. "\t" .. s .. "\t2\tone\ttwo words\n" ..
                       "2\tone\ttwo words\n", out)
      -- the same script under lua5.4 differs only in the program name
      local p = io.popen("timeout 10 lua5.4 " .. q(s) .. " one 'two words'")
      local ref = p:read("a")
      p:close()
      assert.are.equal(ref:gsub("^lua5.4\t", BIN .. "\t"), out)
    end)

    it("run -e chunks in order, before the script, with sl preloaded", function()
      local s = script("after_e.lua", "print(x, arg[-5], arg[-4], arg[-3], arg[-2], arg[0], #arg)\n")
      local out, err, rc = run("-e 'x = 5' -e 'print(type(sl), rawequal(sl, require \"streamlua\"))' " .. q(s))
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.are.equal("table\ttrue\n5\t" .. BIN .. "\t-e\tx = 5\t-e\t" .. s .. "\t0\n", out)
    end)

    it("-e alone runs and exits without a REPL", function()
      local out, _, rc = run("-e 'print(1 + 1)'", "printf 'print(\"repl\")\\n'")
      assert.are.equal(0, rc)
      assert.are.equal("2\n", out)
    end)

    it("-l loads a library into a global", function()
      local out, _, rc = run("-l streamlua -e 'print(rawequal(streamlua, sl))'")
      assert.are.equal(0, rc)
      assert.are.equal("true\n", out)
    end)

    it("report an error with a traceback and exit 1", function()
      local s = script("boom.lua", "local x = 1\nlocal function f()\n  error('kaboom')\nend\nf()\n")
      local out, err, rc = run(q(s))
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.truthy(err:find("^streamlua: " .. s:gsub("%p", "%%%0") .. ":3: kaboom\n"))
      assert.truthy(err:find("stack traceback:", 1, true))
      assert.truthy(err:find(s .. ":5: in main chunk", 1, true))
    end)

    it("report a syntax error and exit 1", function()
      local s = script("bad.lua", "x = = 1\n")
      local _, err, rc = run(q(s))
      assert.are.equal(1, rc)
      assert.truthy(err:find("^streamlua: " .. s:gsub("%p", "%%%0") .. ":1: "))
    end)

    it("'-' reads the script from stdin", function()
      local out, err, rc = run("- a b", "printf 'print(\"from stdin\", ...)\\nprint(arg[0])\\n'")
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.are.equal("from stdin\ta\tb\n-\n", out)
    end)

    it("os.exit works and keeps its status", function()
      local _, _, rc = run("-e 'os.exit(7)'")
      assert.are.equal(7, rc)
      _, _, rc = run("-e 'os.exit(false)'")
      assert.are.equal(1, rc)
    end)
  end)

  describe("REPL over a pipe", function()
    local session = [[printf '1+1\nx = 3\nx*2\nfor i=1,2 do\nprint(i)\nend\nerror("boom")\nprint("after")\n']]

    it("prints values, continues statements, reports errors, goes on", function()
      local out, err, rc = run("", session)
      assert.are.equal(0, rc)
      assert.are.equal("2\n6\n1\n2\nafter\n", out)  -- no prompts on a pipe
      assert.truthy(err:find("^streamlua: stdin:1: boom\n"))
      assert.truthy(err:find("stack traceback:", 1, true))
    end)

    it("keeps results and errors in order", function()
      local out, _, rc = run("", session, true)
      assert.are.equal(0, rc)
      assert.truthy(out:find("^2\n6\n1\n2\nstreamlua: stdin:1: boom\n.*\nafter\n$"))
    end)

    it("prints all results tab-separated, and bare operator expressions", function()
      local out, err, rc = run("", [[printf '1, "a", nil\nt = setmetatable({}, {__shr = function() return "joined" end})\nt >> t\n= 40 + 2\n']])
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.are.equal("1\ta\tnil\njoined\n42\n", out)
    end)

    it("evaluates a last line without a newline", function()
      local out, _, rc = run("", "printf 'print(1)\\n2+3'")
      assert.are.equal(0, rc)
      assert.are.equal("1\n5\n", out)
    end)

    it("reports a statement left open at end of input", function()
      local out, err, rc = run("", "printf 'for i=1,2 do\\n'")
      assert.are.equal(0, rc)
      assert.are.equal("", out)
      assert.truthy(err:find("^streamlua: stdin:1: 'end' expected near <eof>\n"))
    end)

    it("-i opens the REPL with the script's globals", function()
      local s = script("globals.lua", "x = 41\nfunction twice(v) return 2 * v end\n")
      local out, err, rc = run("-i " .. q(s), "printf 'x\\ntwice(x + 1)\\n'")
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.are.equal("41\n84\n", out)
    end)

    it("serves timers while waiting for input", function()
      -- the next line is sent once the timer has printed (or after 20 s):
      -- only a REPL that serves timers while it waits prints tick first
      local outf, errf = os.tmpname(), os.tmpname()
      local p = io.popen(string.format([[
        (printf 'sl.after(0.05, function() print("tick") io.stdout:flush() end)\n'
         i=0; until grep -q tick %s || [ $i -ge 2000 ]; do sleep 0.01; i=$((i+1)); done
         printf 'print("end")\n') | timeout 60 %s >%s 2>%s; echo "@rc=$?"]],
        q(outf), q(BIN), q(outf), q(errf)))
      local rc = tonumber(p:read("a"):match("@rc=(%d+)"))
      p:close()
      local out, err = slurp(outf), slurp(errf)
      os.remove(outf); os.remove(errf)
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      local tick, done = out:find("tick\n", 1, true), out:find("end\n", 1, true)
      assert.truthy(tick and done and tick < done, "got: " .. out)
    end)

    it("os.exit ends the session with its status", function()
      local out, _, rc = run("", "printf 'print(1)\\nos.exit(3)\\nprint(2)\\n'")
      assert.are.equal(3, rc)
      assert.are.equal("1\n", out)
    end)

    it("reads a plain file on stdin", function()
      local s = script("input.txt", "print('file')\n6*7\n")
      local p = io.popen("timeout 10 " .. q(BIN) .. " < " .. q(s) .. " 2>&1; echo \"@rc=$?\"")
      local out = p:read("a")
      p:close()
      assert.are.equal("file\n42\n@rc=0\n", out)
    end)
  end)

  describe("Ctrl-C (SIGINT)", function()
    -- SIGINT is sent once the program has printed `marker` (its loop runs),
    -- or after 20 s; a program still alive 20 s after it is killed, and
    -- `@rc=99` is reported. After the signal, `after` (if any) is fed on
    -- stdin. The loops allocate: under ThreadSanitizer a signal waits for
    -- the thread's next intercepted call (malloc is one).
    local function interrupted(args, marker, first, after)
      local outf, errf, flag = os.tmpname(), os.tmpname(), os.tmpname()
      os.remove(flag)
      local feed = first and string.format(
        "(printf %s; i=0; until [ -e %s ] || [ $i -ge 6000 ]; do sleep 0.01; i=$((i+1)); done; " ..
        "printf %s) | ", q(first), q(flag), q(after or "")) or ""
      local cmd = string.format([[
        %s %s %s %s >%s 2>%s &
        pid=$!
        i=0; until grep -q %s %s || [ $i -ge 2000 ]; do sleep 0.01; i=$((i+1)); done
        kill -INT $pid; touch %s
        i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done
        if kill -0 $pid 2>/dev/null; then kill -9 $pid; wait $pid; echo "@rc=99"
        else wait $pid; echo "@rc=$?"; fi]],
        feed, q(BIN), args, first and "" or "</dev/null", q(outf), q(errf),
        q(marker), q(outf), q(flag))
      local p = assert(io.popen(cmd))
      local rc = tonumber(p:read("a"):match("@rc=(%d+)"))
      p:close()
      local out, err = slurp(outf), slurp(errf)
      for _, f in ipairs{outf, errf, flag} do os.remove(f) end
      return out, err, rc
    end

    it("stops a runaway Lua loop with an error, threads running or not", function()
      local out, err, rc = interrupted(
        [[-e 'local f = sl.stream.Fifo(0, 0, true); print("looping"); io.stdout:flush(); ]] ..
        [[while true do local t = {} end']], "looping")
      assert.are.equal(1, rc)
      assert.are.equal("looping\n", out)
      assert.truthy(err:find("^streamlua: interrupted!\n"), err)
    end)

    it("at the REPL ends the line that runs and the session goes on", function()
      local out, err, rc = interrupted("", "looping",
        'x = 0\nwhile true do x = x + 1; if x == 1 then print("looping") io.stdout:flush() end; local t = {} end\n',
        'print(x > 0)\n')
      assert.are.equal(0, rc)
      assert.are.equal("looping\ntrue\n", out)
      assert.truthy(err:find("^streamlua: interrupted!\n"), err)
    end)

    it("still stops sl.run() cleanly, and the script goes on", function()
      local out, err, rc = interrupted(
        [[-e 'sl.after(0, function() print("running") io.stdout:flush() end); ]] ..
        [[sl.run(); print("after run")']], "running")
      assert.are.equal(0, rc)
      assert.are.equal("", err)
      assert.are.equal("running\nafter run\n", out)
    end)
  end)

  it("starts and exits 20 times in a row (the mean start-up is reported)", function()
    local p = io.popen("s=$(date +%s%N); for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do " ..
      "timeout 60 " .. q(BIN) .. " -e '' </dev/null >/dev/null || exit 1; done; e=$(date +%s%N); echo $(( (e - s) / 20000 ))")
    local us = tonumber(p:read("a"))
    p:close()
    assert.truthy(us, "the runs failed")
    -- a figure, not a check: a loaded machine makes any bound a guess
    print(string.format("\n  mean start-up %d us", us))
  end)
end)
