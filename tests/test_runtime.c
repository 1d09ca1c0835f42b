/* test_runtime.c: the public calls on paged regions: zero fill, the fault
 * kinds and the page-table entry they leave, advice, pins, the first
 * eviction, unmapping, and what a huge reservation costs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "helpers.h"

#define PAGE 4096
#define BUDGET_PAGES 64

Test(runtime, first_touch_reads_zeros_and_is_a_clean_readonly_page, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  volatile char *p = upg_map(16 * PAGE, 0);
  cr_assert_not_null(p);
  cr_assert_eq(info_of((char *)p).present, 0);
  cr_assert_eq(p[5 * PAGE + 7], 0);
  upg_page_info_t info = info_of((char *)p + 5 * PAGE);
  cr_assert(info.present && info.referenced && !info.modified);
  cr_assert_eq(info.prot, UPG_PROT_READ);
  cr_assert_eq(info.swap_slot, -1);
  cr_assert_eq(stats_now().fault_zero, 1);
}

Test(runtime, a_write_marks_the_page_dirty_and_read_write, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(4 * PAGE, 0);
  p[0] = 42;
  upg_page_info_t info = info_of(p);
  cr_assert(info.present && info.modified);
  cr_assert_eq(info.prot, UPG_PROT_RW);
  upg_stats_t s = stats_now();
  cr_assert_eq(s.fault_zero, 1);
  /* A source that tells a write from a read opens the page writable at
   * once; one that cannot opens it read-only, and the write faults again. */
  cr_assert_eq(s.fault_write, s.fault_access_known ? 0 : 1);
}

Test(runtime, evicted_dirty_page_is_read_back_from_swap, .timeout = 20) {
  setenv("UPAGER_COMPRESS", "off", 1); /* the swap file's own I/O, no tier in front */
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 4 * BUDGET_PAGES;
  char *p = upg_map(pages * PAGE, 0);
  for (size_t i = 0; i < pages; i++) memset(p + i * PAGE, (int)(i & 0xff), PAGE);
  upg_page_info_t first = info_of(p);
  cr_assert_eq(first.present, 0, "page 0 should have been evicted");
  cr_assert_geq(first.swap_slot, 0);
  for (size_t i = 0; i < pages; i++)
    for (size_t j = 0; j < PAGE; j += 512) cr_assert_eq((unsigned char)p[i * PAGE + j], i & 0xff);
  upg_stats_t s = stats_now();
  cr_assert_geq(s.swap_bytes_read / PAGE, pages - BUDGET_PAGES);
  cr_assert_geq(s.evict_dirty, pages - BUDGET_PAGES);
  cr_assert_eq(s.swap_bytes_written, s.evict_dirty * PAGE);
  cr_assert_leq(s.pages_resident_peak, BUDGET_PAGES);
}

Test(runtime, clean_pages_leave_without_io_and_keep_their_slot, .timeout = 20) {
  setenv("UPAGER_COMPRESS", "off", 1); /* the swap file's own I/O, no tier in front */
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 2 * BUDGET_PAGES;
  char *p = upg_map(pages * PAGE, 0);
  for (size_t i = 0; i < pages; i++) p[i * PAGE] = 1; /* all written once */
  settle(); /* the evictor's batch in flight is the writer's too */
  uint64_t written = stats_now().swap_bytes_written;
  volatile char sink = 0;
  for (int round = 0; round < 3; round++)
    for (size_t i = 0; i < pages; i++) sink += p[i * PAGE]; /* reads only */
  (void)sink;
  upg_stats_t s = stats_now();
  /* The first pass writes back what the writer left dirty; after that,
   * read-only rounds evict clean pages that still have their swap copy. */
  cr_assert_leq(s.swap_bytes_written - written, BUDGET_PAGES * PAGE,
                "%llu pages written after the writer's pass",
                (unsigned long long)(s.swap_bytes_written - written) / PAGE);
  cr_assert_gt(s.evict_clean, pages);
}

