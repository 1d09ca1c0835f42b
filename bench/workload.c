/* workload.c: the one workload bench/vs_kernel runs twice, on ordinary
 * memory under the kernel's swap and on a upager region, so that both
 * sides execute the same instructions over the same bytes.
 *
 *   workload plain|upager seq|random|zipf REGION_BYTES [ACCESSES [CONTENTS]]
 *
 * CONTENTS is what every page holds: `records` (the default), heap-like
 * 64-byte records (an id, pointers that share their high bytes, a small
 * counter, a price, a word of a small vocabulary, a timestamp), which LZ4
 * packs about 2:1 page by page, as real heaps do; `random`, bytes no
 * compressor can shrink; or `sparse`, the first version's one word in
 * eight, mostly zeros, which flatters any compressor.
 * seq: write every page of the region, then read it all back twice.
 * random: ACCESSES touches of uniformly random pages (read a word, write it).
 * zipf: the same with page popularity Zipf-distributed (s = 0.99), hot pages
 * scattered over the region.
 * random and zipf first write every page, untimed.
 * Prints one line: elapsed seconds, a checksum that both runs must agree
 * on and the major faults of the timed part (the kernel's on ordinary
 * memory, the runtime's on upager); then, on stderr, the contents' LZ4
 * ratio as measured on 256 of its pages, each compressed on its own, and
 * for random and zipf with UPAGER_BUDGET set, the fewest misses any pager
 * could have: the distinct pages touched that the fill left on disk.
 * upager takes its budget from UPAGER_BUDGET. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include <lz4.h>

#include "bench.h"
#include "upager.h"

#define PAGE 4096u
#define WORDS_PER_PAGE (PAGE / sizeof(uint64_t))
#define ZIPF_S 0.99

static uint64_t *map_region(const char *mode, size_t bytes) {
  if (strcmp(mode, "upager") == 0) {
    uint64_t *p = upg_map(bytes, 0);
    if (p == NULL)
      fprintf(stderr, "workload: upg_map: %s (%s)\n", upg_strerror(-errno), upg_last_error());
    return p;
  }
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* ---- page contents ------------------------------------------------------*/
enum { SPARSE, RECORDS, RANDOM };
static int contents = RECORDS;

static void fill_page(uint64_t *page, size_t index) {
  uint64_t state = index * 0x9E3779B97F4A7C15ull + 11;
  switch (contents) {
    case RECORDS: bench_fill_records(page, index); break;
    case RANDOM:
      for (size_t w = 0; w < WORDS_PER_PAGE; w++) page[w] = bench_next_random(&state);
      break;
    default:
      for (size_t w = 0; w < WORDS_PER_PAGE; w += 8) page[w] = index * 31 + w;
  }
}

/* The contents' LZ4 ratio, each page compressed on its own as the tier
 * does; ordinary memory, so measuring touches no paged page. */
static double measured_ratio(size_t pages) {
  static uint64_t page[WORDS_PER_PAGE];
  static char out[LZ4_COMPRESSBOUND(PAGE)];
  size_t in = 0, packed = 0, sample = pages < 256 ? pages : 256;
  for (size_t i = 0; i < sample; i++) {
    memset(page, 0, sizeof page);
    fill_page(page, i * (pages / sample));
    in += PAGE;
    packed += (size_t)LZ4_compress_default((const char *)page, out, PAGE, sizeof out);
  }
  return (double)in / (double)packed;
}

