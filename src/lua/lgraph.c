/* Placeholder until this family lands. */
#include "lsl.h"

void sl_open_graph(lua_State *L) {
  (void)L;
}
