/* test_heap.c: upg_malloc and friends in a program that links libupager:
 * blocks live in paged memory and survive eviction, large frees become
 * discards under pressure, mimalloc never replaces region mappings, and
 * the program's own malloc stays glibc's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

#include "../helpers.h"
#include "heap.h"

#define MIB ((size_t)1 << 20)

static void start_small(void) { start_runtime(4 * MIB, NULL); }

Test(heap, blocks_live_in_paged_memory, .init = start_small, .timeout = 30) {
  void *p = upg_malloc(100);
  cr_assert_not_null(p);
  upg_page_info_t info;
  cr_assert_eq(upg_page_info(p, &info), 0, "upg_malloc's block is not in a paged region");
  cr_assert(upg__heap_contains(p));
  upg_free(p);
}

Test(heap, contents_survive_a_heap_eight_times_the_budget, .init = start_small, .timeout = 60) {
  enum { BLOCKS = 64 };
  uint64_t *blocks[BLOCKS];
  size_t words = 512 * 1024 / 8; /* 512 KiB a block: 32 MiB against 4 MiB */
  for (size_t b = 0; b < BLOCKS; b++) {
    blocks[b] = upg_malloc(words * 8);
    cr_assert_not_null(blocks[b]);
    for (size_t i = 0; i < words; i++) blocks[b][i] = pattern(b, i, 1);
  }
  size_t wrong = 0;
  for (size_t b = 0; b < BLOCKS; b++)
    for (size_t i = 0; i < words; i++) wrong += blocks[b][i] != pattern(b, i, 1);
  cr_assert_eq(wrong, 0, "%zu words lost", wrong);
  upg_stats_t s = stats_now();
  cr_assert_gt(s.fault_major, 0, "nothing was paged back in");
  cr_assert_leq(s.pages_resident_peak, s.frames);
  for (size_t b = 0; b < BLOCKS; b++) upg_free(blocks[b]);
}

Test(heap, calloc_zeroes_and_realloc_keeps_the_prefix, .init = start_small, .timeout = 30) {
  unsigned char *z = upg_calloc(3 * MIB, 1);
  cr_assert_not_null(z);
  size_t nonzero = 0;
  for (size_t i = 0; i < 3 * MIB; i++) nonzero += z[i] != 0;
  cr_assert_eq(nonzero, 0);
  memset(z, 0xAB, 3 * MIB);
  upg_free(z);
  unsigned char *z2 = upg_calloc(3 * MIB, 1); /* likely the same memory again */
  for (size_t i = 0; i < 3 * MIB; i++) nonzero += z2[i] != 0;
  cr_assert_eq(nonzero, 0, "calloc returned %zu stale bytes", nonzero);
  uint64_t *r = upg_malloc(1000 * 8);
  for (size_t i = 0; i < 1000; i++) r[i] = pattern(7, i, 2);
  r = upg_realloc(r, 2 * MIB);
  size_t wrong = 0;
  for (size_t i = 0; i < 1000; i++) wrong += r[i] != pattern(7, i, 2);
  cr_assert_eq(wrong, 0);
  upg_free(r);
  upg_free(z2);
  upg_free(NULL);
}

Test(heap, large_free_under_pressure_is_a_discard, .init = start_small, .timeout = 30) {
  char *big = upg_malloc(8 * MIB); /* twice the budget: resident at the budget */
  memset(big, 1, 8 * MIB);
  uint64_t before = stats_now().discards;
  upg_free(big);
  uint64_t after = stats_now().discards;
  cr_assert_gt(after - before, 512, "only %llu pages of a freed 8 MiB block discarded",
               (unsigned long long)(after - before));
}

Test(heap, small_free_without_pressure_costs_no_discard, .init = start_small, .timeout = 30) {
  char *p = upg_malloc(512 * 1024);
  memset(p, 1, 512 * 1024);
  uint64_t before = stats_now().discards;
  upg_free(p);
  cr_assert_eq(stats_now().discards, before);
}

/* Decommit or reset by mimalloc would show as mappings in the heap that
 * are not the runtime's: those are all MADV_DONTFORK ("dc" in smaps),
 * the anonymous view as well as the memfd's, and a new mmap is not. */