/* Pages visited in a scattered order, each once a round: every load is a
 * single-page load, as a random workload's are. */
static size_t scattered(size_t i, size_t pages) { return (i * 37) % pages; }

/* A region of `pages` pages advised random, each holding its number. */
static uint64_t *numbered_random_region(size_t pages) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  uint64_t *p = upg_map(pages * PAGE, 0);
  upg_advise(p, pages * PAGE, UPG_ADV_RANDOM);
  for (size_t i = 0; i < pages; i++) p[i * PAGE / 8] = i;
  return p;
}

Test(runtime, a_region_that_writes_what_it_loads_opens_loads_writable, .timeout = 60) {
  size_t pages = 8 * BUDGET_PAGES;
  uint64_t *p = numbered_random_region(pages);
  upg_stats_t before = stats_now();
  for (int round = 0; round < 4; round++)
    for (size_t i = 0; i < pages; i++)
      p[scattered(i, pages) * PAGE / 8] += 1; /* read, then write */
  upg_stats_t s = stats_now();
  uint64_t majors = s.fault_major - before.fault_major, writes = s.fault_write - before.fault_write;
  /* A source that knows the access needs no guess: the read-modify-write
   * faults as a write, and the page opens writable. */
  if (!s.fault_access_known)
    cr_assert_gt(s.load_dirty, majors / 2, "%llu of %llu loads opened writable",
                 (unsigned long long)s.load_dirty, (unsigned long long)majors);
  cr_assert_lt(writes, majors / 3, "%llu write faults for %llu loads", (unsigned long long)writes,
               (unsigned long long)majors);
  for (size_t i = 0; i < pages; i++) cr_assert_eq(p[i * PAGE / 8], i + 4);
}

Test(runtime, a_region_that_only_reads_keeps_loads_clean, .timeout = 60) {
  size_t pages = 8 * BUDGET_PAGES;
  uint64_t *p = numbered_random_region(pages);
  /* The fill wrote every page it loaded, so the predictor starts out
   * presuming; a round of reads (64 sampled loads) changes its mind, and the
   * pages it presumed dirty are written back once. */
  volatile uint64_t sink = 0;
  for (int round = 0; round < 2; round++)
    for (size_t i = 0; i < pages; i++) sink += p[scattered(i, pages) * PAGE / 8];
  settle();
  upg_stats_t before = stats_now();
  for (int round = 0; round < 4; round++)
    for (size_t i = 0; i < pages; i++) sink += p[scattered(i, pages) * PAGE / 8];
  upg_stats_t s = stats_now();
  cr_assert_gt(s.fault_major - before.fault_major, 2 * pages);
  cr_assert_eq(s.load_dirty, before.load_dirty, "loads presumed dirty while only reading");
  cr_assert_eq(s.swap_bytes_written, before.swap_bytes_written,
               "a reader's pages leave without I/O");
}

Test(runtime, untouched_page_touched_again_by_clock_is_a_minor_fault, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map((BUDGET_PAGES + 1) * PAGE, 0);
  for (size_t i = 0; i < BUDGET_PAGES; i++) p[i * PAGE] = 1;
  /* One more page: the hand sweeps every frame, clearing (and closing) each
   * page, and evicts one; the others stay resident, closed. */
  p[BUDGET_PAGES * PAGE] = 1;
  settle();
  size_t closed = 0;
  for (size_t i = 0; i < BUDGET_PAGES; i++) {
    upg_page_info_t info = info_of(p + i * PAGE);
    if (info.present && info.prot == UPG_PROT_NONE && !info.referenced) closed = i + 1;
  }
  cr_assert_gt(closed, 0, "no resident page was closed by the hand");
  uint64_t minor = stats_now().fault_minor, major = stats_now().fault_major;
  cr_assert_eq(p[(closed - 1) * PAGE], 1);
  cr_assert_eq(stats_now().fault_minor, minor + 1);
  cr_assert_eq(stats_now().fault_major, major);
  cr_assert_eq(info_of(p + (closed - 1) * PAGE).prot, UPG_PROT_RW, "dirty page reopens writable");
}

