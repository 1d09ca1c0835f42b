/* workload.c: the one workload bench/vs_kernel runs twice, on ordinary
 * memory under the kernel's swap and on a upager region, so that both
 * sides execute the same instructions over the same bytes.
 *
 *   workload plain|upager seq|random|zipf REGION_BYTES [ACCESSES]
 *
 * seq: write every page of the region, then read it all back twice.
 * random: ACCESSES touches of uniformly random pages (read a word, write it).
 * zipf: the same with page popularity Zipf-distributed (s = 0.99), hot pages
 * scattered over the region.
 * random and zipf first write every page, untimed.
 * Prints one line: elapsed seconds and a checksum that both runs must agree
 * on. upager takes its budget from UPAGER_BUDGET. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "upager.h"

#define PAGE 4096u
#define WORDS_PER_PAGE (PAGE / sizeof(uint64_t))
#define ZIPF_S 0.99

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t *map_region(const char *mode, size_t bytes) {
  if (strcmp(mode, "upager") == 0) {
    uint64_t *p = upg_map(bytes, 0);
    if (p == NULL) fprintf(stderr, "workload: upg_map: %s (%s)\n", upg_strerror(-errno), upg_last_error());
    return p;
  }
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static uint64_t sequential(uint64_t *a, size_t pages) {
  uint64_t sum = 0;
  for (size_t p = 0; p < pages; p++)
    for (size_t w = 0; w < WORDS_PER_PAGE; w += 8) a[p * WORDS_PER_PAGE + w] = p * 31 + w;
  for (int pass = 0; pass < 2; pass++)
    for (size_t p = 0; p < pages; p++)
      for (size_t w = 0; w < WORDS_PER_PAGE; w += 8) sum += a[p * WORDS_PER_PAGE + w];
  return sum;
}

/* Cumulative Zipf probabilities over ranks 1..n, for inversion by search. */
static double *zipf_cdf(size_t n) {
  double *cdf = malloc(n * sizeof *cdf), total = 0;
  if (cdf == NULL) return NULL;
  for (size_t i = 0; i < n; i++) cdf[i] = total += 1.0 / pow((double)(i + 1), ZIPF_S);
  for (size_t i = 0; i < n; i++) cdf[i] /= total;
  return cdf;
}

static size_t zipf_rank(const double *cdf, size_t n, double u) {
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Touches `accesses` pages; zipf ranks are scattered over the region by an
 * odd multiplier, a permutation of a power-of-two page count. */
static uint64_t touches(uint64_t *a, size_t pages, size_t accesses, const double *cdf) {
  uint64_t state = 42, sum = 0;
  for (size_t i = 0; i < accesses; i++) {
    uint64_t r = next_random(&state);
    size_t page = cdf != NULL ? (zipf_rank(cdf, pages, (double)(r >> 11) / 9007199254740992.0) *
                                 0x9E3779B1u) & (pages - 1)
                              : r % pages;
    uint64_t *word = &a[page * WORDS_PER_PAGE + (r >> 40) % WORDS_PER_PAGE];
    sum += *word;
    *word += i;
  }
  return sum;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: workload plain|upager seq|random|zipf REGION_BYTES [ACCESSES]\n");
    return 2;
  }
  const char *mode = argv[1], *pattern = argv[2];
  size_t bytes = strtoull(argv[3], NULL, 0), pages = bytes / PAGE;
  size_t accesses = argc > 4 ? strtoull(argv[4], NULL, 0) : pages;
  if (pages == 0 || (pages & (pages - 1)) != 0) {
    fprintf(stderr, "workload: REGION_BYTES must be a power-of-two number of pages\n");
    return 2;
  }
  double *cdf = strcmp(pattern, "zipf") == 0 ? zipf_cdf(pages) : NULL;
  uint64_t *a = map_region(mode, bytes);
  if (a == NULL) return 1;
  /* random and zipf start from a region that is all in place (and mostly
   * swapped out), as a long-running program's heap would be. */
  if (strcmp(pattern, "seq") != 0)
    for (size_t p = 0; p < pages; p++) a[p * WORDS_PER_PAGE] = p;
  double t0 = now_s();
  uint64_t sum;
  if (strcmp(pattern, "seq") == 0) sum = sequential(a, pages);
  else if (strcmp(pattern, "random") == 0 || cdf != NULL) sum = touches(a, pages, accesses, cdf);
  else {
    fprintf(stderr, "workload: unknown pattern '%s'\n", pattern);
    return 2;
  }
  printf("%s %s %.3f s checksum %016" PRIx64 "\n", mode, pattern, now_s() - t0, sum);
  free(cdf);
  return 0;
}
