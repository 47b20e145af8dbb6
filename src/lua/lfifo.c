/* Placeholder until this family lands. */
#include "lsl.h"

void sl_open_fifo(lua_State *L) {
  (void)L;
}
