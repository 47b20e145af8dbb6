/*
** Emulate(min, max): a memory slave backed by a sparse map of 4 KiB
** pages keyed by address & ~0xFFF, allocated zeroed on first touch (Rogue
** leaves them uninitialised). Every transaction completes at once, in the
** caller's thread; no alignment or size checks, as Rogue.
*/
#include <stdlib.h>
#include <string.h>

#include "streamlua/memory.h"

#define PAGE_SIZE 4096u
#define PAGE_MASK ((uint64_t)PAGE_SIZE - 1)

typedef struct page {
  struct page *next;             /* hash chain */
  uint64_t base;
  uint8_t bytes[PAGE_SIZE];
} page;

typedef struct sl_emulate emulate;

struct sl_emulate {
  sl_object obj;
  sl_mem_slave slave;
  pthread_mutex_t mutex;         /* guards the page table */
  page **table;
  size_t nbuckets, npages;
};

static size_t bucket(const emulate *e, uint64_t base) {
  uint64_t h = (base >> 12) * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 32) & (e->nbuckets - 1);
}

static page *find(emulate *e, uint64_t base) {
  for (page *p = e->table[bucket(e, base)]; p != NULL; p = p->next)
    if (p->base == base) return p;
  return NULL;
}

static void grow(emulate *e) {
  size_t n = e->nbuckets * 2;
  page **t = calloc(n, sizeof *t);
  if (t == NULL) return;   /* longer chains, still correct */
  page **old = e->table;
  size_t oldn = e->nbuckets;
  e->table = t;
  e->nbuckets = n;
  for (size_t i = 0; i < oldn; i++) {
    for (page *p = old[i], *next; p != NULL; p = next) {
      next = p->next;
      size_t b = bucket(e, p->base);
      p->next = t[b];
      t[b] = p;
    }
  }
  free(old);
}

/* The page at base, made if `make`; NULL if absent (or out of memory). */
static page *get_page(emulate *e, uint64_t base, int make) {
  page *p = find(e, base);
  if (p != NULL || !make) return p;
  p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->base = base;
  size_t b = bucket(e, base);
  p->next = e->table[b];
  e->table[b] = p;
  if (++e->npages > e->nbuckets * 2) grow(e);
  return p;
}

static void emulate_do(sl_mem_slave *s, sl_transaction *t) {
  emulate *e = (emulate *)s->owner;
  uint64_t addr = sl_transaction_address(t);
  uint32_t size = sl_transaction_size(t);
  uint8_t *data = sl_transaction_data(t);
  int write = sl_mem_type_is_write(sl_transaction_type(t));
  pthread_mutex_lock(&e->mutex);
  for (uint32_t done = 0; done < size;) {
    uint64_t a = addr + done;
    uint32_t in_page = (uint32_t)(a & PAGE_MASK);
    uint32_t n = PAGE_SIZE - in_page;
    if (n > size - done) n = size - done;
    page *p = get_page(e, a & ~PAGE_MASK, write);
    if (write && p == NULL) {
      pthread_mutex_unlock(&e->mutex);
      sl_transaction_error(t, "Emulate: out of memory");
      return;
    }
    if (write) memcpy(p->bytes + in_page, data + done, n);
    else if (p != NULL) memcpy(data + done, p->bytes + in_page, n);
    else memset(data + done, 0, n);   /* never written: reads as zero */
    done += n;
  }
  pthread_mutex_unlock(&e->mutex);
  sl_transaction_done(t);
}

static const sl_mem_slave_ops emulate_ops = {.do_transaction = emulate_do};

static void emulate_destroy(sl_object *obj) {
  emulate *e = (emulate *)obj;
  for (size_t i = 0; i < e->nbuckets; i++) {
    for (page *p = e->table[i], *next; p != NULL; p = next) {
      next = p->next;
      free(p);
    }
  }
  free(e->table);
  pthread_mutex_destroy(&e->mutex);
  free(e);
}

static const sl_class emulate_class = {.name = "memory.Emulate",
                                       .destroy = emulate_destroy};

sl_emulate *sl_emulate_new(uint32_t min, uint32_t max, sl_error *err) {
  emulate *e = calloc(1, sizeof *e);
  if (e == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  e->nbuckets = 64;
  e->table = calloc(e->nbuckets, sizeof *e->table);
  if (e->table == NULL) goto fail_table;
  if (pthread_mutex_init(&e->mutex, NULL) != 0) goto fail_mutex;
  sl_object_init(&e->obj, &emulate_class);
  sl_mem_slave_init(&e->slave, &emulate_ops, &e->obj, min, max);
  return e;
fail_mutex:
  free(e->table);
fail_table:
  free(e);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_emulate_object(sl_emulate *e) { return e != NULL ? &e->obj : NULL; }

sl_emulate *sl_emulate_from_object(sl_object *obj) {
  return sl_object_is(obj, &emulate_class) ? (emulate *)obj : NULL;
}

size_t sl_emulate_pages(sl_emulate *e) {
  pthread_mutex_lock(&e->mutex);
  size_t n = e->npages;
  pthread_mutex_unlock(&e->mutex);
  return n;
}
