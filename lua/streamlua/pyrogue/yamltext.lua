-- YAML text for the register tree's configuration files: the emitter that
-- writes exactly what PyYAML's block-style dumper writes for a tree of
-- mappings and tagged scalars, and the loader that reads YAML 1.1 as
-- PyYAML's Loader does (implicit typing, document order of keys, `!include`)
-- on top of libyaml's event parser (lua-yaml).
--
--   local yt = require "streamlua.pyrogue.yamltext"
--   yt.emit(map)                 -> text
--   yt.map()                     -> an empty ordered mapping; m:put(key, value)
--   yt.scalar(tag, text)         -> a scalar to emit ("str", "int", "float",
--                                   "bool", "null")
--   yt.resolve(text)             -> the YAML 1.1 tag a plain scalar reads as
--   yt.load(text, fname)         -> the document's value (ordered mappings,
--                                   arrays, Lua scalars, yt.NULL); raises
--                                   "<fname>:<line>: <reason>"
--   yt.loadFile(path)            -> the same for a file (includes relative to it)
--
-- A loaded mapping keeps `keys` (in document order), `vals[key]`, and
-- `lines[key]` (the 1-based line of the key, for messages) plus `file`.

local M = {}

local NULL = setmetatable({}, {__tostring = function() return "null" end,
                               __name = "yaml.null"})
M.NULL = NULL

---------------------------------------------------------------------------
-- Ordered mappings

local Map = {}
Map.__index = Map

function M.map(file)
  return setmetatable({keys = {}, vals = {}, lines = {}, file = file}, Map)
end

function M.isMap(x)
  return getmetatable(x) == Map
end