Test(runtime, dontneed_discards_without_writeback_and_frees_the_slot, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 2 * BUDGET_PAGES;
  char *p = upg_map(pages * PAGE, 0);
  for (size_t i = 0; i < pages; i++) p[i * PAGE] = 7;
  settle();
  upg_stats_t before = stats_now();
  cr_assert_gt(before.swap_slots_in_use, 0);
  cr_assert_eq(upg_advise(p, pages * PAGE, UPG_ADV_DONTNEED), 0);
  upg_stats_t after = stats_now();
  cr_assert_eq(after.swap_slots_in_use, 0);
  cr_assert_eq(after.pages_resident, 0);
  cr_assert_eq(frame_bytes(), 0, "the resident runs' memory left with them");
  cr_assert_eq(after.swap_bytes_written, before.swap_bytes_written);
  for (size_t i = 0; i < pages; i++) cr_assert_eq(p[i * PAGE], 0);
}

Test(runtime, willneed_loads_pages_so_touching_them_does_not_fault, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(8 * PAGE, 0);
  cr_assert_eq(upg_advise(p, 8 * PAGE, UPG_ADV_WILLNEED), 0);
  uint64_t faults = stats_now().fault_zero;
  volatile char sink = 0;
  for (size_t i = 0; i < 8; i++) sink += p[i * PAGE];
  (void)sink;
  cr_assert_eq(stats_now().fault_zero, faults);
  cr_assert_eq(stats_now().pages_resident, 8);
}

/* Fills 4 budgets' worth of pages (page i holds i), so that most are in
 * swap, then reads the first half back in order, slowly enough that the
 * prefetch thread keeps ahead. */
static char *swapped_then_read_in_order(size_t pages) {
  char *p = upg_map(pages * PAGE, 0);
  cr_assert_not_null(p);
  for (size_t i = 0; i < pages; i++) memset(p + i * PAGE, (int)(i & 0xff), PAGE);
  settle();
  const struct timespec pause = {0, 200 * 1000};
  for (size_t i = 0; i < pages / 2; i++) {
    cr_assert_eq((unsigned char)p[i * PAGE + 9], i & 0xff, "page %zu", i);
    nanosleep(&pause, NULL);
  }
  settle();
  return p;
}

/* The marker in the middle of a window read from swap has the prefetch
 * thread read the next window while the program reads this one. */
Test(runtime, a_sequential_read_from_swap_is_read_ahead_in_the_background, .timeout = 30) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 4 * BUDGET_PAGES;
  char *p = swapped_then_read_in_order(pages);
  upg_stats_t s = stats_now();
  cr_assert_gt(s.readahead_async, 0, "no window was read in the background");
  cr_assert_gt(s.fault_minor, 0, "no marker was touched");
  for (size_t i = 0; i < pages; i++)
    cr_assert_eq((unsigned char)p[i * PAGE + 100], i & 0xff, "page %zu", i);
}

/* A fault that continues a sequential run has the window after its own
 * read in the background at once, beside it: the page after the fault's
 * window comes in without the program touching it or a marker. The
 * background window takes only free frames, so the budget is one whose
 * watermarks keep more free than the faults here take (the smallest
 * keep 8 to 16, which a fault's eviction work may not have freed yet). */
#define AHEAD_BUDGET_PAGES 1024

