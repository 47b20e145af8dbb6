/*
** Seeing the graph: sl.graph() lists the live objects and their links,
** graph:dot() writes Graphviz text, and sl.monitor() prints a one-line rate
** summary every few seconds. The listing logic is Lua (below); C gives it
** the live objects and a monotonic clock.
*/
#include <time.h>

#include "lsl.h"

/* The live objects (after a full collection), oldest first. */
static int graph_objects(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT);
  lua_newtable(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_boxes_key);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (sl_test_object(L, -1) != NULL) lua_rawseti(L, -4, ++n);
    else lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 1;
}

static int graph_serial(lua_State *L) {
  lua_pushinteger(L, sl_box_serial(L, 1));
  return 1;
}

/* sl.now(): monotonic seconds, for rates. */
static int graph_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

static const char graph_lua[] =
    "local sl, objects, serial = ...\n"
    "local Graph = {}\n"
    "Graph.__index = Graph\n"
    "local function name_of(o, id)\n"
    "  local ok, n = pcall(function() return o.name end)\n"
    "  if ok and type(n) == 'string' then return n end\n"
    "  return o:kind() .. '#' .. id\n"
    "end\n"
    "local function graph()\n"
    "  local list = objects()\n"
    "  table.sort(list, function(a, b) return serial(a) < serial(b) end)\n"
    "  local g = setmetatable({nodes = {}, links = {}}, Graph)\n"
    "  local index = {}\n"
    "  local function add(o)\n"
    "    if index[o] then return index[o] end\n"
    "    local id = #g.nodes + 1\n"
    "    local n = {id = id, object = o, kind = o:kind(), name = name_of(o, id),\n"
    "               counters = o:counters()}\n"
    "    g.nodes[id] = n\n"
    "    index[o] = n\n"
    "    return n\n"
    "  end\n"
    "  for _, o in ipairs(list) do add(o) end\n"
    "  for _, o in ipairs(list) do\n"
    "    if o.getSlaves then\n"
    "      for i, s in ipairs(o:getSlaves()) do\n"
    "        g.links[#g.links + 1] = {from = index[o].id, to = add(s).id, primary = i == 1}\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return g\n"
    "end\n"
    "local function counters_text(c)\n"
    "  local keys = {}\n"
    "  for k in pairs(c) do keys[#keys + 1] = k end\n"
    "  table.sort(keys)\n"
    "  for i, k in ipairs(keys) do keys[i] = k .. '=' .. c[k] end\n"
    "  return table.concat(keys, ' ')\n"
    "end\n"
    "function Graph:dot()\n"
    "  local out = {'digraph streamlua {', '  rankdir=LR;', '  node [shape=box];'}\n"
    "  for _, n in ipairs(self.nodes) do\n"
    "    local label = n.name\n"
    "    local c = counters_text(n.counters)\n"
    "    if c ~= '' then label = label .. '\\\\n' .. c end\n"
    "    out[#out + 1] = string.format('  n%d [label=\"%s\"];', n.id, label)\n"
    "  end\n"
    "  for _, l in ipairs(self.links) do\n"
    "    out[#out + 1] = string.format('  n%d -> n%d%s;', l.from, l.to,\n"
    "      l.primary and ' [style=bold]' or '')\n"
    "  end\n"
    "  out[#out + 1] = '}'\n"
    "  return table.concat(out, '\\n') .. '\\n'\n"
    "end\n"
    "function Graph:__tostring()\n"
    "  local out = {}\n"
    "  for _, n in ipairs(self.nodes) do\n"
    "    local outs = {}\n"
    "    for _, l in ipairs(self.links) do\n"
    "      if l.from == n.id then\n"
    "        outs[#outs + 1] = self.nodes[l.to].name .. (l.primary and '*' or '')\n"
    "      end\n"
    "    end\n"
    "    local line = n.name\n"
    "    if #outs > 0 then line = line .. ' -> ' .. table.concat(outs, ', ') end\n"
    "    local c = counters_text(n.counters)\n"
    "    if c ~= '' then line = line .. '  [' .. c .. ']' end\n"
    "    out[#out + 1] = line\n"
    "  end\n"
    "  return table.concat(out, '\\n')\n"
    "end\n"
    "local function si(v)\n"
    "  if v >= 1e9 then return string.format('%.2fG', v / 1e9) end\n"
    "  if v >= 1e6 then return string.format('%.2fM', v / 1e6) end\n"
    "  if v >= 1e3 then return string.format('%.2fk', v / 1e3) end\n"
    "  return string.format('%.0f', v)\n"
    "end\n"
    "local function monitor(period, watch, output)\n"
    "  if type(period) ~= 'number' or not (period > 0) then\n"
    "    error(\"bad argument #1 to 'monitor' (positive number of seconds expected)\", 2)\n"
    "  end\n"
    "  if watch ~= nil and type(watch) ~= 'table' then\n"
    "    error(\"bad argument #2 to 'monitor' (table of objects expected)\", 2)\n"
    "  end\n"
    "  if output ~= nil and type(output) ~= 'function' then\n"
    "    error(\"bad argument #3 to 'monitor' (function expected)\", 2)\n"
    "  end\n"
    "  local names = setmetatable({}, {__mode = 'k'})\n"
    "  if not watch then\n"
    "    local g = graph()\n"
    "    watch = {}\n"
    "    for _, n in ipairs(g.nodes) do\n"
    "      local feeds = false\n"
    "      for _, l in ipairs(g.links) do feeds = feeds or l.from == n.id end\n"
    "      if not feeds and n.counters.rxFrames then\n"
    "        watch[#watch + 1] = n.object\n"
    "        names[n.object] = n.name\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local last = setmetatable({}, {__mode = 'k'})\n"
    "  local function sample(o)\n"
    "    local c = o:counters()\n"
    "    return {t = sl.now(), frames = c.rxFrames or c.txFrames or 0,\n"
    "            bytes = c.rxBytes or c.txBytes or 0, drops = c.drops or 0}\n"
    "  end\n"
    "  for _, o in ipairs(watch) do last[o] = sample(o) end\n"
    "  return sl.every(period, function()\n"
    "    local parts = {}\n"
    "    for i, o in ipairs(watch) do\n"
    "      local now, prev = sample(o), last[o]\n"
    "      local dt = math.max(now.t - prev.t, 1e-9)\n"
    "      parts[#parts + 1] = string.format('%s %s fr/s %.1f MB/s drops %d',\n"
    "        names[o] or name_of(o, i), si((now.frames - prev.frames) / dt),\n"
    "        (now.bytes - prev.bytes) / dt / 1e6, now.drops)\n"
    "      last[o] = now\n"
    "    end\n"
    "    local line = os.date('%H:%M:%S ') .. table.concat(parts, ' | ')\n"
    "    ;(output or print)(line)\n"
    "  end)\n"
    "end\n"
    "return graph, monitor\n";

/* Sets sl.graph, sl.monitor and sl.now in the module table at the top. */
void sl_open_graph(lua_State *L) {
  lua_pushcfunction(L, graph_now);
  lua_setfield(L, -2, "now");
  if (luaL_loadbuffer(L, graph_lua, sizeof graph_lua - 1, "=streamlua.graph") != LUA_OK)
    lua_error(L);
  lua_pushvalue(L, -2);
  lua_pushcfunction(L, graph_objects);
  lua_pushcfunction(L, graph_serial);
  lua_call(L, 3, 2);
  lua_setfield(L, -3, "monitor");
  lua_setfield(L, -2, "graph");
}