Test(heap, mimalloc_never_replaces_region_mappings, .init = start_small, .timeout = 60) {
  void *keep[256] = {0};
  for (int round = 0; round < 8000; round++) {
    int slot = round % 256;
    upg_free(keep[slot]);
    size_t len = (size_t)(round * 7919 % 4000 + 1) * (round % 10 == 0 ? 64 : 1);
    keep[slot] = upg_malloc(len);
    memset(keep[slot], round & 0xff, len);
  }
  for (int i = 0; i < 256; i++) upg_free(keep[i]);
  FILE *smaps = fopen("/proc/self/smaps", "r");
  char line[512];
  long foreign = 0, inside = 0, in_heap = 0;
  uintptr_t lo = (uintptr_t)atomic_load(&upg__heap.base), hi = lo + upg__heap.len;
  while (fgets(line, sizeof line, smaps)) {
    uintptr_t a, b;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
      in_heap = b > lo && a < hi;
      inside += in_heap;
    } else if (in_heap && strncmp(line, "VmFlags:", 8) == 0) {
      foreign += strstr(line, " dc") == NULL;
    }
  }
  fclose(smaps);
  cr_assert_gt(inside, 0);
  cr_assert_eq(foreign, 0, "%ld mappings in the heap are not the region's", foreign);
}

Test(heap, the_programs_malloc_stays_glibcs, .init = start_small, .timeout = 30) {
  cr_assert_not_null(upg_malloc(64)); /* mimalloc is loaded now */
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  cr_assert_not_null(libc);
  cr_assert_eq(dlsym(RTLD_DEFAULT, "malloc"), dlsym(libc, "malloc"),
               "malloc no longer resolves to glibc's");
  cr_assert_eq(dlsym(RTLD_DEFAULT, "free"), dlsym(libc, "free"));
  void *p = malloc(1000);
  upg_page_info_t info;
  cr_assert_eq(upg_page_info(p, &info), UPG_ENOTREGION, "malloc returned paged memory");
  free(p);
}

/* A heap filled downwards, as GNU sort fills its line table: each first
 * touch maps the fresh pages around it, so most pages cost no fault. */
Test(heap, first_touches_map_fresh_neighbours_both_ways, .init = start_small, .timeout = 30) {
  size_t pages = 256, page = 4096;
  char *p = upg_malloc(pages * page);
  cr_assert_not_null(p);
  uint64_t zero = stats_now().fault_zero;
  for (size_t i = pages; i-- > 0;) p[i * page] = (char)i;
  uint64_t faults = stats_now().fault_zero - zero;
  cr_assert_leq(faults, pages / 8, "%llu first-touch faults for %zu pages",
                (unsigned long long)faults, pages);
  for (size_t i = 0; i < pages; i++) cr_assert_eq(p[i * page], (char)i);
  upg_free(p);
}

static void start_roomy(void) { start_runtime(64 * MIB, NULL); }

/* A heap growing in order, past its first 4 MiB, gets its fresh pages from
 * the kernel in batches (fresh_populated, made by the prefetch thread
 * while the program goes on), and they are real, zeroed memory counted as
 * resident. */
Test(heap, a_heap_growing_in_order_is_populated_ahead, .init = start_roomy, .timeout = 30) {
  size_t pages = 4096, page = 4096;
  unsigned char *p = upg_malloc(pages * page);
  cr_assert_not_null(p);
  upg_stats_t before = stats_now();
  size_t nonzero = 0;
  for (size_t i = 0; i < pages; i++) {
    nonzero += p[i * page + 100] != 0;
    p[i * page] = (unsigned char)i;
  }
  settle();
  upg_stats_t after = stats_now();
  cr_assert_eq(nonzero, 0, "%zu fresh pages were not zeros", nonzero);
  cr_assert_geq(after.fresh_populated - before.fresh_populated, pages / 2,
                "only %llu of %zu pages populated",
                (unsigned long long)(after.fresh_populated - before.fresh_populated), pages);
  /* The uffd source copies pages in and out, and gives the copies' memory
   * back many at a time: up to 32 pages of them may wait, memory the
   * budget keeps for them. */
  const char *source = getenv("UPAGER_FAULT");
  long long waiting = source != NULL && strcmp(source, "uffd") == 0 ? 32 * (long long)page : 0;
  cr_assert_leq(frame_bytes(), (long long)(after.pages_resident * page) + waiting,
                "the frames hold %lld bytes, more than the %llu resident pages", frame_bytes(),
                (unsigned long long)after.pages_resident);
  for (size_t i = 0; i < pages; i++) cr_assert_eq(p[i * page], (unsigned char)i);
  upg_free(p);
}

/* Touches every page of p[0, pages) once, upwards or downwards, writing
 * its number, and returns the first-touch faults it took. */
static uint64_t grow_through(unsigned char *p, size_t pages, int downwards) {
  uint64_t before = stats_now().fault_zero;
  for (size_t k = 0; k < pages; k++) {
    size_t i = downwards ? pages - 1 - k : k;
    p[i * 4096] = (unsigned char)i;
  }
  return stats_now().fault_zero - before;
}

