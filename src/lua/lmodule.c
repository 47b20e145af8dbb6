/*
** sl_lua_open: builds the module table from the family openers.
**
**   sl.stream     Frame, Master, Slave, Fifo, Filter, RateDrop, streamConnect...
**   sl.utilities  Prbs, StreamWriter, StreamReader
**   sl.logging    setLevel, setFilter, levels...
**   sl            run, stop, sleep, every, after, graph, monitor,
**                 connection helpers, version
**   sl.pyrogue    the register tree (lua/streamlua/pyrogue, loaded on first use)
*/
#include "lsl.h"
#include "streamlua/wait.h"

void sl_open_objects(lua_State *L);

int sl_lua_open(lua_State *L) {
  sl_state *st = sl_state_get(L);
  sl_wait_set_hook(sl_lua_slaves_serve, st);   /* waits keep mailboxes served */
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
  sl_open_fifo(L);
  sl_open_filter(L);
  sl_open_tcp(L);
  lua_setfield(L, -2, "stream");
  lua_newtable(L);                        /* sl.utilities */
  sl_open_prbs(L);
  sl_open_fileio(L);
  lua_setfield(L, -2, "utilities");
  sl_open_graph(L);
  sl_open_io(L);
  sl_open_udp(L);
  sl_open_memory(L);
  sl_open_srp(L);
  sl_open_batcher(L);
  sl_open_packetizer(L);
  sl_open_rssi(L);
  sl_open_membridge(L);
  sl_open_protocols(L);
  sl_open_pyrogue(L);
  return 1;
}