static uint64_t sequential(uint64_t *a, size_t pages) {
  uint64_t sum = 0;
  for (size_t p = 0; p < pages; p++) fill_page(a + p * WORDS_PER_PAGE, p);
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

/* The page of an access drawn from r; zipf ranks are scattered over the
 * region by an odd multiplier, a permutation of a power-of-two page count. */
static size_t page_of(uint64_t r, size_t pages, const double *cdf) {
  if (cdf == NULL) return r % pages;
  return (zipf_rank(cdf, pages, (double)(r >> 11) / 9007199254740992.0) * 0x9E3779B1u) &
         (pages - 1);
}

/* Touches `accesses` pages. */
static uint64_t touches(uint64_t *a, size_t pages, size_t accesses, const double *cdf) {
  uint64_t state = 42, sum = 0;
  for (size_t i = 0; i < accesses; i++) {
    uint64_t r = bench_next_random(&state);
    uint64_t *word = &a[page_of(r, pages, cdf) * WORDS_PER_PAGE + (r >> 40) % WORDS_PER_PAGE];
    sum += *word;
    *word += i;
  }
  return sum;
}

/* The fewest misses any pager can have in touches(): the distinct pages it
 * touches that start on disk, all but the last `resident` pages the fill
 * wrote, which it leaves in memory. No replacement policy avoids these. */
static size_t floor_misses(size_t pages, size_t accesses, const double *cdf, size_t resident) {
  unsigned char *seen = calloc(pages, 1);
  uint64_t state = 42;
  size_t misses = 0;
  if (seen == NULL) return 0;
  for (size_t i = 0; i < accesses; i++) {
    size_t page = page_of(bench_next_random(&state), pages, cdf);
    misses += !seen[page] && page + resident < pages;
    seen[page] = 1;
  }
  free(seen);
  return misses;
}

/* Major faults so far: the kernel's (swap-ins) on ordinary memory, the
 * runtime's on a upager region. */
static uint64_t majors(const char *mode) {
  if (strcmp(mode, "upager") == 0) {
    upg_stats_t s = UPG_STATS_INIT;
    return upg_stats(&s) == 0 ? s.fault_major : 0;
  }
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_majflt : 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: workload plain|upager seq|random|zipf REGION_BYTES [ACCESSES "
                    "[records|random|sparse]]\n");
    return 2;
  }
  const char *mode = argv[1], *pattern = argv[2];
  size_t bytes = strtoull(argv[3], NULL, 0), pages = bytes / PAGE;
  size_t accesses = argc > 4 ? strtoull(argv[4], NULL, 0) : pages;
  const char *kind = argc > 5 ? argv[5] : "records";
  contents = strcmp(kind, "records") == 0  ? RECORDS
             : strcmp(kind, "random") == 0 ? RANDOM
             : strcmp(kind, "sparse") == 0 ? SPARSE
                                           : -1;
  if (contents < 0) {
    fprintf(stderr, "workload: unknown contents '%s'\n", kind);
    return 2;
  }
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
    for (size_t p = 0; p < pages; p++) fill_page(a + p * WORDS_PER_PAGE, p);
  uint64_t majors0 = majors(mode);
  double t0 = bench_now_us();
  uint64_t sum;
  if (strcmp(pattern, "seq") == 0) sum = sequential(a, pages);
  else if (strcmp(pattern, "random") == 0 || cdf != NULL) sum = touches(a, pages, accesses, cdf);
  else {
    fprintf(stderr, "workload: unknown pattern '%s'\n", pattern);
    return 2;
  }
  double seconds = (bench_now_us() - t0) / 1e6;
  printf("%s %s %.3f s checksum %016" PRIx64 " majors %" PRIu64 "\n", mode, pattern, seconds, sum,
         majors(mode) - majors0);
  size_t budget;
  const char *b = getenv("UPAGER_BUDGET");
  if (cdf != NULL || strcmp(pattern, "random") == 0)
    if (b != NULL && upg_parse_size(b, &budget) == 0)
      fprintf(stderr, "floor %s: %zu misses at least, with the last %zu pages resident\n", pattern,
              floor_misses(pages, accesses, cdf, budget / PAGE), budget / PAGE);
  fprintf(stderr, "contents %s: LZ4 %.2f:1, measured on 256 pages each on its own\n", kind,
          measured_ratio(pages));
  free(cdf);
  return 0;
}
