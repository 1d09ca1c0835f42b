/* pagemap.h: the simulator's map from a page number to a small integer (a
 * frame, a list node, a heap slot). Open addressing with linear probing
 * and backward-shift deletion. A map starts at load 1/4 for the count
 * it is told to expect (a policy's frames) and grows at 1/2: short probe
 * runs, no per-entry allocation, one cache line a lookup. Debian's
 * uthash and GLib's GHashTable allocate an entry per key, which the 20 M
 * references a second target cannot afford.
 *
 * Keys are page numbers below UPG__PAGE_MAX; the readers reject larger
 * ones, because UINT64_MAX marks an empty slot. */
#ifndef UPAGER_SIM_PAGEMAP_H
#define UPAGER_SIM_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

#define UPG__PAGE_MAX (UINT64_MAX - 1)
#define UPG__PAGEMAP_EMPTY UINT64_MAX

/* Key and value side by side: a lookup touches one cache line. */
typedef struct upg__pagemap_slot {
  uint64_t key;
  uint32_t value;
} upg__pagemap_slot_t;

typedef struct upg__pagemap {
  upg__pagemap_slot_t *slots;
  size_t mask;    /* capacity - 1; capacity is a power of two */
  unsigned shift; /* 64 - log2(capacity), for Fibonacci hashing */
  size_t count;
} upg__pagemap_t;

/* Room for `expected` keys at load 1/4; 0 or -ENOMEM. */
int upg__pagemap_init(upg__pagemap_t *m, size_t expected);
void upg__pagemap_free(upg__pagemap_t *m);
/* Inserts or replaces; 0 or -ENOMEM (the map is unchanged then). */
int upg__pagemap_put(upg__pagemap_t *m, uint64_t key, uint32_t value);
/* Inserts `key`, which the caller knows is absent (a policy's miss has
 * just looked it up): put without its lookup. 0 or -ENOMEM, as put. */
int upg__pagemap_insert(upg__pagemap_t *m, uint64_t key, uint32_t value);
/* Removes `key` if present. */
void upg__pagemap_remove(upg__pagemap_t *m, uint64_t key);

static inline size_t upg__pagemap_slot(const upg__pagemap_t *m, uint64_t key) {
  return (size_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
}

/* Starts loading the slot where a lookup of `key` begins, for a caller
 * that knows its next keys (access_batch.h). */
static inline void upg__pagemap_prefetch(const upg__pagemap_t *m, uint64_t key) {
  __builtin_prefetch(&m->slots[upg__pagemap_slot(m, key)]);
}

/* The value stored for `key`, or NULL. */
static inline uint32_t *upg__pagemap_find(const upg__pagemap_t *m, uint64_t key) {
  for (size_t i = upg__pagemap_slot(m, key);; i = (i + 1) & m->mask) {
    if (m->slots[i].key == key) return &m->slots[i].value;
    if (m->slots[i].key == UPG__PAGEMAP_EMPTY) return NULL;
  }
}

#endif
