/* memory_leak.c: the "memory leak" story. A request loop keeps a fixed set
 * of live records and allocates a buffer per request, but forgets to free
 * one buffer in `leak_every`. Under upager the leak does not grow the
 * resident set, which stays at the budget; it shows instead as swap that
 * grows without end and as write-back on every request: each leaked page
 * must be written out once to make room, so the runtime pages constantly
 * even though the live data never changes size.
 *
 *   memory_leak [budget [requests [leak_every]]]     defaults: 4M 40000 4
 *
 * Prints a checkpoint every tenth of the run and exits 1 unless resident
 * memory stayed within the budget while swap grew with the leak. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../example_util.h"
#include "upager.h"

#define LIVE_RECORDS 256
#define RECORD_BYTES 4096
#define REQUEST_BYTES 8192

int main(int argc, char **argv) {
  size_t budget = example_parse_size(argc > 1 ? argv[1] : "4M", "budget");
  long requests = argc > 2 ? atol(argv[2]) : 40000;
  long leak_every = argc > 3 ? atol(argv[3]) : 4;
  if (requests < 10 || leak_every < 1) {
    fprintf(stderr, "usage: memory_leak [budget [requests (10+) [leak_every]]]\n");
    return 2;
  }
  /* No compressed tier: the leak shows in the swap file: a tier in
   * front would keep the leaked buffers, each one repeated byte, as words. */
  upg_options_t opt = {.budget = budget, .compress = "off"};
  example_check(upg_init(&opt), "upg_init");
  char *live[LIVE_RECORDS];
  for (int i = 0; i < LIVE_RECORDS; i++) live[i] = upg_calloc(1, RECORD_BYTES);
  printf("memory leak: %d live records (%d KiB), one %d-byte buffer in %ld leaked, "
         "%zu KiB budget\n",
         LIVE_RECORDS, LIVE_RECORDS * RECORD_BYTES / 1024, REQUEST_BYTES, leak_every,
         budget / 1024);
  printf("  %9s %12s %12s %12s %16s\n", "requests", "leaked KiB", "resident KiB", "swap KiB",
         "writes/request");
  upg_stats_t s = UPG_STATS_INIT, last = {0};
  uint64_t first_swap = 0, max_resident = 0;
  for (long r = 1; r <= requests; r++) {
    char *buffer = upg_malloc(REQUEST_BYTES);
    memset(buffer, (int)r, REQUEST_BYTES);
    char *record = live[r % LIVE_RECORDS];
    record[r % RECORD_BYTES] += buffer[r % REQUEST_BYTES];
    if (r % leak_every != 0) upg_free(buffer);
    if (r % (requests / 10) == 0) {
      example_check(upg_stats(&s), "upg_stats");
      uint64_t writes = s.evict_dirty - last.evict_dirty;
      printf("  %9ld %12ld %12" PRIu64 " %12" PRIu64 " %16.2f\n", r,
             r / leak_every * REQUEST_BYTES / 1024, s.pages_resident * s.page_size / 1024,
             s.swap_slots_in_use * s.page_size / 1024, (double)writes / (double)(requests / 10));
      if (first_swap == 0) first_swap = s.swap_slots_in_use + 1;
      last = s;
    }
  }
  max_resident = s.pages_resident_peak * s.page_size;
  int ok = max_resident <= budget && s.swap_slots_in_use + 1 > 4 * first_swap;
  printf("resident peak %" PRIu64 " KiB within the budget: %s; swap grew with the leak: %s\n",
         max_resident / 1024, max_resident <= budget ? "yes" : "NO",
         s.swap_slots_in_use + 1 > 4 * first_swap ? "yes" : "NO");
  upg_shutdown();
  return ok ? 0 : 1;
}
