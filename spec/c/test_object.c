/*
** The node model: a class descriptor per type, the four roles, typed
** handles with checked downcasts, and constructors that say why they
** failed (sl_error).
*/
#include <stdlib.h>
#include <string.h>

#include "streamlua/mem_bridge.h"
#include "streamlua/memory.h"
#include "streamlua/srp.h"
#include "streamlua/tcp_bridge.h"
#include "streamlua/udp.h"
#include "streamlua/streamlua.h"
#include "tt.h"

/* A node of its own class that counts its hooks' calls. */
typedef struct probe {
  sl_object obj;
  sl_slave slave;
  int stops, cancels;
  int *destroyed;
} probe;

static void probe_destroy(sl_object *obj) {
  probe *p = (probe *)obj;
  (*p->destroyed)++;
  sl_slave_fini(&p->slave);
  free(p);
}

static void probe_stop(sl_object *obj) { ((probe *)obj)->stops++; }
static void probe_cancel(sl_object *obj) { ((probe *)obj)->cancels++; }

static size_t probe_counters(sl_object *obj, sl_counter *out, size_t max) {
  (void)obj;
  if (max < 1) return 0;
  out[0].name = "probes";
  out[0].value = 7;
  return 1;
}

static const sl_class probe_class = {.name = "test.Probe",
                                     .destroy = probe_destroy,
                                     .stop = probe_stop,
                                     .cancel = probe_cancel,
                                     .counters = probe_counters};
static const sl_class bare_class = {.name = "test.Bare", .destroy = probe_destroy};

static probe *probe_new(const sl_class *cls, int *destroyed) {
  probe *p = calloc(1, sizeof *p);
  if (p == NULL) abort();
  p->destroyed = destroyed;
  sl_object_init(&p->obj, cls);
  return p;
}

static void test_class_and_hooks(void) {
  int destroyed = 0;
  probe *p = probe_new(&probe_class, &destroyed);
  sl_object *o = &p->obj;
  CHECK_STR(sl_object_kind(o), "test.Probe");
  CHECK(sl_object_is(o, &probe_class));
  CHECK(!sl_object_is(o, &bare_class));
  CHECK(!sl_object_is(NULL, &probe_class));
  CHECK_EQ(sl_object_roles(o), 0);
  CHECK_EQ(sl_object_roles(NULL), 0);
  sl_object_cancel(o);
  sl_object_stop(o);
  sl_object_stop(o);
  CHECK_EQ(p->cancels, 1);
  CHECK_EQ(p->stops, 2);
  sl_counter c[4];
  CHECK_EQ(sl_object_counters(o, c, 4), 1);
  CHECK_STR(c[0].name, "probes");
  CHECK_EQ(c[0].value, 7);
  CHECK(sl_object_ref(o) == o);
  sl_object_unref(o);
  CHECK_EQ(destroyed, 0);
  sl_object_unref(o);
  CHECK_EQ(destroyed, 1);
  sl_object_unref(NULL);   /* ignored */
}

static void test_optional_hooks(void) {
  int destroyed = 0;
  probe *p = probe_new(&bare_class, &destroyed);
  sl_object_stop(&p->obj);     /* no hook: nothing happens */
  sl_object_cancel(&p->obj);
  sl_counter c[4];
  CHECK_EQ(sl_object_counters(&p->obj, c, 4), 0);
  /* a slave without a counters hook reports the base slave's two and its
  ** pool's cached bytes */
  CHECK_EQ(sl_slave_init(&p->slave, &sl_slave_base_ops, &p->obj), SL_OK);
  CHECK(p->obj.slave == &p->slave);
  CHECK_EQ(sl_object_roles(&p->obj), SL_ROLE_STREAM_SLAVE);
  CHECK_EQ(sl_object_counters(&p->obj, c, 4), 3);
  CHECK_STR(c[0].name, "rxFrames");
  CHECK_STR(c[1].name, "rxBytes");
  CHECK_STR(c[2].name, "cachedBytes");
  CHECK(c[2].value == 0);
  CHECK_EQ(sl_object_counters(&p->obj, c, 2), 0);
  sl_object_unref(&p->obj);
  CHECK_EQ(destroyed, 1);
}

