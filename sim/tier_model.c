/* tier_model.c: the compressed tier's three levels from one LRU stack pass
 * (tier_model.h). */
#include "tier_model.h"

#include "mrc.h"

int upg__tier_model(const uint64_t *refs, size_t nrefs, size_t budget, double share, double ratio,
                    upg__tier_levels_t *out) {
  size_t pool_frames = (size_t)((double)budget * share);
  size_t sizes[3];
  uint64_t hits[3];
  out->frames = budget - pool_frames;
  out->pool_pages = (size_t)((double)pool_frames * ratio);
  /* The last size holds every page: its misses are the first touches. */
  sizes[0] = out->frames;
  sizes[1] = out->frames + out->pool_pages;
  sizes[2] = nrefs > sizes[1] ? nrefs : sizes[1];
  int rc = upg__mrc_lru(refs, nrefs, sizes, 3, hits);
  if (rc != 0) return rc;
  out->requests = nrefs;
  out->frame_hits = hits[0];
  out->tier_hits = hits[1] - hits[0];
  out->disk_reads = hits[2] - hits[1];
  out->first_touches = nrefs - hits[2];
  return 0;
}
