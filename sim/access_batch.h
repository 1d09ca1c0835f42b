/* access_batch.h: the batch loop of policies that look pages up in a page
 * map. Each lookup of a replay is a likely cache miss (the map of a few
 * thousand frames outgrows L1, and zstd's window shares L2), so the loop
 * prefetches the map slot of the reference a few places ahead while it
 * serves the current one; and calling the policy's access directly from
 * here, inlined, spares an indirect call a reference. */
#ifndef UPAGER_SIM_ACCESS_BATCH_H
#define UPAGER_SIM_ACCESS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "pagemap.h"

/* Far enough ahead to cover a miss to L3 at a few nanoseconds a reference. */
#define UPG__PREFETCH_AHEAD 8

/* The hits among pages[0, n), or the first negative errno of access. */
static inline long upg__access_batch(void *state, const upg__pagemap_t *map,
                                     int (*access)(void *, uint64_t), const uint64_t *pages,
                                     size_t n) {
  long hits = 0;
  for (size_t i = 0; i < n && i < UPG__PREFETCH_AHEAD; i++) upg__pagemap_prefetch(map, pages[i]);
  for (size_t i = 0; i < n; i++) {
    if (i + UPG__PREFETCH_AHEAD < n) upg__pagemap_prefetch(map, pages[i + UPG__PREFETCH_AHEAD]);
    int rc = access(state, pages[i]);
    if (rc < 0) return rc;
    hits += rc;
  }
  return hits;
}

#endif