static void test_roles(void) {
  sl_object *m = sl_master_new(NULL), *s = sl_slave_new(NULL);
  sl_object *mm = sl_mem_master_node_new(NULL);
  sl_hub *hub = sl_hub_new(0, 0, 0, NULL);
  sl_emulate *emu = sl_emulate_new(4, 0, NULL);
  sl_srpv3 *srp = sl_srpv3_new(NULL);
  CHECK_EQ(sl_object_roles(m), SL_ROLE_STREAM_MASTER);
  CHECK_EQ(sl_object_roles(s), SL_ROLE_STREAM_SLAVE);
  CHECK_EQ(sl_object_roles(mm), SL_ROLE_MEMORY_MASTER);
  CHECK_EQ(sl_object_roles(sl_hub_object(hub)), SL_ROLE_MEMORY);
  CHECK_EQ(sl_object_roles(sl_emulate_object(emu)), SL_ROLE_MEMORY_SLAVE);
  CHECK_EQ(sl_object_roles(sl_srpv3_object(srp)), SL_ROLE_STREAM | SL_ROLE_MEMORY_SLAVE);
  CHECK_STR(sl_object_kind(sl_hub_object(hub)), "memory.Hub");
  /* a memory master takes only a memory slave */
  CHECK_EQ(sl_mem_master_set_slave(mm->mem_master, s), SL_EINVAL);
  CHECK(mm->mem_master->slave_obj == NULL);
  CHECK_EQ(sl_mem_master_set_slave(mm->mem_master, sl_hub_object(hub)), SL_OK);
  CHECK_EQ(sl_mem_master_set_slave(sl_hub_object(hub)->mem_master, sl_emulate_object(emu)),
           SL_OK);
  sl_object *got = sl_mem_master_get_slave(mm->mem_master);
  CHECK(got == sl_hub_object(hub));
  sl_object_unref(got);
  CHECK_EQ(sl_mem_master_set_slave(mm->mem_master, NULL), SL_OK);
  sl_object_unref(m);
  sl_object_unref(s);
  sl_object_unref(mm);
  sl_object_unref(sl_hub_object(hub));
  sl_object_unref(sl_emulate_object(emu));
  sl_object_stop(sl_srpv3_object(srp));
  sl_object_unref(sl_srpv3_object(srp));
}

static void test_downcasts(void) {
  sl_hub *hub = sl_hub_new(0x40, 0, 0, NULL);
  sl_emulate *emu = sl_emulate_new(4, 0, NULL);
  sl_srpv3_emulation *se = sl_srpv3_emulation_new(NULL);
  sl_prbs *prbs = sl_prbs_new(NULL);
  sl_object *h = sl_hub_object(hub), *e = sl_emulate_object(emu);
  CHECK(sl_hub_from_object(h) == hub);
  CHECK(sl_hub_from_object(e) == NULL);
  CHECK(sl_hub_from_object(NULL) == NULL);
  CHECK(sl_emulate_from_object(e) == emu);
  CHECK(sl_emulate_from_object(h) == NULL);
  CHECK(sl_srpv3_from_object(h) == NULL);
  CHECK(sl_mem_bridge_from_object(h) == NULL);
  CHECK(sl_srpv3_emulation_from_object(sl_srpv3_emulation_object(se)) == se);
  CHECK(sl_srpv3_emulation_from_object(sl_prbs_object(prbs)) == NULL);
  CHECK(sl_prbs_from_object(sl_prbs_object(prbs)) == prbs);
  CHECK(sl_prbs_from_object(h) == NULL);
  CHECK(sl_stream_writer_from_object(h) == NULL);
  CHECK(sl_stream_reader_from_object(h) == NULL);
  CHECK(sl_hub_object(NULL) == NULL);
  sl_fifo *q = sl_fifo_new(0, 0, 0, NULL);
  sl_filter *ft = sl_filter_new(0, 1, NULL);
  sl_rate_drop *rd = sl_rate_drop_new(0, 1, NULL);
  CHECK(sl_fifo_from_object(sl_fifo_object(q)) == q);
  CHECK(sl_fifo_from_object(sl_filter_object(ft)) == NULL);
  CHECK(sl_filter_from_object(sl_filter_object(ft)) == ft);
  CHECK(sl_filter_from_object(sl_rate_drop_object(rd)) == NULL);
  CHECK(sl_rate_drop_from_object(sl_rate_drop_object(rd)) == rd);
  CHECK(sl_rate_drop_from_object(sl_fifo_object(q)) == NULL);
  CHECK_EQ(sl_fifo_max_depth(q), 0);
  sl_object_stop(sl_fifo_object(q));
  sl_object_unref(sl_fifo_object(q));
  sl_object_unref(sl_filter_object(ft));
  sl_object_unref(sl_rate_drop_object(rd));
  CHECK_EQ(sl_hub_get_offset(hub), 0x40);
  sl_object_unref(h);
  sl_object_unref(e);
  sl_object_stop(sl_srpv3_emulation_object(se));
  sl_object_unref(sl_srpv3_emulation_object(se));
  sl_object_stop(sl_prbs_object(prbs));
  sl_object_unref(sl_prbs_object(prbs));
}

