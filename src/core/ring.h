/*
** Index arithmetic of the fixed rings (pool caches, delivery queues,
** mailboxes): a compare, not a division, on paths taken once a frame.
*/
#ifndef SL_CORE_RING_H
#define SL_CORE_RING_H

#include <stdint.h>

/* The slot i places after head in a ring of cap slots (head < cap, i <= cap). */
static inline uint32_t sl_ring_index(uint32_t head, uint32_t i, uint32_t cap) {
  uint32_t k = head + i;
  return k >= cap ? k - cap : k;
}

#endif
