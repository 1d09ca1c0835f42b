/* array_sum.c: the main demo. An array of uint64_t sixteen times larger
 * than the runtime's budget is filled and then summed twice; each sum is
 * checked against the closed form, and each phase reports its time and the
 * paging it caused, ending with the runtime's full statistics report.
 *
 *   array_sum [budget [array_bytes]]      defaults: 16M 256M
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "example_util.h"
#include "upager.h"

/* 0 + 1 + ... + (n-1), modulo 2^64 as the summing loop computes it:
 * halve whichever factor is even before multiplying so nothing is lost. */
static uint64_t closed_form_sum(uint64_t n) {
  return (n % 2 == 0) ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
}

static void fill(uint64_t *a, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) a[i] = i;
}

static uint64_t sum(const uint64_t *a, uint64_t n) {
  uint64_t s = 0;
  for (uint64_t i = 0; i < n; i++) s += a[i];
  return s;
}

/* One line of what a phase cost: time and the runtime's counters moved. */
static void report_phase(const char *name, double seconds, const upg_stats_t *before) {
  upg_stats_t now = UPG_STATS_INIT;
  example_check(upg_stats(&now), "upg_stats");
  printf("  %-7s %6.2f s  faults: %7" PRIu64 " zero-fill %7" PRIu64 " write %7" PRIu64
         " minor %7" PRIu64 " major | evicted %7" PRIu64 " clean %7" PRIu64
         " dirty | swap %6.1f MiB written %6.1f MiB read\n",
         name, seconds, now.fault_zero - before->fault_zero, now.fault_write - before->fault_write,
         now.fault_minor - before->fault_minor, now.fault_major - before->fault_major,
         now.evict_clean - before->evict_clean, now.evict_dirty - before->evict_dirty,
         example_mib(now.swap_bytes_written - before->swap_bytes_written),
         example_mib(now.swap_bytes_read - before->swap_bytes_read));
}

/* Sums the array once, reports the phase, and says whether the sum is right. */
static int sum_phase(const char *name, const uint64_t *a, uint64_t n) {
  upg_stats_t before = UPG_STATS_INIT;
  example_check(upg_stats(&before), "upg_stats");
  double t0 = example_now_s();
  uint64_t s = sum(a, n);
  report_phase(name, example_now_s() - t0, &before);
  uint64_t want = closed_form_sum(n);
  printf("          sum = %" PRIu64 ", closed form n(n-1)/2 = %" PRIu64 ": %s\n", s, want,
         s == want ? "OK" : "MISMATCH");
  return s == want;
}

int main(int argc, char **argv) {
  if (argc > 3 || (argc > 1 && strcmp(argv[1], "-h") == 0)) {
    fprintf(stderr, "usage: %s [budget [array_bytes]]   (sizes like 16M, 1G)\n", argv[0]);
    return 2;
  }
  size_t budget = argc > 1 ? example_parse_size(argv[1], "budget") : (size_t)16 << 20;
  size_t bytes = argc > 2 ? example_parse_size(argv[2], "array_bytes") : (size_t)256 << 20;
  uint64_t n = bytes / sizeof(uint64_t);

  upg_options_t opt = {.budget = budget};
  example_check(upg_init(&opt), "upg_init");
  uint64_t *a = example_map(n * sizeof(uint64_t));

  printf("array_sum: %.0f MiB of uint64_t (%" PRIu64 " elements) in a paged region,\n"
         "           at most %.0f MiB resident (%.1fx smaller); the rest is paged to a swap\n"
         "           file in $UPAGER_SWAP_DIR, else $TMPDIR, else /tmp.\n",
         example_mib(n * sizeof(uint64_t)), n, example_mib(budget),
         (double)(n * sizeof(uint64_t)) / (double)budget);
  printf("A first touch is a zero-fill fault (mapped read-only); the write that follows\n"
         "is a write fault (the page is now dirty and must be written to swap when\n"
         "evicted); a page read back from swap is a major fault. A sequential scan\n"
         "larger than the budget misses on every page under Clock (as under LRU),\n"
         "so both sums read the whole array back; readahead loads it in windows,\n"
         "one fault for many pages, the next window read in the background when the\n"
         "program touches the middle of the current one (a minor fault).\n\n");

  upg_stats_t before = UPG_STATS_INIT;
  example_check(upg_stats(&before), "upg_stats");
  double t0 = example_now_s();
  fill(a, n);
  report_phase("fill", example_now_s() - t0, &before);
  int ok = sum_phase("sum #1", a, n);
  ok &= sum_phase("sum #2", a, n);

  printf("\n%s; the runtime's report follows on stderr.\n",
         ok ? "Both sums are correct" : "A SUM IS WRONG");
  fflush(stdout);
  upg_stats_print(stderr);
  example_check(upg_unmap(a, n * sizeof(uint64_t)), "upg_unmap");
  upg_shutdown();
  return ok ? 0 : 1;
}
