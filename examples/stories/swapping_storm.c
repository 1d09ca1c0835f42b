/* swapping_storm.c: the "swapping storm" story. A batch job loads all of
 * its inputs at once and then works across them, one page of each in turn.
 * Once the inputs together pass the budget, every access evicts a page the
 * next round needs again: the job thrashes, and upager's detector says so
 * on stderr. The same work done one input at a time (load, process,
 * release) keeps its working set inside the budget and barely pages.
 *
 *   swapping_storm [budget [inputs [input-size [rounds]]]]
 *   defaults: 8M 8 2M 4
 *
 * Prints each strategy's time, pages read back and thrashing windows, and
 * exits 1 unless the checksums agree, the storm was detected and the
 * chunked run was not flagged. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../example_util.h"
#include "upager.h"

typedef struct outcome {
  double seconds;
  uint64_t checksum, majors, thrash_windows;
} outcome_t;

static size_t page_size = 4096;

static void load(uint64_t *input, size_t words, uint64_t which) {
  for (size_t i = 0; i < words; i++) input[i] = (which + 1) * 0x9E3779B97F4A7C15ull ^ i;
}

/* One round reads one word a page, the inputs' pages interleaved. */
static uint64_t work_interleaved(uint64_t **inputs, size_t n, size_t words, int rounds) {
  uint64_t sum = 0;
  size_t stride = page_size / 8;
  for (int r = 0; r < rounds; r++)
    for (size_t w = (size_t)r; w < words; w += stride)
      for (size_t k = 0; k < n; k++) sum += inputs[k][w] * (k + 1);
  return sum;
}

static outcome_t measure(const char *name, uint64_t (*run)(size_t, size_t, int), size_t n,
                         size_t words, int rounds) {
  upg_stats_t before = UPG_STATS_INIT, after = UPG_STATS_INIT;
  example_check(upg_stats(&before), "upg_stats");
  double start = example_now_s();
  uint64_t sum = run(n, words, rounds);
  outcome_t o = {example_now_s() - start, sum, 0, 0};
  example_check(upg_stats(&after), "upg_stats");
  o.majors = after.fault_major - before.fault_major;
  o.thrash_windows = after.thrash_windows - before.thrash_windows;
  printf("  %-28s %8.2f s %10" PRIu64 " pages read back %6" PRIu64 " thrashing windows\n", name,
         o.seconds, o.majors, o.thrash_windows);
  return o;
}

static uint64_t all_at_once(size_t n, size_t words, int rounds) {
  uint64_t *inputs[64];
  for (size_t k = 0; k < n; k++) {
    inputs[k] = upg_malloc(words * 8);
    load(inputs[k], words, k);
  }
  uint64_t sum = work_interleaved(inputs, n, words, rounds);
  for (size_t k = 0; k < n; k++) upg_free(inputs[k]);
  return sum;
}

static uint64_t in_chunks(size_t n, size_t words, int rounds) {
  uint64_t sum = 0;
  for (size_t k = 0; k < n; k++) {
    uint64_t *input = upg_malloc(words * 8);
    load(input, words, k);
    uint64_t *one[1] = {input};
    /* The same reads as the storm's, for this input: weighted alike. */
    sum += work_interleaved(one, 1, words, rounds) * (k + 1);
    upg_free(input);
  }
  return sum;
}

int main(int argc, char **argv) {
  size_t budget = example_parse_size(argc > 1 ? argv[1] : "8M", "budget");
  size_t n = argc > 2 ? (size_t)atoi(argv[2]) : 8;
  size_t size = example_parse_size(argc > 3 ? argv[3] : "2M", "input-size");
  int rounds = argc > 4 ? atoi(argv[4]) : 4;
  if (n < 1 || n > 64 || rounds < 1) {
    fprintf(stderr, "usage: swapping_storm [budget [inputs (1-64) [input-size [rounds]]]]\n");
    return 2;
  }
  /* No compressed tier: the storm is told in swap-file reads; the
   * compressed tier in front makes it cheaper, not different. */
  upg_options_t opt = {.budget = budget, .compress = "off"};
  example_check(upg_init(&opt), "upg_init");
  page_size = (size_t)sysconf(_SC_PAGESIZE);
  size_t words = size / 8;
  printf("swapping storm: %zu inputs of %zu KiB (%zu KiB together) under a %zu KiB budget\n", n,
         size / 1024, n * size / 1024, budget / 1024);
  outcome_t storm = measure("all inputs loaded at once", all_at_once, n, words, rounds);
  outcome_t chunks = measure("one input at a time", in_chunks, n, words, rounds);
  int ok = storm.checksum == chunks.checksum && storm.thrash_windows > 0 &&
           chunks.thrash_windows == 0;
  printf("same result: %s; storm detected: %s; chunked run flagged: %s\n",
         storm.checksum == chunks.checksum ? "yes" : "NO", storm.thrash_windows ? "yes" : "NO",
         chunks.thrash_windows ? "YES" : "no");
  upg_shutdown();
  return ok ? 0 : 1;
}
