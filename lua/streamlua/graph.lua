--[[
streamlua.graph: sl.graph() and sl.monitor(). The streamlua module embeds
this file at build time and runs it once as it opens, handing it the module
table, a function listing the live objects (after a full collection) and
one giving each object's creation serial; it returns graph, monitor, show
and top, which the module sets as sl.graph, sl.monitor, sl.show and (with
the terminal it passes as top's first argument) sl.top. It is not for
require: use the module's functions.

  local g = sl.graph()         -- nodes {id, object, kind, name, counters}
                               -- and links {from, to, primary}
  print(g)                     -- one line per node: name -> slaves [counters]
  g:dot()                      -- Graphviz text; g:svg([path]) drawn by dot
  local t = sl.monitor(2)      -- a rate line every 2 s, every node moving frames
  sl.top()                     -- a live table until a key is pressed
  sl.show({1, a = fifo})       -- the prompt's echo: one level deep
  sl.monitor(1, {dev, sink})   -- an entry with a monitorText method (a
                               -- register tree Device) shows that text
  links of memory masters (getSlave) have memory = true
]]
local sl, objects, serial = ...
if type(sl) ~= "table" or type(objects) ~= "function" then
  error("streamlua.graph is run by the streamlua module: use sl.graph() and sl.monitor()", 2)
end
local Graph = {}
Graph.__index = Graph
local function name_of(o, id)
  local ok, n = pcall(function() return o.name end)
  if ok and type(n) == 'string' then return n end
  return o:kind() .. '#' .. id
end
local function graph()
  local list = objects()
  table.sort(list, function(a, b) return serial(a) < serial(b) end)
  local g = setmetatable({nodes = {}, links = {}}, Graph)
  local index = {}
  local function add(o)
    if index[o] then return index[o] end
    local id = #g.nodes + 1
    local n = {id = id, object = o, kind = o:kind(), name = name_of(o, id),
               counters = o:counters()}
    g.nodes[id] = n
    index[o] = n
    return n
  end
  for _, o in ipairs(list) do add(o) end
  for _, o in ipairs(list) do
    if o.getSlaves then
      for i, s in ipairs(o:getSlaves()) do
        g.links[#g.links + 1] = {from = index[o].id, to = add(s).id, primary = i == 1}
      end
    end
    if o.getSlave then  -- a memory master: one slave
      local s = o:getSlave()
      if s ~= nil then
        g.links[#g.links + 1] = {from = index[o].id, to = add(s).id, primary = true,
                                 memory = true}
      end
    end
  end
  return g
end
local function counters_text(c)
  local keys = {}
  for k in pairs(c) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. '=' .. c[k] end
  return table.concat(keys, ' ')
end
-- A Graphviz double-quoted string's contents: quotes and backslashes escaped.
local function dot_quote(text)
  return (text:gsub('[\\"]', '\\%0'))
end
function Graph:dot()
  local out = {'digraph streamlua {', '  rankdir=LR;', '  node [shape=box];'}
  for _, n in ipairs(self.nodes) do
    local label = dot_quote(n.name)
    local c = counters_text(n.counters)
    if c ~= '' then label = label .. '\\n' .. c end
    out[#out + 1] = string.format('  n%d [label="%s"];', n.id, label)
  end
  for _, l in ipairs(self.links) do      -- memory-bus links dashed
    local style = {}
    if l.primary then style[#style + 1] = 'style=bold' end
    if l.memory then style = {'style=dashed', 'label="mem"'} end
    out[#out + 1] = string.format('  n%d -> n%d%s;', l.from, l.to,
      #style > 0 and (' [' .. table.concat(style, ', ') .. ']') or '')
  end
  out[#out + 1] = '}'
  return table.concat(out, '\n') .. '\n'
end
-- g:svg([path]): the graph drawn by Graphviz's `dot`, as SVG text; also
-- written to path when given.
function Graph:svg(path)
  if path ~= nil and type(path) ~= 'string' then
    error("bad argument #1 to 'svg' (string expected, got " .. type(path) .. ")", 2)
  end
  local probe = io.popen('command -v dot 2>/dev/null')
  local found = probe and probe:read('l')
  if probe then probe:close() end
  if not found or found == '' then
    error("svg: Graphviz's 'dot' program was not found on PATH " ..
          "(install Graphviz, e.g. apt-get install graphviz)", 2)
  end
  local src, out = os.tmpname(), os.tmpname()
  local f = assert(io.open(src, 'w'))
  f:write(self:dot())
  f:close()
  local ok = os.execute(string.format("dot -Tsvg -o '%s' '%s' 2>/dev/null", out, src))
  os.remove(src)
  f = io.open(out, 'r')
  local svg = f and f:read('a')
  if f then f:close() end
  os.remove(out)
  if not ok or not svg or svg == '' then error("svg: 'dot' could not draw the graph", 2) end
  if path then
    f = assert(io.open(path, 'w'))
    f:write(svg)
    f:close()
  end
  return svg
end
function Graph:__tostring()
  local out = {}
  for _, n in ipairs(self.nodes) do
    local outs = {}
    for _, l in ipairs(self.links) do
      if l.from == n.id then
        outs[#outs + 1] = self.nodes[l.to].name .. (l.primary and '*' or '')
      end
    end
    local line = n.name
    if #outs > 0 then line = line .. ' -> ' .. table.concat(outs, ', ') end
    local c = counters_text(n.counters)
    if c ~= '' then line = line .. '  [' .. c .. ']' end
    out[#out + 1] = line
  end
  return table.concat(out, '\n')
end
local function si(v)
  if v >= 1e9 then return string.format('%.2fG', v / 1e9) end
  if v >= 1e6 then return string.format('%.2fM', v / 1e6) end
  if v >= 1e3 then return string.format('%.2fk', v / 1e3) end
  return string.format('%.0f', v)
end
-- Does a node with counters c move frames (receive, send, or both)?
local function moves_frames(c)
  return c.rxFrames ~= nil or c.txFrames ~= nil
end
-- What a node moves: the larger of what it receives and what it sends (a
-- sink only receives, a source or a TCP client may only send, a Fifo does
-- both with the same frames), and its drops and queue depth.
local function sample(o)
  local c = o:counters()
  return {t = sl.now(), frames = math.max(c.rxFrames or 0, c.txFrames or 0),
          bytes = math.max(c.rxBytes or 0, c.txBytes or 0), drops = c.drops,
          depth = c.depth or c.queued}
end
local function monitor(period, watch, output)
  if type(period) ~= 'number' or not (period > 0) then
    error("bad argument #1 to 'monitor' (positive number of seconds expected)", 2)
  end
  if watch ~= nil and type(watch) ~= 'table' then
    error("bad argument #2 to 'monitor' (table of objects expected)", 2)
  end
  if watch ~= nil and type(watch.monitorText) == 'function' then watch = {watch} end
  if output ~= nil and type(output) ~= 'function' then
    error("bad argument #3 to 'monitor' (function expected)", 2)
  end
  local names = setmetatable({}, {__mode = 'k'})
  if not watch then             -- every node that moves frames, bridges included
    watch = {}
    for _, n in ipairs(graph().nodes) do
      if moves_frames(n.counters) then
        watch[#watch + 1] = n.object
        names[n.object] = n.name
      end
    end
  end
  local last = setmetatable({}, {__mode = 'k'})
  for _, o in ipairs(watch) do
    if not o.monitorText then last[o] = sample(o) end
  end
  return sl.every(period, function()
    local parts = {}
    for i, o in ipairs(watch) do
      if o.monitorText then
        parts[#parts + 1] = o:monitorText()
      else
        local now, prev = sample(o), last[o]
        local dt = math.max(now.t - prev.t, 1e-9)
        parts[#parts + 1] = string.format('%s %s fr/s %.1f MB/s drops %d',
          names[o] or name_of(o, i), si((now.frames - prev.frames) / dt),
          (now.bytes - prev.bytes) / dt / 1e6, now.drops or 0)
        last[o] = now
      end
    end
    local line = os.date('%H:%M:%S ') .. table.concat(parts, ' | ')
    ;(output or print)(line)
  end)
end
local SHOW_MAX = 40    -- entries show() lists of one table
-- The text of a value inside a table: strings quoted, tables not opened.
local function brief(v)
  if type(v) == 'string' then return string.format('%q', v) end
  if type(v) == 'table' and not (getmetatable(v) and getmetatable(v).__tostring) then
    return next(v) == nil and '{}' or '{...}'
  end
  return tostring(v)
end
local function key_text(k)
  if type(k) == 'string' and k:match('^[%a_][%w_]*$') then return k end
  return '[' .. brief(k) .. ']'
end
-- show(v): the text the prompt echoes. A table without __tostring is
-- listed one level deep (its sequence, then its other keys sorted);
-- anything else is tostring(v), so objects show their name and counters.
local function show(v)
  local mt = getmetatable(v)
  if type(v) ~= 'table' or (type(mt) == 'table' and mt.__tostring) then return tostring(v) end
  local parts, n = {}, rawlen(v)
  for i = 1, math.min(n, SHOW_MAX) do parts[i] = brief(rawget(v, i)) end
  local keys = {}
  for k in next, v do
    if not (math.type(k) == 'integer' and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    if type(a) == 'number' or type(a) == 'string' then return a < b end
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(keys) do
    if #parts >= SHOW_MAX then break end
    parts[#parts + 1] = key_text(k) .. ' = ' .. brief(rawget(v, k))
  end
  local more = n + #keys - #parts
  if more > 0 then parts[#parts + 1] = ('... (%d more)'):format(more) end
  return '{' .. table.concat(parts, ', ') .. '}'
end
-- The rows of sl.top: every node with its rates since `prev` (a weak
-- table of the last samples, updated here).
local function top_rows(prev)
  local rows = {}
  for _, n in ipairs(graph().nodes) do
    local row = {name = n.name, kind = n.kind}
    if moves_frames(n.counters) then
      local now, was = sample(n.object), prev[n.object]
      if was then
        local dt = math.max(now.t - was.t, 1e-9)
        row.fps, row.mbps = (now.frames - was.frames) / dt, (now.bytes - was.bytes) / dt / 1e6
      end
      row.drops, row.depth = now.drops, now.depth
      prev[n.object] = now
    end
    rows[#rows + 1] = row
  end
  return rows
end
local function cell(v, fmt)
  if v == nil then return '-' end
  return fmt and string.format(fmt, v) or si(v)
end
-- The table sl.top shows: a header, then one line per node (at most
-- `height` lines in all when given), each cut to `width` columns.
local function top_text(rows, width, height)
  local w = 4
  for _, r in ipairs(rows) do w = math.max(w, #r.name) end
  w = math.min(w, 40)
  local fmt = '%-' .. w .. 's  %-22s %9s %9s %10s %7s'
  local lines = {string.format(fmt, 'NAME', 'CLASS', 'FR/S', 'MB/S', 'DROPS', 'DEPTH')}
  for _, r in ipairs(rows) do
    if height and #lines >= height then break end
    lines[#lines + 1] = string.format(fmt, r.name:sub(1, w), r.kind:sub(1, 22), cell(r.fps),
      cell(r.mbps, '%.1f'), cell(r.drops, '%d'), cell(r.depth, '%d'))
  end
  if width then
    for i, l in ipairs(lines) do lines[i] = l:sub(1, width) end
  end
  return table.concat(lines, '\n')
end
-- sl.top([period]): the table, redrawn every period (1 s) on the whole
-- terminal until a key is pressed; `term` (C) switches the terminal to raw
-- mode and back, waits for a key while serving the loop, and gives the
-- window's size. Without a terminal: one table of rates over one period.
local function top(term, period)
  if period == nil then period = 1 end
  if type(period) ~= 'number' or not (period > 0) or period > 3600 then
    error("bad argument #1 to 'top' (number of seconds in (0, 3600] expected)", 2)
  end
  local prev = setmetatable({}, {__mode = 'k'})
  if not term.tty() then
    top_rows(prev)
    sl.sleep(period)
    io.write(top_text(top_rows(prev)), '\n')
    return
  end
  term.raw(true)
  local ok, err = pcall(function()
    repeat
      local rows, cols = term.size()
      local head = os.date('streamlua top  %H:%M:%S') ..
        string.format('  every %g s  any key quits', period)
      io.write('\27[H\27[2J', head:sub(1, cols), '\n',
        (top_text(top_rows(prev), cols, rows - 1)))
      io.flush()
    until term.key(period)
  end)
  term.raw(false)
  if not ok then error(err, 0) end
end
return graph, monitor, show, top