Test(runtime, a_sequential_fault_reads_the_next_window_beside_its_own, .timeout = 30) {
  start_runtime(AHEAD_BUDGET_PAGES * PAGE, NULL);
  size_t pages = 4 * AHEAD_BUDGET_PAGES;
  char *p = upg_map(pages * PAGE, 0);
  cr_assert_not_null(p);
  for (size_t i = 0; i < pages; i++) memset(p + i * PAGE, (int)(i & 0xff), PAGE);
  settle();
  cr_assert_not(info_of(p).present, "the first pages were not evicted");
  uint64_t async = stats_now().readahead_async;
  cr_assert_eq((unsigned char)p[9], 0);           /* a fault: one page */
  cr_assert_eq((unsigned char)p[PAGE + 9], 1);    /* the run goes on: pages 1 and 2 */
  const struct timespec pause = {0, 1000 * 1000}; /* the thread's read, within 5 s */
  for (int i = 0; i < 5000 && !info_of(p + 3 * PAGE).present; i++) nanosleep(&pause, NULL);
  cr_assert(info_of(p + 3 * PAGE).present, "the window after the fault's was not read");
  cr_assert_gt(stats_now().readahead_async, async);
  for (size_t i = 0; i < pages; i++)
    cr_assert_eq((unsigned char)p[i * PAGE + 100], i & 0xff, "page %zu", i);
}

/* A page the prefetch thread opened read-only may be faulted on by a read
 * that began before it was opened, so its first fault is retried: a real
 * write then faults once more, is counted once, marks the page modified,
 * and survives eviction. The reads go in order, and each page found open
 * read-only before the program's first access to it is written instead. */
Test(runtime, a_write_to_a_page_read_in_the_background_counts_once_and_survives, .timeout = 30) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 4 * BUDGET_PAGES, written = 0;
  unsigned char was_written[4 * BUDGET_PAGES] = {0};
  char *p = upg_map(pages * PAGE, 0);
  cr_assert_not_null(p);
  for (size_t i = 0; i < pages; i++) memset(p + i * PAGE, (int)(i & 0xff), PAGE);
  settle();
  uint64_t writes = stats_now().fault_write;
  const struct timespec pause = {0, 200 * 1000};
  for (size_t i = 0; i < pages; i++) {
    upg_page_info_t info = info_of(p + i * PAGE);
    if (info.present && !info.modified && info.prot == UPG_PROT_READ) {
      p[i * PAGE + 1] = (char)~i;
      cr_assert(info_of(p + i * PAGE).modified, "page %zu written but clean", i);
      was_written[i] = 1;
      written++;
    } else {
      cr_assert_eq((unsigned char)p[i * PAGE + 9], i & 0xff, "page %zu", i);
    }
    nanosleep(&pause, NULL);
  }
  cr_assert_gt(stats_now().readahead_async, 0, "no window was read in the background");
  cr_assert_gt(written, 0, "no page was open read-only ahead of the reads");
  cr_assert_eq(stats_now().fault_write - writes, written);
  for (size_t i = 0; i < pages; i++) p[i * PAGE] = (char)i; /* evicts them all */
  for (size_t i = 0; i < pages; i++)
    cr_assert_eq(p[i * PAGE + 1], was_written[i] ? (char)~i : (char)i, "page %zu", i);
}

Test(runtime, pinned_pages_survive_pressure_and_accept_kernel_writes, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 4 * BUDGET_PAGES;
  char *p = upg_map(pages * PAGE, 0);
  char *buf = p + 3 * PAGE + 100;
  cr_assert_eq(upg_pin(buf, 2 * PAGE), 0);
  int fd = open("/dev/urandom", O_RDONLY);
  cr_assert_eq(read(fd, buf, 2 * PAGE), 2 * PAGE, "the kernel wrote into a pinned buffer");
  close(fd);
  char copy[2 * PAGE];
  memcpy(copy, buf, sizeof copy);
  for (size_t i = 8; i < pages; i++) p[i * PAGE] = 1;
  for (size_t i = 3; i < 6; i++) cr_assert(info_of(p + i * PAGE).present);
  cr_assert_eq(stats_now().pages_pinned, 3);
  cr_assert_eq(memcmp(copy, buf, sizeof copy), 0);
  cr_assert_eq(upg_advise(p + 3 * PAGE, PAGE, UPG_ADV_DONTNEED), UPG_EBUSY);
  cr_assert_eq(upg_unpin(buf, 2 * PAGE), 0);
  cr_assert_eq(stats_now().pages_pinned, 0);
  cr_assert_eq(upg_unpin(buf, 2 * PAGE), UPG_EINVAL, "unpin of an unpinned page");
  /* Pinned through the first eviction, the pages can leave once unpinned,
   * and what the kernel wrote comes back from swap. */
  uint64_t written = stats_now().swap_bytes_written;
  for (size_t round = 0; round < 2; round++)
    for (size_t i = 8; i < pages; i++) p[i * PAGE] = 2;
  for (size_t i = 3; i < 6; i++) cr_assert(!info_of(p + i * PAGE).present, "page %zu stayed", i);
  cr_assert_gt(stats_now().swap_bytes_written, written);
  cr_assert_eq(memcmp(copy, buf, sizeof copy), 0);
  cr_assert_eq(upg_advise(p + 3 * PAGE, 3 * PAGE, UPG_ADV_DONTNEED), 0);
  for (size_t i = 3 * PAGE; i < 6 * PAGE; i++) cr_assert_eq(p[i], 0, "byte %zu kept", i);
}

