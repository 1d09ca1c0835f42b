/* sim_tier.c: `upager sim --tier RATIO[:SHARE] --frames N[,N...]`: the
 * references the compressed tier's three levels would serve at each budget
 * (sim/tier_model.h): frames, the pool at RATIO:1 in SHARE percent of the
 * budget (default 50, as UPAGER_COMPRESS_POOL), and the disk. */
#include <stdlib.h>

#include "sim_cli.h"
#include "tier_model.h"

static double pct(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

int upg__cli_sim_tier(const upg__sim_args_t *a, upg__refs_t *reader) {
  uint64_t *refs;
  size_t nrefs;
  int rc = upg__refs_load(reader, &refs, &nrefs);
  if (rc != 0) return upg__cli_trace_failed("sim", reader, rc);
  printf("%s: %zu references; the pool takes %.0f%% of each budget at %.2f:1 (LRU model)\n",
         a->trace, nrefs, a->tier_share * 100, a->tier_ratio);
  printf("%10s %10s %10s %16s %16s %16s %12s\n", "budget", "frames", "pool pages", "frame hits",
         "tier hits", "disk reads", "first touch");
  for (size_t f = 0; rc == 0 && f < a->nframes; f++) {
    upg__tier_levels_t l;
    rc = upg__tier_model(refs, nrefs, a->frames[f], a->tier_share, a->tier_ratio, &l);
    if (rc == 0)
      printf("%10zu %10zu %10zu %9llu %5.1f%% %9llu %5.1f%% %9llu %5.1f%% %12llu\n", a->frames[f],
             l.frames, l.pool_pages, (unsigned long long)l.frame_hits, pct(l.frame_hits, nrefs),
             (unsigned long long)l.tier_hits, pct(l.tier_hits, nrefs),
             (unsigned long long)l.disk_reads, pct(l.disk_reads, nrefs),
             (unsigned long long)l.first_touches);
  }
  free(refs);
  return rc == 0 ? 0 : upg__cli_trace_failed("sim", reader, rc);
}
