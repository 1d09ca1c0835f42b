/* tier_model.h: what the compressed tier (UPAGER_COMPRESS) would serve for
 * a trace, modelled as three levels under LRU: a budget of frames, a share
 * of which the pool takes to hold pages compressed at a ratio, then disk.
 * An exclusive two-level LRU hierarchy behaves as one LRU stack cut in two:
 * a reference at stack depth d hits the frames when d <= F, the pool when
 * F < d <= F + P, and the disk beyond; a first reference is a zero-fill. */
#ifndef UPAGER_SIM_TIER_MODEL_H
#define UPAGER_SIM_TIER_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct upg__tier_levels {
  size_t frames;     /* F: the budget less the pool's share */
  size_t pool_pages; /* P: the share, times the ratio */
  uint64_t requests, frame_hits, tier_hits, disk_reads, first_touches;
} upg__tier_levels_t;

/* `share` of `budget` frames (0..1) holds pages at `ratio`:1. */
int upg__tier_model(const uint64_t *refs, size_t nrefs, size_t budget, double share, double ratio,
                    upg__tier_levels_t *out);

#endif