static void fill_pages(uint64_t *a, size_t first, size_t n, uint64_t round) {
  for (size_t page = first; page < first + n; page++)
    for (size_t w = 0; w < PAGE / 8; w++) a[page * PAGE / 8 + w] = pattern(page, w, round);
}

static size_t pages_differing(const uint64_t *a, size_t first, size_t n, uint64_t round) {
  size_t bad = 0;
  for (size_t page = first; page < first + n; page++)
    for (size_t w = 0; w < PAGE / 8; w++)
      if (a[page * PAGE / 8 + w] != (round ? pattern(page, w, round) : 0)) {
        bad++;
        break;
      }
  return bad;
}

static void force_evictions(char *other, size_t pages) {
  for (size_t round = 1; round <= 2; round++)
    for (size_t i = 0; i < pages; i++) other[i * PAGE] = (char)round;
}

/* Pages written, only read, and discarded before anything was ever
 * evicted, in two regions, keep what they held once pressure evicts them
 * all; and a region mapped after that pages as any other. */
Test(runtime, pages_from_before_the_first_eviction_keep_their_contents, .timeout = 30) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  uint64_t *a = upg_map(24 * PAGE, 0), *b = upg_map(4 * PAGE, 0);
  char *other = upg_map(4 * BUDGET_PAGES * PAGE, 0);
  fill_pages(a, 0, 12, 1);
  cr_assert_eq(pages_differing(a, 12, 8, 0), 0, "fresh pages read zeros");
  fill_pages(a, 20, 4, 1);
  long long held = frame_bytes();
  cr_assert_eq(upg_advise(a + 20 * PAGE / 8, 4 * PAGE, UPG_ADV_DONTNEED), 0);
  cr_assert_leq(frame_bytes(), held - 4 * PAGE, "a discard gives the memory back");
  cr_assert_eq(pages_differing(a, 20, 4, 0), 0, "discarded pages read zeros");
  fill_pages(b, 0, 4, 2);
  settle();
  upg_stats_t s = stats_now();
  cr_assert_eq(s.evict_clean + s.evict_dirty, 0, "setup: something was evicted already");
  force_evictions(other, 4 * BUDGET_PAGES);
  settle();
  cr_assert_leq(frame_bytes(), BUDGET_PAGES * PAGE, "%lld bytes", frame_bytes());
  for (size_t i = 0; i < 24; i++)
    cr_assert(!info_of(a + i * PAGE / 8).present, "page %zu stayed", i);
  cr_assert_eq(pages_differing(a, 0, 12, 1), 0, "written pages");
  cr_assert_eq(pages_differing(a, 12, 12, 0), 0, "read and discarded pages");
  cr_assert_eq(pages_differing(b, 0, 4, 2), 0, "the other region's pages");
  uint64_t *c = upg_map(16 * PAGE, 0);
  fill_pages(c, 0, 16, 3);
  force_evictions(other, 4 * BUDGET_PAGES);
  settle();
  cr_assert_leq(frame_bytes(), BUDGET_PAGES * PAGE, "%lld bytes", frame_bytes());
  cr_assert(!info_of(c).present);
  cr_assert_eq(pages_differing(c, 0, 16, 3), 0, "a region mapped after the first eviction");
}

