/* stats.c: the runtime's counters: the snapshot (upg_stats), the printed
 * report (upg_stats_print) and the fault latency histogram. The field list
 * itself is UPG_STATS_FIELDS in upager.h. The counters (upg__counters) are
 * this file's: counting depends on nothing else, and a file that counts
 * links without the rest of the runtime. */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

upg__counters_t upg__counters;

void upg__stats_reset(size_t page_size, const char *policy, const char *source) {
  memset(&upg__counters, 0, sizeof upg__counters);
  upg__counters.page_size = page_size;
  upg__counters.policy = policy;
  upg__counters.source = source;
}

void upg__stats_serve(int on) { atomic_store(&upg__counters.serving, on); }

void upg__stats_fault_latency(uint64_t ns) {
  unsigned bucket = ns == 0 ? 0 : 63u - (unsigned)__builtin_clzll(ns);
  if (bucket >= UPG_LATENCY_BUCKETS) bucket = UPG_LATENCY_BUCKETS - 1;
  UPG__COUNT(handler_ns, ns);
  UPG__COUNT(latency_hist[bucket], 1);
}

_Static_assert(offsetof(upg__counters_t, tier_fault_over_256us) -
                           offsetof(upg__counters_t, tier_fault_under_16us) ==
                       5 * sizeof(uint64_t) &&
                   offsetof(upg__counters_t, disk_fault_over_256us) -
                           offsetof(upg__counters_t, disk_fault_under_16us) ==
                       5 * sizeof(uint64_t),
               "each histogram's six buckets follow one another");

/* The tier's histogram and the disk's: bucket i below 16 us << i, the last
 * one open. */
void upg__stats_source_latency(int in_memory, uint64_t ns) {
  uint64_t us = ns / 1000;
  int bucket = us < 16 ? 0 : us < 32 ? 1 : us < 64 ? 2 : us < 128 ? 3 : us < 256 ? 4 : 5;
  _Atomic uint64_t *h = in_memory ? &upg__counters.tier_fault_under_16us
                                  : &upg__counters.disk_fault_under_16us;
  atomic_fetch_add_explicit(&h[bucket], 1, memory_order_relaxed);
}

/* Under the lock, so the peak follows the count exactly. */
void upg__stats_resident(long delta) {
  uint64_t now = UPG__COUNT(pages_resident, (uint64_t)delta) + (uint64_t)delta;
  if (now > UPG__GET(pages_resident_peak)) UPG__SET(pages_resident_peak, now);
}

/* The fields every caller has, whatever header it was built with. */
#define FIXED_BYTES offsetof(upg_stats_t, latency_hist[UPG_LATENCY_BUCKETS])

int upg_stats(upg_stats_t *out) {
  upg_stats_t snap;
  if (!atomic_load(&upg__counters.serving)) return UPG_ENOTINIT;
  size_t size = out->size;
  if (size < FIXED_BYTES) return UPG_EINVAL;
  if (size > sizeof snap) size = sizeof snap; /* a newer caller: the rest stays */
#define UPG__SNAP_(name, text) snap.name = UPG__GET(name);
  UPG_STATS_FIELDS(UPG__SNAP_)
#undef UPG__SNAP_
  for (int i = 0; i < UPG_LATENCY_BUCKETS; i++) snap.latency_hist[i] = UPG__GET(latency_hist[i]);
  snap.page_size = upg__counters.page_size;
  snap.size = size;
  memcpy(out, &snap, size); /* out may be paged memory: written outside any lock */
  return 0;
}

static void print_histogram(FILE *out, const upg_stats_t *s) {
  uint64_t total = 0;
  for (int i = 0; i < UPG_LATENCY_BUCKETS; i++) total += s->latency_hist[i];
  if (total == 0) return;
  fprintf(out, "  fault latency (handler entry to exit):\n");
  for (int i = 0; i < UPG_LATENCY_BUCKETS; i++) {
    if (s->latency_hist[i] == 0) continue;
    double lo = (double)(1ull << i) / 1000.0;
    int bar = (int)(40 * s->latency_hist[i] / total);
    fprintf(out, "    %9.1f us .. %9.1f us %10" PRIu64 " %.*s\n", lo, lo * 2, s->latency_hist[i],
            bar > 0 ? bar : 1, "########################################");
  }
}

void upg_stats_print(FILE *out) {
  upg_stats_t s = UPG_STATS_INIT;
  if (upg_stats(&s) != 0) return;
  fprintf(out,
          "upager stats: policy %s, fault source %s, page %" PRIu64 " bytes, budget %" PRIu64
          " frames (%" PRIu64 " KiB)\n",
          upg__counters.policy, upg__counters.source, s.page_size, s.frames,
          s.frames * s.page_size / 1024);
#define UPG__PRINT_(name, text) fprintf(out, "  %-20s %14" PRIu64 "  %s\n", #name, s.name, text);
  UPG_STATS_FIELDS(UPG__PRINT_)
#undef UPG__PRINT_
  print_histogram(out, &s);
}
