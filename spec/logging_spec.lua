local sl = require "streamlua"
local L = sl.logging

describe("sl.logging", function()
  local saved
  before_each(function() saved = L.getLevel(); L.setEmit(false) end)
  after_each(function() L.setLevel(saved); L.setEmit(true) end)

  it("has Rogue's level numbers", function()
    assert.are.equal(50, L.Critical)
    assert.are.equal(40, L.Error)
    assert.are.equal(35, L.Thread)
    assert.are.equal(30, L.Warning)
    assert.are.equal(20, L.Info)
    assert.are.equal(10, L.Debug)
  end)

  it("the global level defaults to Error and can be set", function()
    assert.are.equal(L.Error, L.levelOf("spec.fresh.logger"))
    L.setLevel(L.Warning)
    assert.are.equal(30, L.getLevel())
    assert.are.equal(30, L.levelOf("spec.fresh.logger"))
    L.setLevel("debug")
    assert.are.equal(10, L.getLevel())
  end)

  it("writes a record only at or above the effective level", function()
    L.setLevel(L.Error)
    local before = #L.history()
    L.log("spec.quiet", L.Info, "not shown")
    assert.are.equal(before, #L.history())
    L.log("spec.quiet", L.Error, "shown")
    local h = L.history(1)[1]
    assert.matches("^%d+%.%d%d%d%d%d%d ERROR spec.quiet: shown$", h)
  end)

  it("a filter makes a name prefix more verbose, with or without pyrogue.", function()
    L.setLevel(L.Error)
    L.setFilter("pyrogue.spec.filtered", L.Debug)
    assert.are.equal(10, L.levelOf("spec.filtered.child"))
    assert.are.equal(10, L.levelOf("pyrogue.spec.filtered.child"))
    assert.are.equal(40, L.levelOf("spec.other"))
    L.setFilter("spec.info", "Info")
    assert.are.equal(20, L.levelOf("spec.info.x"))
    -- a filter never makes a logger quieter than the global level
    L.setFilter("spec.loud", L.Critical)
    L.setLevel(L.Warning)
    assert.are.equal(30, L.levelOf("spec.loud.x"))
  end)

  it("history returns the newest lines, oldest first", function()
    L.log("spec.h", L.Error, "one")
    L.log("spec.h", L.Error, "two")
    local h = L.history(2)
    assert.matches("one$", h[1])
    assert.matches("two$", h[2])
    assert.are.equal(0, #L.history(0))
  end)

  it("log() writes every record: a script's own lines are not limited", function()
    L.setLevel(L.Error)
    for i = 1, 3 do L.log("spec.each", L.Error, "attempt " .. i .. " failed") end
    local h = L.history(3)
    for i = 1, 3 do assert.matches("ERROR spec.each: attempt " .. i .. " failed$", h[i]) end
  end)

  it("the repeat window is 1 s by default, can be set, and 0 turns the limit off", function()
    assert.are.equal(1, L.getRepeatWindow())
    L.setRepeatWindow(0.25)
    assert.are.equal(0.25, L.getRepeatWindow())
    L.setRepeatWindow(0)
    assert.are.equal(0, L.getRepeatWindow())
    L.setRepeatWindow(1)
    assert.are.equal(1, L.getRepeatWindow())
  end)

  it("alike records from a node are counted and told by flush", function()
    -- a Lua slave that fails on every frame: the node logs each failure
    local s = sl.stream.Slave{acceptFrame = function() error("bad frame", 0) end}
    local m = sl.stream.Master()
    _ = m >> s
    L.flush()
    L.setRepeatWindow(3600)
    for _ = 1, 5 do m:sendFrame(require("streamlua.testing").frame("x")) end
    local h = L.history(2)
    L.flush()
    L.setRepeatWindow(1)
    assert.matches("ERROR stream%.Slave: bad frame\n", h[2])
    assert.matches("ERROR stream%.Slave: bad frame\n.* %(repeated 4 times in the last [%d.]+ s%)$",
                   L.history(1)[1])
  end)

  it("the running loop tells a count once its window has passed, without flush()", function()
    local testing = require "streamlua.testing"
    local s = sl.stream.Slave{acceptFrame = function() error("tick frame", 0) end}
    local m = sl.stream.Master()
    _ = m >> s
    L.flush()
    L.setRepeatWindow(0.2)
    for _ = 1, 3 do m:sendFrame(testing.frame("x")) end
    local told = testing.serveUntil(function()
      return (L.history(1)[1] or ""):match("tick frame\n.*%(repeated 2 times in the last") ~= nil
    end, 30)
    L.setRepeatWindow(1)
    assert.is_true(told)
  end)

  it("checks its arguments", function()
    assert.has_error(function() L.setLevel("loud") end,
      "bad argument #1 to 'setLevel' (unknown level 'loud')")
    assert.has_error(function() L.setLevel(101) end)
    assert.has_error(function() L.setFilter(1) end)
    assert.has_error(function() L.log("x", L.Error) end)
    assert.has_error(function() L.history(-1) end)
    assert.has_error(function() L.setEmit() end)
    assert.has_error(function() L.setRepeatWindow(-1) end,
      "bad argument #1 to 'setRepeatWindow' (seconds in [0, 1e9] expected)")
    assert.has_error(function() L.setRepeatWindow(0 / 0) end)
    assert.has_error(function() L.setRepeatWindow() end)
  end)
end)