-- A repeated key keeps its first place and takes the last value, like an
-- ordered dictionary built from the pairs.
function Map:put(key, value, line)
  if self.vals[key] == nil then
    self.keys[#self.keys + 1] = key
  end
  self.vals[key] = value
  if line then self.lines[key] = line end
  return self
end

function Map:get(key)
  return self.vals[key]
end

function Map:pairs()
  local i = 0
  return function()
    i = i + 1
    local k = self.keys[i]
    if k ~= nil then return k, self.vals[k] end
  end
end

function Map:len()
  return #self.keys
end

---------------------------------------------------------------------------
-- YAML 1.1 implicit resolution (the plain scalars PyYAML's resolver types)

local BOOLS = {}
for _, w in ipairs{"yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE",
                   "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF"} do
  BOOLS[w] = true
end
local NULLS = {["~"] = true, null = true, Null = true, NULL = true, [""] = true}
local INFS = {[".inf"] = true, [".Inf"] = true, [".INF"] = true}
local NANS = {[".nan"] = true, [".NaN"] = true, [".NAN"] = true}

-- ":d" or ":dd" (first digit 0-5) groups, at least one: "(?::[0-5]?[0-9])+".
local function base60Tail(s)
  if s == "" then return false end
  for piece in s:gmatch(":([^:]*)") do
    if not (piece:match("^[0-5]?[0-9]$")) then return false end
  end
  return s:sub(1, 1) == ":" and not s:find("::", 1, true) and s:sub(-1) ~= ":"
end

local function isInt(v)
  local s = v:match("^[-+]?(.*)$")
  if s:match("^0b[01_]+$") or s:match("^0[0-7_]+$") or s == "0"
     or s:match("^[1-9][0-9_]*$") or s:match("^0x[0-9a-fA-F_]+$") then
    return true
  end
  local tail = s:match("^[1-9][0-9_]*(:.*)$")
  return tail ~= nil and base60Tail(tail)
end

local function expOk(rest)
  return rest == "" or rest:match("^[eE][-+][0-9]+$") ~= nil
end

local function isFloat(v)
  if NANS[v] then return true end
  local rest = v:match("^%.[0-9][0-9_]*(.*)$")
  if rest and expOk(rest) then return true end
  local s = v:match("^[-+]?(.*)$")
  if INFS[s] then return true end
  rest = s:match("^[0-9][0-9_]*%.[0-9_]*(.*)$")
  if rest and expOk(rest) then return true end
  local tail = s:match("^[0-9][0-9_]*(:[0-9:]*)%.[0-9_]*$")
  return tail ~= nil and base60Tail(tail)
end

local function isTimestamp(v)
  if v:match("^%d%d%d%d%-%d%d%-%d%d$") then return true end
  local rest = v:match("^%d%d%d%d%-%d%d?%-%d%d?(.*)$")
  if not rest then return false end
  rest = rest:match("^[Tt](.*)$") or rest:match("^[ \t]+(.*)$")
  if not rest then return false end
  rest = rest:match("^%d%d?:%d%d:%d%d(.*)$")
  if not rest then return false end
  rest = rest:match("^%.%d*(.*)$") or rest
  if rest == "" then return true end
  rest = rest:match("^[ \t]*(.*)$")
  return rest == "Z" or rest:match("^[-+]%d%d?$") ~= nil
      or rest:match("^[-+]%d%d?:%d%d$") ~= nil
end

-- The tag ("bool", "int", "float", "null", "timestamp", "merge", "value" or
-- "str") that a plain scalar with this text reads back as.
function M.resolve(v)
  if NULLS[v] then return "null" end
  local c = v:sub(1, 1)
  if c:match("[yYnNtTfFoO]") and BOOLS[v] then return "bool" end
  if c:match("[-+0-9.]") then
    if isFloat(v) then return "float" end
    if c ~= "." and isInt(v) then return "int" end
    if isTimestamp(v) then return "timestamp" end
  end
  if v == "<<" then return "merge" end
  if v == "=" then return "value" end
  return "str"
end

---------------------------------------------------------------------------
-- Emitter

-- Code points of s (bytes that are not UTF-8 stand for themselves).
local function codepoints(s)
  local cps, i, n = {}, 1, #s
  while i <= n do
    local ok, cp = pcall(utf8.codepoint, s, i)
    local len
    if ok then
      len = #utf8.char(cp)
    else
      cp, len = s:byte(i), 1
    end
    cps[#cps + 1] = cp
    i = i + len
  end
  return cps
end

local SP, NL = 0x20, 0x0A
local function isBreak(c) return c == NL or c == 0x85 or c == 0x2028 or c == 0x2029 end
local function isWhite(c) return c == nil or c == 0 or c == SP or c == 0x09 or c == 0x0D or isBreak(c) end
local function charset(s)
  local t = {}
  for i = 1, #s do t[s:byte(i)] = true end
  return t
end
local FIRST_IND = charset("#,[]{}&*!|>'\"%@`")
local FLOW_IND = charset(",?[]{}")

-- What the dumper may do with a scalar (PyYAML's analysis; no unicode
-- allowed, so every character outside printable ASCII and newline is special).
local function analyze(text, cps)
  local n = #cps
  if n == 0 then
    return {empty = true, multiline = false, flowPlain = false, blockPlain = true,
            single = true}
  end
  local blockInd, flowInd, lineBreaks, special = false, false, false, false
  local leadSpace, leadBreak, trailSpace, trailBreak = false, false, false, false
  local breakSpace, spaceBreak = false, false
  if text:sub(1, 3) == "---" or text:sub(1, 3) == "..." then
    blockInd, flowInd = true, true
  end
  local precededWs = true
  local followedWs = n == 1 or isWhite(cps[2])
  local prevSpace, prevBreak = false, false
  for i = 1, n do
    local c = cps[i]
    if i == 1 then
      if FIRST_IND[c] then flowInd, blockInd = true, true end
      if c == 0x3F or c == 0x3A then
        flowInd = true
        if followedWs then blockInd = true end
      end
      if c == 0x2D and followedWs then flowInd, blockInd = true, true end
    else
      if FLOW_IND[c] then flowInd = true end
      if c == 0x3A then
        flowInd = true
        if followedWs then blockInd = true end
      end
      if c == 0x23 and precededWs then flowInd, blockInd = true, true end
    end
    if isBreak(c) then lineBreaks = true end
    if not (c == NL or (c >= 0x20 and c <= 0x7E)) then special = true end
    if c == SP then
      if i == 1 then leadSpace = true end
      if i == n then trailSpace = true end
      if prevBreak then breakSpace = true end
      prevSpace, prevBreak = true, false
    elseif isBreak(c) then
      if i == 1 then leadBreak = true end
      if i == n then trailBreak = true end
      if prevSpace then spaceBreak = true end
      prevSpace, prevBreak = false, true
    else
      prevSpace, prevBreak = false, false
    end
    precededWs = isWhite(c)
    followedWs = i + 1 >= n or isWhite(cps[i + 2])
  end
  local a = {empty = false, multiline = lineBreaks, flowPlain = true, blockPlain = true,
             single = true}
  if leadSpace or leadBreak or trailSpace or trailBreak then
    a.flowPlain, a.blockPlain = false, false
  end
  if breakSpace then a.flowPlain, a.blockPlain, a.single = false, false, false end
  if spaceBreak or special then a.flowPlain, a.blockPlain, a.single = false, false, false end
  if lineBreaks then a.flowPlain, a.blockPlain = false, false end
  if flowInd then a.flowPlain = false end
  if blockInd then a.blockPlain = false end
  return a
end

local WIDTH = 80

-- The writer state: output pieces, column, whitespace/indention flags, indent.
local W = {}
W.__index = W

local function writer()
  return setmetatable({out = {}, column = 0, whitespace = true, indention = true,
                       indent = 0}, W)
end

function W:raw(s, width)
  self.out[#self.out + 1] = s
  self.column = self.column + (width or #s)
end

function W:indicator(s, needWs, whitespace, indention)
  if not (self.whitespace or not needWs) then s = " " .. s end
  self.whitespace = whitespace or false
  self.indention = self.indention and (indention or false)
  self:raw(s)
end

function W:lineBreak()
  self.out[#self.out + 1] = "\n"
  self.whitespace, self.indention, self.column = true, true, 0
end

function W:writeIndent()
  local indent = self.indent
  if not self.indention or self.column > indent
     or (self.column == indent and not self.whitespace) then
    self:lineBreak()
  end
  if self.column < indent then
    self.whitespace = true
    self:raw(string.rep(" ", indent - self.column))
  end
end

local function sub(cps, i, j)   -- code points i..j-1 (0-based, like a slice) as UTF-8
  if j <= i then return "", 0 end
  local t = {}
  for k = i + 1, j do t[#t + 1] = utf8.char(cps[k]) end
  return table.concat(t), j - i
end

-- The line breaks cps[start..e) of a scalar: a leading newline is doubled
-- (a single one would fold into a space), then the next line is indented.
function W:breakRun(cps, start, e)
  if cps[start + 1] == NL then self:lineBreak() end
  for _ = start, e - 1 do self:lineBreak() end
  self:writeIndent()
end

-- The text of a plain or single-quoted scalar: words as they are, a single
-- space past the width becomes a new indented line, line breaks are
-- doubled, and (quoted) each ' is written twice.
function W:words(cps, split, quoted)
  local spaces, breaks, start, e, n = false, false, 0, 0, #cps
  while e <= n do
    local c = cps[e + 1]
    if spaces then
      if c ~= SP then
        if start + 1 == e and self.column > WIDTH and split and start ~= 0 and e ~= n then
          self:writeIndent()
          self.whitespace, self.indention = false, false
        else
          self:raw(sub(cps, start, e))
        end
        start = e
      end
    elseif breaks then
      if c == nil or not isBreak(c) then
        self:breakRun(cps, start, e)
        self.whitespace, self.indention = false, false
        start = e
      end
    elseif c == nil or c == SP or isBreak(c) or (quoted and c == 0x27) then
      if start < e then
        self:raw(sub(cps, start, e))
        start = e
      end
    end
    if quoted and c == 0x27 then
      self:raw("''")
      start = e + 1
    end
    if c ~= nil then spaces, breaks = c == SP, isBreak(c) end
    e = e + 1
  end
end

function W:plain(cps, split)
  if #cps == 0 then return end
  if not self.whitespace then self:raw(" ") end
  self.whitespace, self.indention = false, false
  self:words(cps, split, false)
end

function W:single(cps, split)
  self:indicator("'", true)
  self:words(cps, split, true)
  self:indicator("'", false)
end

local ESCAPES = {[0] = "0", [0x07] = "a", [0x08] = "b", [0x09] = "t", [0x0A] = "n",
                 [0x0B] = "v", [0x0C] = "f", [0x0D] = "r", [0x1B] = "e", [0x22] = '"',
                 [0x5C] = "\\", [0x85] = "N", [0xA0] = "_", [0x2028] = "L", [0x2029] = "P"}

function W:double(cps, split)
  self:indicator('"', true)
  local start, e, n = 0, 0, #cps
  while e <= n do
    local c = cps[e + 1]
    if c == nil or c == 0x22 or c == 0x5C or c == 0x85 or c == 0x2028 or c == 0x2029
       or c == 0xFEFF or not (c >= 0x20 and c <= 0x7E) then
      if start < e then
        self:raw(sub(cps, start, e))
        start = e
      end
      if c ~= nil then
        local esc
        if ESCAPES[c] then esc = "\\" .. ESCAPES[c]
        elseif c <= 0xFF then esc = string.format("\\x%02X", c)
        elseif c <= 0xFFFF then esc = string.format("\\u%04X", c)
        else esc = string.format("\\U%08X", c) end
        self:raw(esc)
        start = e + 1
      end
    end
    if e > 0 and e < n - 1 and (c == SP or start >= e)
       and self.column + (e - start) > WIDTH and split then
      local s, w = sub(cps, start, e)
      if start < e then start = e end
      self:raw(s .. "\\", w + 1)
      self:writeIndent()
      self.whitespace, self.indention = false, false
      if cps[start + 1] == SP then self:raw("\\") end
    end
    e = e + 1
  end
  self:indicator('"', false)
end

-- One scalar: `tag` is the tag the value carries, `simpleKey` for a key.
function W:scalar(tag, text, simpleKey)
  local cps = codepoints(text)
  local a = analyze(text, cps)
  local implicitPlain = M.resolve(text) == tag
  local implicitQuoted = tag == "str"
  local style
  if implicitPlain and not (simpleKey and (a.empty or a.multiline)) and a.blockPlain then
    style = "plain"
  elseif a.single and not (simpleKey and a.multiline) then
    style = "single"
  else
    style = "double"
  end
  if not ((style == "plain" and implicitPlain) or (style ~= "plain" and implicitQuoted)) then
    self:indicator("!!" .. tag, true)
  end
  local saved = self.indent
  self.indent = self.indent + 2
  local split = not simpleKey
  if style == "plain" then self:plain(cps, split)
  elseif style == "single" then self:single(cps, split)
  else self:double(cps, split) end
  self.indent = saved
end

-- A scalar to emit: the text `text` written with the YAML tag `tag`.
function M.scalar(tag, text)
  return {tag = tag, text = text}
end

function W:mapping(m, nested)
  if m:len() == 0 then
    self:indicator("{", true, true)
    self:indicator("}", false)
    return
  end
  local saved = self.indent
  if nested then self.indent = self.indent + 2 end
  for k, v in m:pairs() do
    self:writeIndent()
    self:scalar("str", tostring(k), true)
    self:indicator(":", false)
    if M.isMap(v) then
      self:mapping(v, true)
    else
      self:scalar(v.tag, v.text, false)
    end
  end
  self.indent = saved
end

-- The text PyYAML's dumper (block style, default width and indent, no
-- unicode) writes for the ordered mapping m.
function M.emit(m)
  local w = writer()
  w:mapping(m, false)
  w:writeIndent()
  return table.concat(w.out)
end

---------------------------------------------------------------------------
-- Loader

local yamlc = require "yaml"

local BOOL_VALUES = {yes = true, no = false, ["true"] = true, ["false"] = false,
                     on = true, off = false}

-- Base-60 groups "a:b:c" to a number.
local function base60(digits, frac)
  local r = 0
  for piece in digits:gmatch("[^:]+") do r = r * 60 + tonumber(piece) end
  return r + (frac or 0)
end

-- An integer's text as PyYAML builds it; the Lua integer, or the text itself
-- (for parseDisp) when it does not fit in 64 bits.
local function constructInt(text)
  local v = text:gsub("_", "")
  local sign = 1
  local c = v:sub(1, 1)
  if c == "-" then sign = -1 end
  if c == "-" or c == "+" then v = v:sub(2) end
  local r
  if v == "0" then return 0
  elseif v:sub(1, 2) == "0b" then r = tonumber(v:sub(3), 2)
  elseif v:sub(1, 2) == "0x" then
    if #v:sub(3):gsub("^0+", "") > 16 then return text end
    r = tonumber(v:sub(3), 16)
    if r and r < 0 and sign == 1 then return text end   -- above 2^63-1
  elseif v:sub(1, 1) == "0" then r = tonumber(v, 8)
  elseif v:find(":", 1, true) then r = base60(v)
  else
    r = math.tointeger(tonumber(v))
    if r == nil and sign == -1 and v == "9223372036854775808" then return math.mininteger end
    if r == nil then return text end   -- beyond 64 bits
  end
  if r == nil then return nil end
  return sign * r
end

local function constructFloat(text)
  local v = text:gsub("_", ""):lower()
  local sign = 1
  local c = v:sub(1, 1)
  if c == "-" then sign = -1 end
  if c == "-" or c == "+" then v = v:sub(2) end
  if v == ".inf" then return sign * math.huge end
  if v == ".nan" then return 0 / 0 end
  if v:find(":", 1, true) then
    local r = 0.0
    for part in (v .. ":"):gmatch("([^:]*):") do
      local x = part:find("^[0-9]*%.?[0-9]*$") and part:find("[0-9]") and tonumber(part)
      if not x then return nil end
      r = r * 60 + x
    end
    return sign * r
  end
  if v == "nan" then return 0 / 0 end
  if v == "inf" or v == "infinity" then return sign * math.huge end
  if v:find("[^0-9.e+-]") then return nil end   -- no hexadecimal floats
  local r = tonumber(v)
  return r and sign * (r + 0.0)
end

-- A scalar event's value (tag from the document or resolved from the text).
local function construct(ev, fail)
  local text, tag = ev.value, ev.tag
  if tag == nil or tag == "!" then
    if ev.style ~= "PLAIN" or tag == "!" then return text end
    tag = M.resolve(text)
  else
    tag = tag:match("^tag:yaml%.org,2002:(.*)$") or tag
  end
  if tag == "str" or tag == "timestamp" or tag == "value" or tag == "merge" then
    return text
  elseif tag == "null" then
    return NULL
  elseif tag == "bool" then
    local b = BOOL_VALUES[text:lower()]
    if b ~= nil then return b end
  elseif tag == "int" then
    if isInt(text) then return constructInt(text) end
  elseif tag == "float" then
    local f = constructFloat(text)
    if f then return f end
  else
    fail(ev, "unknown tag !" .. tag:gsub("^!", ""))
  end
  fail(ev, string.format("invalid !!%s value '%s'", tag, text))
end

local MAX_NESTING = 512   -- collections inside collections, per document

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local loadText

-- Builds the document from the event stream of `text` (file name `fname`
-- for messages and includes; `depth` bounds include nesting).
loadText = function(text, fname, depth)
  local where = fname or "<string>"
  local function fail(ev, msg)
    local line = ev and ev.start_mark and (ev.start_mark.line + 1)
    error(string.format("%s:%s: %s", where, line or "?", msg), 0)
  end
  if depth > 16 then fail(nil, "!include nested more than 16 deep") end
  local next = yamlc.parser(text)
  local function nextEvent()
    local ok, ev = pcall(next)
    if not ok then
      local msg = tostring(ev):gsub(" at document: %d+, line: (%d+), column: (%d+)",
                                    " (line %1, column %2)")
      local line = msg:match("%(line (%d+),")
      msg = msg:gsub("%s+$", ""):gsub("\n", "; ")
      error(string.format("%s:%s: %s", where, line or "?", msg), 0)
    end
    return ev
  end
  local anchors = {}
  local node
  local function mapping(start)
    local m = M.map(fname)
    local merges = {}
    while true do
      local kev = nextEvent()
      if kev.type == "MAPPING_END" then break end
      local key = node(kev)
      if M.isMap(key) or type(key) == "table" and key ~= NULL then
        fail(kev, "a mapping or sequence as a key is not supported")
      end
      local vev = nextEvent()
      local val = node(vev)
      if key == "<<" and kev.style == "PLAIN" and kev.tag == nil then
        merges[#merges + 1] = {val, vev}
      else
        m:put(key == NULL and "null" or key, val, kev.start_mark.line + 1)
      end
    end
    if #merges == 0 then return m end
    -- Merged keys come first, then the mapping's own (which override).
    local out = M.map(fname)
    local function merge(src, ev)
      if M.isMap(src) then
        for k, v in src:pairs() do out:put(k, v, src.lines[k]) end
      elseif type(src) == "table" and getmetatable(src) == nil then
        for i = #src, 1, -1 do merge(src[i], ev) end
      else
        fail(ev, "a merge key needs a mapping or a list of mappings")
      end
    end
    for _, mv in ipairs(merges) do merge(mv[1], mv[2]) end
    for k, v in m:pairs() do out:put(k, v, m.lines[k]) end
    return out
  end
  local level = 0
  node = function(ev)
    local t = ev.type
    local value
    if t == "MAPPING_START" or t == "SEQUENCE_START" then
      level = level + 1
      if level > MAX_NESTING then
        fail(ev, ("collections nested more than %d deep"):format(MAX_NESTING))
      end
    end
    if t == "SCALAR" then
      if ev.tag == "!include" then
        local rel = ev.value
        local path = rel:sub(1, 1) == "/" and rel
                     or (fname and (dirname(fname) .. "/" .. rel) or rel)
        local ok, v = pcall(M.loadFile, path, depth + 1)
        if not ok then fail(ev, "!include " .. rel .. ": " .. tostring(v)) end
        value = v
      else
        value = construct(ev, fail)
      end
    elseif t == "MAPPING_START" then
      if ev.tag and ev.tag ~= "tag:yaml.org,2002:map" and ev.tag ~= "!" then
        fail(ev, "unknown tag " .. ev.tag)
      end
      value = mapping(ev)
    elseif t == "SEQUENCE_START" then
      if ev.tag and ev.tag ~= "tag:yaml.org,2002:seq" and ev.tag ~= "!" then
        fail(ev, "unknown tag " .. ev.tag)
      end
      value = {}
      while true do
        local e = nextEvent()
        if e.type == "SEQUENCE_END" then break end
        value[#value + 1] = node(e)
      end
    elseif t == "ALIAS" then
      value = anchors[ev.anchor]
      if value == nil then fail(ev, "found undefined alias " .. tostring(ev.anchor)) end
      return value
    else
      fail(ev, "unexpected " .. tostring(t))
    end
    if t == "MAPPING_START" or t == "SEQUENCE_START" then level = level - 1 end
    if ev.anchor then anchors[ev.anchor] = value end
    return value
  end
  local doc, docs = nil, 0
  while true do
    local ev = nextEvent()
    if ev == nil or ev.type == "STREAM_END" then break end
    if ev.type == "DOCUMENT_START" then
      docs = docs + 1
      if docs > 1 then fail(ev, "expected a single document in the stream") end
      local first = nextEvent()
      if first.type ~= "DOCUMENT_END" then
        doc = node(first)
        nextEvent()   -- DOCUMENT_END
      end
    end
  end
  return doc
end

-- The document in `text` (nil when empty); fname names it in messages and
-- anchors relative includes.
function M.load(text, fname)
  if type(text) ~= "string" then
    error("yaml.load: text must be a string, got " .. type(text), 2)
  end
  return loadText(text, fname, 0)
end

function M.loadFile(path, depth)
  local f, err = io.open(path, "rb")
  if not f then error(tostring(err), 0) end
  local text = f:read("a")
  f:close()
  return loadText(text, path, depth or 0)
end

return M