/* Past its first megabytes, a heap growing in order, either way (GNU sort
 * fills its line table downwards), takes a fault for a window that doubles
 * up to 1 MiB: about one fault a MiB, where readahead's limit alone would
 * give four, and the fault-around window sixteen going down. */
Test(heap, a_heap_growing_in_order_faults_about_once_a_mib, .init = start_roomy, .timeout = 30) {
  size_t pages = 4096;
  char *warm = upg_malloc(4 * MIB); /* the heap past its first 4 MiB */
  cr_assert_not_null(warm);
  memset(warm, 1, 4 * MIB);
  for (int downwards = 0; downwards <= 1; downwards++) {
    unsigned char *p = upg_malloc(pages * 4096);
    cr_assert_not_null(p);
    uint64_t faults = grow_through(p, pages, downwards);
    cr_assert_leq(faults, pages / 128, "%llu faults to grow %s through 16 MiB",
                  (unsigned long long)faults, downwards ? "downwards" : "upwards");
    for (size_t i = 0; i < pages; i++) cr_assert_eq(p[i * 4096], (unsigned char)i);
    upg_free(p);
  }
  upg_free(warm);
}

/* A program that fills its heap in order, slower than the kernel makes
 * memory (about 2 us a page here), finds each next window opened and
 * populated by the prefetch thread, which the marker in the middle of the
 * window before started, going up or down. */
Test(heap, a_slowly_growing_heap_gets_its_next_windows_in_the_background, .init = start_roomy,
     .timeout = 60) {
  size_t pages = 4096;
  char *warm = upg_malloc(4 * MIB);
  cr_assert_not_null(warm);
  memset(warm, 1, 4 * MIB);
  unsigned char *blocks[2] = {upg_malloc(pages * 4096), upg_malloc(pages * 4096)};
  const struct timespec pause = {0, 20 * 1000};
  for (int downwards = 0; downwards <= 1; downwards++) {
    unsigned char *p = blocks[downwards];
    cr_assert_not_null(p);
    settle();
    upg_stats_t before = stats_now();
    for (size_t k = 0; k < pages; k++) {
      size_t i = downwards ? pages - 1 - k : k;
      p[i * 4096] = (unsigned char)i;
      nanosleep(&pause, NULL);
    }
    settle();
    upg_stats_t after = stats_now();
    uint64_t async = after.readahead_async - before.readahead_async;
    cr_assert_geq(async, pages / 2, "only %llu of %zu pages opened in the background going %s",
                  (unsigned long long)async, pages, downwards ? "down" : "up");
    cr_assert_geq(after.fresh_populated - before.fresh_populated, pages / 2);
    for (size_t i = 0; i < pages; i++) cr_assert_eq(p[i * 4096], (unsigned char)i);
  }
  upg_free(blocks[0]);
  upg_free(blocks[1]);
  upg_free(warm);
}

/* First touches far apart open windows of fresh pages around them, but the
 * pages the program never writes take no memory. */
Test(heap, scattered_first_touches_cost_only_the_pages_written, .init = start_roomy,
     .timeout = 30) {
  size_t pages = 4096, page = 4096, stride = 128;
  char *p = upg_malloc(pages * page);
  cr_assert_not_null(p);
  long long mem = frame_bytes();
  uint64_t populated = stats_now().fresh_populated;
  for (size_t i = 0; i < pages; i += stride) p[i * page] = 1;
  upg_stats_t s = stats_now();
  cr_assert_eq(s.fresh_populated, populated, "scattered windows were populated");
  cr_assert_gt(s.readahead_pages, 0, "no window was opened around the first touches");
  cr_assert_leq(frame_bytes() - mem, (long long)(2 * (pages / stride) * page),
                "%lld bytes for %zu pages written", frame_bytes() - mem, pages / stride);
  upg_free(p);
}

/* mimalloc keeps the heap it was given, so the heap cannot come back after
 * upg_shutdown: the calls fail cleanly instead of touching unmapped memory. */
Test(heap, after_shutdown_the_heap_fails_cleanly, .init = start_small, .timeout = 30) {
  char *old = upg_malloc(1000);
  cr_assert_not_null(old);
  upg_shutdown();
  cr_assert_eq(upg_init(NULL), 0, "the runtime does start again");
  errno = 0;
  cr_assert_null(upg_malloc(1000));
  cr_assert_eq(errno, ENOMEM);
  cr_assert_null(upg_calloc(10, 10));
  cr_assert_null(upg_realloc(old, 2000));
  upg_free(old);
  char *p = upg_map(1 << 20, 0);
  cr_assert_not_null(p, "regions still work");
  p[4096] = 1;
  cr_assert_eq(p[4096], 1);
}