static void test_errors(void) {
  sl_error err;
  sl_error_clear(&err);
  CHECK_EQ(err.status, SL_OK);
  CHECK_STR(err.msg, "");
  CHECK(sl_fail(&err, SL_ENOMEM, NULL) == NULL);
  CHECK_EQ(err.status, SL_ENOMEM);
  CHECK_STR(err.msg, "out of memory");
  sl_error_set(&err, SL_EINVAL, "bad %s %d", "thing", 3);
  CHECK_EQ(err.status, SL_EINVAL);
  CHECK_STR(err.msg, "bad thing 3");
  sl_error_set(NULL, SL_EINVAL, "ignored");
  CHECK(sl_fail(NULL, SL_EIO, NULL) == NULL);
  CHECK_STR(sl_status_str(SL_EIO), "system error");
  /* a long message is cut, never overrun */
  char big[2 * SL_ERROR_MAX];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  sl_error_set(&err, SL_EINVAL, "%s", big);
  CHECK_EQ(strlen(err.msg), SL_ERROR_MAX - 1);
}

static void test_constructor_reasons(void) {
  sl_log_set_emit(0);
  sl_error err;
  sl_error_clear(&err);
  CHECK(sl_mem_client_new("127.0.0.1", 0, &err) == NULL);
  CHECK_EQ(err.status, SL_EINVAL);
  CHECK(strstr(err.msg, "bad port for 127.0.0.1:0") != NULL);
  /* a success leaves err alone */
  sl_error_clear(&err);
  sl_mem_bridge *srv = sl_mem_server_new("127.0.0.1", 0, &err);
  CHECK(srv != NULL);
  CHECK_EQ(err.status, SL_OK);
  CHECK(sl_mem_bridge_from_object(sl_mem_bridge_object(srv)) == srv);
  CHECK(sl_mem_bridge_is_server(srv));
  /* the ports in use: a second server there says why it failed */
  CHECK(sl_mem_server_new("127.0.0.1", sl_mem_bridge_port(srv), &err) == NULL);
  CHECK_EQ(err.status, SL_EIO);
  CHECK(strstr(err.msg, "cannot bind") != NULL);
  sl_object_stop(sl_mem_bridge_object(srv));
  sl_object_unref(sl_mem_bridge_object(srv));
  /* stream nodes too */
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, -1, &err)) == NULL);
  CHECK_EQ(err.status, SL_EINVAL);
  CHECK_STR(err.msg, "value must not be negative");
  CHECK(sl_rate_drop_object(sl_rate_drop_new(1, 5000, &err)) == NULL);
  CHECK_EQ(err.status, SL_ERANGE);
  CHECK_STR(err.msg, "period too long (at most 4294 s)");
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, 1e10, &err)) == NULL);
  CHECK_STR(err.msg, "count too large (at most 2^32-1)");
  CHECK(sl_tcp_bridge_object(sl_tcp_bridge_new("127.0.0.1", 70000, 1, &err)) == NULL);
  CHECK_EQ(err.status, SL_EINVAL);
  CHECK(strstr(err.msg, "bad port for 127.0.0.1:70000") != NULL);
  CHECK(sl_udp_object(sl_udp_new("127.0.0.1", 0, 0, 0, &err)) == NULL);
  CHECK_EQ(err.status, SL_EINVAL);
  CHECK(strstr(err.msg, "bad port") != NULL);
  sl_udp *u = sl_udp_new("127.0.0.1", 0, 1, 0, NULL);
  CHECK(u != NULL);
  CHECK(sl_udp_from_object(sl_udp_object(u)) == u);
  CHECK(sl_tcp_bridge_from_object(sl_udp_object(u)) == NULL);
  sl_object_stop(sl_udp_object(u));
  sl_object_unref(sl_udp_object(u));
  sl_error_clear(&err);
  sl_object *q = sl_fifo_object(sl_fifo_new(4, 0, 0, &err));
  CHECK(q != NULL);
  CHECK_EQ(err.status, SL_OK);
  sl_object_stop(q);
  sl_object_unref(q);
  sl_log_set_emit(1);
}

static const struct tt_case cases[] = {
    {"a class names the node and holds its hooks", test_class_and_hooks},
    {"hooks are optional; a slave counts by default", test_optional_hooks},
    {"the four roles, and a memory master takes only a memory slave", test_roles},
    {"typed handles: upcasts and checked downcasts", test_downcasts},
    {"sl_error: status and message", test_errors},
    {"constructors say why they failed", test_constructor_reasons},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
