/*
** The memory TcpClient's timeouts: a request it tracks fails with Rogue's
** text and the cause ("no response within", "not connected to the server
** within") whoever looks at the deadline first. The waiter here looks as
** often as it can from the moment the request is made, so it is always
** past its deadline before the client's sweep (every few milliseconds)
** comes round; on a loaded machine a caller's check can come first the
** same way. Every wait is bounded.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "streamlua/mem_bridge.h"
#include "streamlua/memory.h"
#include "streamlua/streamlua.h"
#include "support.h"
#include "tt.h"

enum { TIMEOUT_US = 1000 };   /* far below the sweep's period */

/* Looks at t's deadline without pause until t completes (or 20 s pass);
** returns 1 if it completed, its error text in e. */
static int watch(sl_transaction *t, char *e, size_t n) {
  double t0 = now_s();
  while (!sl_transaction_check_deadline(t) && now_s() - t0 < 20) {
  }
  sl_transaction_get_error(t, e, n);
  return sl_transaction_is_done(t);
}

static void test_no_response_names_the_cause(void) {
  sl_log_set_emit(0);
  ts_mem_rec *mute = ts_mem_rec_new(4, 0xFFFFFFFFu, TS_MEM_NEVER);
  sl_mem_bridge *srv = sl_mem_server_new("127.0.0.1", 0, NULL);
  if (srv == NULL) abort();
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, &mute->obj);
  sl_mem_bridge *cli = sl_mem_client_new("127.0.0.1", sl_mem_bridge_port(srv), NULL);
  if (cli == NULL) abort();
  sl_mem_master mm;
  sl_mem_master_init(&mm, NULL);
  sl_mem_master_set_slave(&mm, sl_mem_bridge_object(cli));
  CHECK(sl_mem_client_wait_ready(cli, 20000000, 100000));
  char e[512];
  for (int i = 0; i < 20; i++) {
    sl_mem_master_set_timeout(&mm, TIMEOUT_US);
    sl_transaction *t = sl_mem_master_request(&mm, 0x100, 4, NULL, SL_MEM_READ, NULL, NULL);
    if (!CHECK(t != NULL)) break;
    int done = watch(t, e, sizeof e);
    sl_transaction_unref(t);
    if (!CHECK(done) || !CHECK(strstr(e, "Timeout waiting for register transaction") != NULL) ||
        !CHECK(strstr(e, "memory.TcpClient 127.0.0.1:") != NULL) ||
        !CHECK(strstr(e, ": no response within 0.001 s (request id=") != NULL)) {
      printf("  request %d: \"%s\"\n", i, e);
      break;
    }
  }
  CHECK_EQ(sl_mem_bridge_pending(cli), 0);
  sl_mem_master_fini(&mm);
  sl_object_stop(sl_mem_bridge_object(cli));
  sl_object_unref(sl_mem_bridge_object(cli));
  sl_object_stop(sl_mem_bridge_object(srv));
  sl_object_unref(sl_mem_bridge_object(srv));
  sl_object_unref(&mute->obj);
  sl_log_set_emit(1);
}

static void test_not_connected_names_the_cause(void) {
  sl_log_set_emit(0);
  /* a listener that never accepts: no handshake, never ready */
  uint32_t port = 0;
  int fd = ts_listen(&port);
  CHECK(fd >= 0);
  sl_mem_bridge *cli = sl_mem_client_new("127.0.0.1", port, NULL);
  if (cli == NULL) abort();
  sl_mem_master mm;
  sl_mem_master_init(&mm, NULL);
  sl_mem_master_set_slave(&mm, sl_mem_bridge_object(cli));
  char e[512];
  for (int i = 0; i < 20; i++) {
    sl_mem_master_set_timeout(&mm, TIMEOUT_US);
    sl_transaction *t = sl_mem_master_request(&mm, 0x100, 4, NULL, SL_MEM_READ, NULL, NULL);
    if (!CHECK(t != NULL)) break;
    int done = watch(t, e, sizeof e);
    sl_transaction_unref(t);
    if (!CHECK(done) || !CHECK(strstr(e, "Timeout waiting for register transaction") != NULL) ||
        !CHECK(strstr(e, ": not connected to the server within 0.001 s (request id=") != NULL)) {
      printf("  request %d: \"%s\"\n", i, e);
      break;
    }
  }
  CHECK_EQ(sl_mem_bridge_pending(cli), 0);
  sl_mem_master_fini(&mm);
  sl_object_stop(sl_mem_bridge_object(cli));
  sl_object_unref(sl_mem_bridge_object(cli));
  close(fd);
  sl_log_set_emit(1);
}

static const struct tt_case cases[] = {
  {"no response: the cause with Rogue's text", test_no_response_names_the_cause},
  {"not connected: the cause with Rogue's text", test_not_connected_names_the_cause},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