Test(runtime, a_pin_beyond_the_budget_fails_and_pins_nothing, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(4 * BUDGET_PAGES * PAGE, 0);
  cr_assert_eq(upg_pin(p, BUDGET_PAGES * PAGE), UPG_EPINLIMIT);
  cr_assert_eq(stats_now().pages_pinned, 0);
  cr_assert_eq(upg_pin(p, (BUDGET_PAGES - 2) * PAGE), 0);
  cr_assert_eq(upg_pin(p + BUDGET_PAGES * PAGE, PAGE), UPG_EPINLIMIT);
  p[3 * BUDGET_PAGES * PAGE] = 1; /* faults still find a frame */
}

Test(runtime, calls_on_addresses_outside_regions_fail_cleanly, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char local[16];
  upg_page_info_t info;
  cr_assert_eq(upg_page_info(local, &info), UPG_ENOTREGION);
  cr_assert_eq(upg_pin(local, 1), UPG_ENOTREGION);
  char *p = upg_map(PAGE, 0);
  cr_assert_eq(upg_advise(p, 2 * PAGE, UPG_ADV_DONTNEED), UPG_ENOTREGION);
  cr_assert_eq(upg_advise(p, PAGE, 99), UPG_EINVAL);
  cr_assert_null(upg_map(PAGE, 1));
  cr_assert_eq(errno, -UPG_EINVAL);
  cr_assert_eq(upg_init(NULL), UPG_EEXIST);
}

Test(runtime, advice_before_init_says_not_initialised, .timeout = 20) {
  char local[PAGE] __attribute__((aligned(PAGE)));
  cr_assert_eq(upg_advise(local, PAGE, UPG_ADV_WILLNEED), UPG_ENOTINIT);
  cr_assert_eq(upg_advise(local + 1, 1, UPG_ADV_DONTNEED), UPG_ENOTINIT);
}

Test(runtime, unmap_frees_frames_and_slots, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 3 * BUDGET_PAGES;
  char *p = upg_map(pages * PAGE, 0);
  for (size_t i = 0; i < pages; i++) p[i * PAGE] = 1;
  cr_assert_eq(upg_unmap(p, pages * PAGE), 0);
  upg_stats_t s = stats_now();
  cr_assert_eq(s.pages_resident, 0);
  cr_assert_eq(s.swap_slots_in_use, 0);
  cr_assert_eq(upg_unmap(p, pages * PAGE), UPG_ENOTREGION);
}

Test(runtime, partial_unmap_keeps_the_rest, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(8 * PAGE, 0);
  for (size_t i = 0; i < 8; i++) p[i * PAGE] = (char)i;
  cr_assert_eq(upg_unmap(p + 2 * PAGE, 3 * PAGE), 0);
  upg_page_info_t info;
  cr_assert_eq(upg_page_info(p + 3 * PAGE, &info), UPG_ENOTREGION);
  for (size_t i = 5; i < 8; i++) cr_assert_eq(p[i * PAGE], (char)i);
  cr_assert_eq(p[PAGE], 1);
}

/* The unmapped range's pages are neither closed nor punched one by one,
 * so its frames' memory must still leave, with the range. */
Test(runtime, partial_unmap_gives_the_ranges_frames_back, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = BUDGET_PAGES / 2; /* all resident: the evictor keeps a few frames free */
  char *p = upg_map(pages * PAGE, 0);
  for (size_t i = 0; i < pages; i++) p[i * PAGE] = 1;
  long long before = frame_bytes();
  cr_assert_geq(before, (long long)(pages * PAGE));
  cr_assert_eq(upg_unmap(p + PAGE, (pages - 2) * PAGE), 0);
  cr_assert_eq(stats_now().pages_resident, 2);
  cr_assert_leq(frame_bytes(), 2 * (long long)PAGE, "%lld bytes left", frame_bytes());
  cr_assert_eq(p[0] + p[(pages - 1) * PAGE], 2);
}

