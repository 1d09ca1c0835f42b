/* pagemap.c: growth, insertion and deletion for the page map (pagemap.h). */
#include "pagemap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int alloc_table(upg__pagemap_t *m, size_t capacity) {
  unsigned bits = 0;
  while (((size_t)1 << bits) < capacity) bits++;
  capacity = (size_t)1 << bits;
  m->slots = malloc(capacity * sizeof *m->slots);
  if (m->slots == NULL) return -ENOMEM;
  for (size_t i = 0; i < capacity; i++) m->slots[i].key = UPG__PAGEMAP_EMPTY;
  m->mask = capacity - 1;
  m->shift = bits == 0 ? 63 : 64 - bits;
  m->count = 0;
  return 0;
}

int upg__pagemap_init(upg__pagemap_t *m, size_t expected) {
  size_t capacity = 16;
  while (capacity < 4 * expected) capacity *= 2;
  return alloc_table(m, capacity);
}

void upg__pagemap_free(upg__pagemap_t *m) {
  free(m->slots);
  m->slots = NULL;
}

static void insert_new(upg__pagemap_t *m, uint64_t key, uint32_t value) {
  size_t i = upg__pagemap_slot(m, key);
  while (m->slots[i].key != UPG__PAGEMAP_EMPTY) i = (i + 1) & m->mask;
  m->slots[i] = (upg__pagemap_slot_t){key, value};
  m->count++;
}

/* Doubles the table, keeping the load at or below 1/2. */
static int grow(upg__pagemap_t *m) {
  upg__pagemap_t old = *m;
  int rc = alloc_table(m, 2 * (old.mask + 1));
  if (rc != 0) {
    *m = old;
    return rc;
  }
  for (size_t i = 0; i <= old.mask; i++)
    if (old.slots[i].key != UPG__PAGEMAP_EMPTY) insert_new(m, old.slots[i].key, old.slots[i].value);
  upg__pagemap_free(&old);
  return 0;
}

int upg__pagemap_insert(upg__pagemap_t *m, uint64_t key, uint32_t value) {
  if (2 * (m->count + 1) > m->mask + 1) {
    int rc = grow(m);
    if (rc != 0) return rc;
  }
  insert_new(m, key, value);
  return 0;
}

int upg__pagemap_put(upg__pagemap_t *m, uint64_t key, uint32_t value) {
  uint32_t *v = upg__pagemap_find(m, key);
  if (v != NULL) {
    *v = value;
    return 0;
  }
  return upg__pagemap_insert(m, key, value);
}

/* Backward-shift deletion: later keys of the probe run move into the hole
 * when their home slot allows, so no tombstones slow later lookups. */
void upg__pagemap_remove(upg__pagemap_t *m, uint64_t key) {
  size_t hole = upg__pagemap_slot(m, key);
  while (m->slots[hole].key != key) {
    if (m->slots[hole].key == UPG__PAGEMAP_EMPTY) return;
    hole = (hole + 1) & m->mask;
  }
  for (size_t i = (hole + 1) & m->mask; m->slots[i].key != UPG__PAGEMAP_EMPTY;
       i = (i + 1) & m->mask) {
    size_t home = upg__pagemap_slot(m, m->slots[i].key);
    /* The key at i may fill the hole unless its home lies cyclically in (hole, i]. */
    if (((i - home) & m->mask) >= ((i - hole) & m->mask)) {
      m->slots[hole] = m->slots[i];
      hole = i;
    }
  }
  m->slots[hole].key = UPG__PAGEMAP_EMPTY;
  m->count--;
}
