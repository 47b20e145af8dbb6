/*
** A C program built against an installed streamlua with pkg-config alone:
** a master sends one frame to a slave, and it prints the version and what
** the slave counted.
*/
#include <stdio.h>

#include <streamlua/streamlua.h>

int main(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_object *so = sl_slave_new(NULL);
  if (mo == NULL || so == NULL || sl_master_add_slave(mo->master, so->slave) != SL_OK)
    return 1;
  sl_frame *f = sl_master_req_frame(mo->master, 5, 0);
  if (f == NULL || sl_frame_write(f, "hello", 0, 5) != SL_OK)
    return 1;
  sl_master_send_frame(mo->master, f);
  sl_frame_unref(f);
  printf("streamlua %s frames %llu bytes %llu\n", SL_VERSION,
         (unsigned long long)sl_slave_get_frame_count(so->slave),
         (unsigned long long)sl_slave_get_byte_count(so->slave));
  sl_object_unref(mo);
  sl_object_unref(so);
  return 0;
}
