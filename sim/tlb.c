/* tlb.c: the TLB and page-table model of tlb.h. The TLB is the simulator's
 * own LRU policy over virtual page numbers; the page table is a set of the
 * table pages that exist at each level, a table being named by the address
 * bits above the part it translates. */
#include "tlb.h"

#include <errno.h>
#include <stdlib.h>

#include "pagemap.h"
#include "sim_policy.h"

#define BASE_SHIFT 12
#define BITS_PER_LEVEL 9

struct upg__tlb {
  unsigned levels, page_shift, walk_levels;
  uint64_t address_mask;
  void *lru;
  upg__pagemap_t tables[UPG__TLB_MAX_LEVELS]; /* level -> the tables that exist */
  upg__tlb_stats_t stats;
};

void upg__tlb_destroy(upg__tlb_t *t) {
  if (t == NULL) return;
  if (t->lru != NULL) upg__sim_lru.destroy(t->lru);
  for (unsigned l = 0; l < UPG__TLB_MAX_LEVELS; l++) upg__pagemap_free(&t->tables[l]);
  free(t);
}

int upg__tlb_create(size_t entries, unsigned levels, unsigned page_shift, upg__tlb_t **out) {
  if (entries == 0 || levels < 2 || levels > UPG__TLB_MAX_LEVELS ||
      (page_shift != BASE_SHIFT && page_shift != BASE_SHIFT + BITS_PER_LEVEL))
    return -EINVAL;
  upg__tlb_t *t = calloc(1, sizeof *t);
  if (t == NULL) return -ENOMEM;
  t->levels = levels, t->page_shift = page_shift;
  t->walk_levels = levels - (page_shift - BASE_SHIFT) / BITS_PER_LEVEL;
  unsigned width = BASE_SHIFT + BITS_PER_LEVEL * levels;
  t->address_mask = width >= 64 ? UINT64_MAX : ((uint64_t)1 << width) - 1;
  upg__sim_setup_t setup = {&upg__sim_lru, entries, NULL, 0};
  int rc = upg__sim_lru.create(&setup, &t->lru);
  for (unsigned l = 0; rc == 0 && l < t->walk_levels; l++)
    rc = upg__pagemap_init(&t->tables[l], 64);
  if (rc != 0) {
    upg__tlb_destroy(t);
    return rc;
  }
  *out = t;
  return 0;
}

/* A walk: one entry read at each level, allocating missing tables. The
 * table at level l (0 is the root) translates the 9 bits just below
 * those that name it. */
static int walk(upg__tlb_t *t, uint64_t address) {
  t->stats.walks++;
  for (unsigned l = 0; l < t->walk_levels; l++) {
    uint64_t table = address >> (BASE_SHIFT + BITS_PER_LEVEL * (t->levels - l));
    t->stats.walk_reads++;
    if (upg__pagemap_find(&t->tables[l], table) != NULL) continue;
    int rc = upg__pagemap_put(&t->tables[l], table, 0);
    if (rc != 0) return rc;
    t->stats.table_pages++;
  }
  return 0;
}

int upg__tlb_access(upg__tlb_t *t, uint64_t address) {
  address &= t->address_mask;
  t->stats.references++;
  int hit = upg__sim_lru.access(t->lru, address >> t->page_shift);
  if (hit < 0) return hit;
  if (hit) {
    t->stats.hits++;
    return 0;
  }
  return walk(t, address);
}

const upg__tlb_stats_t *upg__tlb_stats(const upg__tlb_t *t) { return &t->stats; }