Test(runtime, churn_reuses_swap_slots, .timeout = 60) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  size_t pages = 4 * BUDGET_PAGES;
  char *p = upg_map(pages * PAGE, 0);
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < pages; i++) p[i * PAGE] = (char)round;
    cr_assert_eq(upg_advise(p, pages * PAGE, UPG_ADV_DONTNEED), 0);
  }
  /* The file may run ahead of its use (twice, plus a batch of 64) so that
   * batches stay contiguous; 20 rounds without reuse would need 20 times. */
  cr_assert_leq(stats_now().swap_slots_high, 2 * pages + 2 * 64);
}

Test(runtime, reserving_a_tebibyte_costs_under_a_mebibyte, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  long before = proc_status_kib("VmRSS") + proc_status_kib("VmPTE");
  char *p = upg_map((size_t)1 << 40, 0);
  cr_assert_not_null(p, "1 TiB: %s", strerror(errno));
  long after = proc_status_kib("VmRSS") + proc_status_kib("VmPTE");
  cr_assert_lt(after - before, 1024, "reservation cost %ld KiB", after - before);
  p[((size_t)1 << 40) - 1] = 1; /* the far end works */
  p[0] = 1;
  cr_assert_eq(p[((size_t)1 << 40) - 1], 1);
}

/* The frame table of a budget takes memory as its frames are used, so that
 * a budget sized for the machine costs a small program nothing. */
Test(runtime, a_sixteen_gib_budget_costs_under_a_mebibyte_until_used, .timeout = 20) {
  long before = proc_status_kib("VmRSS") + proc_status_kib("VmPTE");
  upg_options_t opt = {0};
  opt.budget = (size_t)16 << 30;
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  long after = proc_status_kib("VmRSS") + proc_status_kib("VmPTE");
  cr_assert_lt(after - before, 1024, "init cost %ld KiB", after - before);
  char *p = upg_map((size_t)64 << 20, 0);
  cr_assert_not_null(p);
  for (size_t i = 0; i < ((size_t)64 << 20); i += PAGE) p[i] = (char)(i >> 12);
  for (size_t i = 0; i < ((size_t)64 << 20); i += PAGE) cr_assert_eq(p[i], (char)(i >> 12));
  cr_assert_eq(stats_now().pages_resident, (size_t)16384, "every page stayed resident");
}

Test(runtime, fifo_policy_and_large_pages_keep_data, .timeout = 30) {
  upg_options_t opt = {0};
  opt.budget = 1 << 20;
  opt.page_size = 64 << 10;
  opt.policy = "fifo";
  cr_assert_eq(upg_init(&opt), 0);
  size_t len = 16 << 20;
  uint64_t *a = upg_map(len, 0);
  for (size_t i = 0; i < len / 8; i += 97) a[i] = pattern(i, 0, 1);
  for (size_t i = 0; i < len / 8; i += 97) cr_assert_eq(a[i], pattern(i, 0, 1));
  upg_stats_t s = stats_now();
  cr_assert_eq(s.page_size, 64 << 10);
  cr_assert_leq(s.pages_resident_peak, 16);
}

Test(runtime, stats_report_names_every_field, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(PAGE, 0);
  p[0] = 1;
  char text[8192] = {0};
  FILE *f = fmemopen(text, sizeof text - 1, "w");
  upg_stats_print(f);
  fclose(f);
  cr_assert_not_null(strstr(text, "fault_zero"));
  cr_assert_not_null(strstr(text, "maps_in_use"));
  cr_assert_not_null(strstr(text, "fault latency"));
}

