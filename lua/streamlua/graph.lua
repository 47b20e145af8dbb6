--[[
streamlua.graph: sl.graph() and sl.monitor(). The streamlua module embeds
this file at build time and runs it once as it opens, handing it the module
table, a function listing the live objects (after a full collection) and
one giving each object's creation serial; it returns graph and monitor,
which the module sets as sl.graph and sl.monitor. It is not for require:
use the module's functions.

  local g = sl.graph()         -- nodes {id, object, kind, name, counters}
                               -- and links {from, to, primary}
  print(g)                     -- one line per node: name -> slaves [counters]
  g:dot()                      -- Graphviz text
  local t = sl.monitor(2)      -- a rate line every 2 s for each sink
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
function Graph:dot()
  local out = {'digraph streamlua {', '  rankdir=LR;', '  node [shape=box];'}
  for _, n in ipairs(self.nodes) do
    local label = n.name
    local c = counters_text(n.counters)
    if c ~= '' then label = label .. '\\n' .. c end
    out[#out + 1] = string.format('  n%d [label="%s"];', n.id, label)
  end
  for _, l in ipairs(self.links) do
    out[#out + 1] = string.format('  n%d -> n%d%s;', l.from, l.to,
      l.primary and ' [style=bold]' or '')
  end
  out[#out + 1] = '}'
  return table.concat(out, '\n') .. '\n'
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
  if not watch then
    local g = graph()
    watch = {}
    for _, n in ipairs(g.nodes) do
      local feeds = false
      for _, l in ipairs(g.links) do feeds = feeds or (l.from == n.id and not l.memory) end
      if not feeds and n.counters.rxFrames then
        watch[#watch + 1] = n.object
        names[n.object] = n.name
      end
    end
  end
  local last = setmetatable({}, {__mode = 'k'})
  local function sample(o)
    local c = o:counters()
    return {t = sl.now(), frames = c.rxFrames or c.txFrames or 0,
            bytes = c.rxBytes or c.txBytes or 0, drops = c.drops or 0}
  end
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
          (now.bytes - prev.bytes) / dt / 1e6, now.drops)
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
return graph, monitor, show
