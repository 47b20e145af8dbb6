/*
** luaopen_streamlua: builds the module table from the family openers.
**
**   sl.stream   Frame, Master, Slave, streamConnect...
**   sl.logging  setLevel, setFilter, levels...
**   sl          run, stop, sleep, every, after, connection helpers, version
*/
#include "lsl.h"

void sl_open_objects(lua_State *L);

__attribute__((visibility("default"))) int luaopen_streamlua(lua_State *L) {
  sl_state_get(L);
  sl_open_objects(L);
  lua_newtable(L);                        /* sl */
  lua_pushliteral(L, SL_VERSION);
  lua_setfield(L, -2, "version");
  sl_open_loop(L);
  sl_open_logging(L);
  lua_newtable(L);                        /* sl.stream */
  sl_open_frame(L);
  sl_open_slave(L);
  sl_open_master(L);                      /* helpers go in sl and sl.stream */
  lua_setfield(L, -2, "stream");
  return 1;
}