Test(runtime, stats_fill_no_more_than_the_callers_size, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(PAGE, 0);
  p[0] = 1;
  upg_stats_t s = {0};
  cr_assert_eq(upg_stats(&s), UPG_EINVAL, "a caller that did not set size");
  /* An older caller, built when the list ended at fault_zero. */
  memset(&s, 0xee, sizeof s);
  s.size = offsetof(upg_stats_t, fault_zero) + sizeof s.fault_zero;
  cr_assert_eq(upg_stats(&s), 0);
  cr_assert_eq(s.size, offsetof(upg_stats_t, fault_zero) + sizeof s.fault_zero);
  cr_assert_eq(s.page_size, PAGE);
  cr_assert_eq(s.fault_zero, 1);
  cr_assert_eq(s.fault_minor, 0xeeeeeeeeeeeeeeeeull, "past the caller's size");
  /* A newer caller, whose struct has a field this library does not know. */
  struct {
    upg_stats_t known;
    uint64_t later;
  } newer;
  memset(&newer, 0xee, sizeof newer);
  newer.known.size = sizeof newer;
  cr_assert_eq(upg_stats(&newer.known), 0);
  cr_assert_eq(newer.known.size, sizeof(upg_stats_t));
  cr_assert_eq(newer.known.frames, BUDGET_PAGES);
  cr_assert_eq(newer.later, 0xeeeeeeeeeeeeeeeeull);
}

Test(runtime, shutdown_then_init_again, .timeout = 20) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(PAGE, 0);
  p[0] = 1;
  upg_shutdown();
  upg_stats_t s = UPG_STATS_INIT;
  cr_assert_eq(upg_stats(&s), UPG_ENOTINIT);
  start_runtime(BUDGET_PAGES * PAGE, "fifo");
  p = upg_map(PAGE, 0);
  cr_assert_eq(p[0], 0);
}

/* Writes `pages` pages of `page` bytes, then reads them over and over in a
 * cycle twice the budget, one page a fault (UPG_ADV_RANDOM): every read is
 * a page back from swap (from the page cache: fast), reused within two
 * budgets of loads: the thrashing detector's verdict. */
static void thrash(size_t page, size_t pages) {
  volatile char *p = upg_map(pages * page, 0);
  cr_assert_not_null(p);
  cr_assert_eq(upg_advise((void *)p, pages * page, UPG_ADV_RANDOM), 0);
  for (size_t i = 0; i < pages; i++) p[i * page] = (char)i;
  for (int round = 0; round < 64; round++)
    for (size_t i = 0; i < pages; i++) cr_assert_eq(p[i * page], (char)i, "page %zu changed", i);
}

/* A runtime started again, with another budget and page size, keeps
 * nothing of the one before: its counters, its frames and swap, and the
 * thrashing detector's window and last warning (so it warns again). */
Test(runtime, a_runtime_started_again_starts_fresh, .timeout = 60) {
  upg_options_t opt = {.budget = 16 * PAGE, .direct_io = "0"};
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  thrash(PAGE, 32);
  upg_stats_t s = stats_now();
  cr_assert_eq(s.thrash_warnings, 1);
  cr_assert_gt(s.fault_major, 0);
  upg_shutdown();

  opt = (upg_options_t){.budget = 32 * 2 * PAGE,
                        .page_size = 2 * PAGE,
                        .policy = "fifo",
                        .direct_io = "0"};
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  s = stats_now();
  cr_assert_eq(s.page_size, 2 * PAGE);
  cr_assert_eq(s.frames, 32);
  cr_assert_eq(s.fault_zero + s.fault_minor + s.fault_write + s.fault_major, 0);
  cr_assert_eq(s.pages_resident + s.pages_resident_peak + s.swap_slots_in_use, 0);
  cr_assert_eq(s.evict_batches + s.thrash_windows + s.thrash_warnings, 0);
  thrash(2 * PAGE, 64);
  s = stats_now();
  cr_assert_eq(s.thrash_warnings, 1, "the runtime before's warning silenced this one's");
  cr_assert_leq(s.pages_resident, 32);
  upg_shutdown();
}
