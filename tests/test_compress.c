/* test_compress.c: the compressed tier (UPAGER_COMPRESS). Pages come back
 * whole under eviction with each compressor and with several threads;
 * incompressible pages go below it, same-filled pages are kept as their
 * word; a full pool writes its oldest pages back; frames and pool together
 * stay inside the budget, as the kernel counts the process's memory; a
 * failing store below loses nothing; and a corrupt compressed page ends the
 * program naming the cause. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "helpers.h"
#include "internal.h"

#define PAGE 4096u
#define WORDS (PAGE / 8)

static void start_tier(const char *codec, size_t budget_pages) {
  setenv("UPAGER_COMPRESS", codec, 1);
  start_runtime(budget_pages * PAGE, NULL);
}

/* Heap-like words: a record id, a pointer sharing its high bytes, a small
 * counter, the pattern of the round: compressible, never one word. */
static uint64_t record_word(size_t page, size_t i, uint64_t round) {
  switch (i % 4) {
    case 0: return page * WORDS + i;
    case 1: return 0x00007f3a00000000ull + ((page * 64 + i) & 0xffff) * 16;
    case 2: return (i + round) & 0x3f;
    default: return i % 16 == 3 ? pattern(page, i, round) : round;
  }
}

static void write_records(uint64_t *a, size_t first, size_t n, uint64_t round) {
  for (size_t p = first; p < first + n; p++)
    for (size_t i = 0; i < WORDS; i++) a[p * WORDS + i] = record_word(p, i, round);
}

/* The first page that is not as written, or -1. */
static long bad_record(const uint64_t *a, size_t first, size_t n, uint64_t round) {
  for (size_t p = first; p < first + n; p++)
    for (size_t i = 0; i < WORDS; i++)
      if (a[p * WORDS + i] != record_word(p, i, round)) return (long)p;
  return -1;
}

static void check_records(const uint64_t *a, size_t first, size_t n, uint64_t round) {
  long bad = bad_record(a, first, n, round);
  cr_assert_eq(bad, -1, "page %ld is not as written", bad);
}

/* ---- integrity ------------------------------------------------------------*/
#define THREADS 4
/* The region is 1.5 times the budget, where the pool pays and takes pages
 * in (they come back before it writes them out). Over eight times the
 * budget its admission stays off, one put in eight enters, and under ASan
 * a run once found no page in the tier at all. */
#define THREAD_PAGES 48

typedef struct worker_arg {
  uint64_t *a;
  size_t first;
  long bad; /* out: checked in the main thread, as Criterion asks */
} worker_arg_t;

/* Each thread rewrites its own pages for three rounds, reading each page
 * back before its next write. */
static void *churn(void *argp) {
  worker_arg_t *w = argp;
  w->bad = -1;
  for (uint64_t round = 1; round <= 3 && w->bad < 0; round++) {
    if (round > 1) w->bad = bad_record(w->a, w->first, THREAD_PAGES, round - 1);
    write_records(w->a, w->first, THREAD_PAGES, round);
  }
  return NULL;
}

static upg_stats_t churn_threads(const char *codec) {
  start_tier(codec, 128);
  uint64_t *a = upg_map(THREADS * THREAD_PAGES * PAGE, 0);
  pthread_t th[THREADS];
  worker_arg_t args[THREADS];
  for (int t = 0; t < THREADS; t++) {
    args[t] = (worker_arg_t){a, (size_t)t * THREAD_PAGES, -1};
    cr_assert_eq(pthread_create(&th[t], NULL, churn, &args[t]), 0);
  }
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < THREADS; t++) cr_assert_eq(args[t].bad, -1, "page %ld", args[t].bad);
  check_records(a, 0, THREADS * THREAD_PAGES, 3);
  upg_stats_t s = stats_now();
  cr_assert_leq(s.pages_resident_peak, 128);
  return s;
}

Test(compress, lz4_pages_come_back_whole_under_eviction_from_four_threads, .timeout = 120) {
  upg_stats_t s = churn_threads("lz4");
  cr_assert_gt(s.tier_stored, 0);
  cr_assert_gt(s.tier_hits, 0);
}

Test(compress, zstd_pages_come_back_whole_under_eviction_from_four_threads, .timeout = 120) {
  upg_stats_t s = churn_threads("zstd");
  cr_assert_gt(s.tier_stored, 0);
  cr_assert_gt(s.tier_hits, 0);
}

Test(compress, with_the_tier_off_pages_go_to_the_store_alone, .timeout = 120) {
  upg_stats_t s = churn_threads("off");
  cr_assert_eq(s.tier_stored + s.tier_hits + s.tier_misses, 0);
  cr_assert_gt(s.fault_major, 0);
}

/* ---- what the pool keeps -----------------------------------------------------*/
static uint64_t xorshift(uint64_t *x) {
  *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
  return *x;
}

static void fill_random(uint64_t *page, size_t index, uint64_t round) {
  uint64_t x = index * 0x9E3779B97F4A7C15ull + round + 1;
  for (size_t i = 0; i < WORDS; i++) page[i] = xorshift(&x);
}

Test(compress, incompressible_pages_go_below_the_tier_and_come_back, .timeout = 60) {
  start_tier("lz4", 64);
  size_t pages = 512;
  uint64_t *a = upg_map(pages * PAGE, 0);
  for (size_t p = 0; p < pages; p++) fill_random(a + p * WORDS, p, 1);
  uint64_t want[WORDS];
  for (size_t p = 0; p < pages; p++) {
    fill_random(want, p, 1);
    cr_assert_eq(memcmp(a + p * WORDS, want, PAGE), 0, "page %zu", p);
  }
  upg_stats_t s = stats_now();
  /* Each went below: rejected by the compressor, or, while the pool's
   * admission is off (it starts off), not compressed at all. */
  cr_assert_gt(s.tier_rejected, 0);
  cr_assert_geq(s.tier_rejected + s.tier_bypassed, pages - 64);
  cr_assert_eq(s.tier_stored, 0);
  cr_assert_eq(s.tier_pool_peak, 0, "no pool for pages that do not compress");
  cr_assert_gt(s.tier_misses, 0);
}

Test(compress, same_filled_pages_are_kept_as_their_word, .timeout = 60) {
  start_tier("lz4", 64);
  size_t pages = 512;
  uint64_t *a = upg_map(pages * PAGE, 0);
  for (size_t p = 0; p < pages; p++)
    for (size_t i = 0; i < WORDS; i++) a[p * WORDS + i] = p % 3 == 0 ? 0 : p * 0x0101010101ull;
  for (size_t p = 0; p < pages; p++)
    for (size_t i = 0; i < WORDS; i += 7)
      cr_assert_eq(a[p * WORDS + i], p % 3 == 0 ? 0 : p * 0x0101010101ull, "page %zu", p);
  upg_stats_t s = stats_now();
  cr_assert_geq(s.tier_same_filled, pages - 64);
  cr_assert_eq(s.tier_payload_bytes, 0);
  cr_assert_eq(s.swap_bytes_written, 0, "same-filled pages cost no I/O");
}

/* A page written after it came back from the pool leaves a stale object
 * there, which must go at once: kept until the page's next eviction, such
 * objects fill the pool with copies nobody reads. So no modified page
 * keeps a copy in the store, and every page is in one place. */
Test(compress, a_page_written_after_its_load_leaves_the_pool, .timeout = 60) {
  start_tier("lz4", 128); /* 64 frames for pages, the pool room for the other 96 */
  size_t pages = 160, stale = 0, modified = 0;
  uint64_t *a = upg_map(pages * PAGE, 0);
  for (uint64_t round = 1; round <= 3; round++) write_records(a, 0, pages, round);
  settle();
  for (size_t p = 0; p < pages; p++) {
    upg_page_info_t info = info_of(a + p * WORDS);
    modified += info.present && info.modified;
    stale += info.present && info.modified && info.swap_slot >= 0;
  }
  upg_stats_t s = stats_now();
  cr_assert_gt(s.tier_hits, pages / 4, "%lu pages came back from the pool", s.tier_hits);
  cr_assert_gt(modified, 0);
  cr_assert_eq(stale, 0, "%zu of %zu modified pages keep a stale copy", stale, modified);
  cr_assert_leq(s.tier_pages + s.pages_resident, pages,
                "%lu objects in the pool, %lu pages resident", s.tier_pages, s.pages_resident);
  check_records(a, 0, pages, 3);
}

/* 256 frames, at most half of them the pool's: 4,096 pages of records
 * fill it many times over, and its oldest pages go to the swap file. */
Test(compress, a_full_pool_writes_its_oldest_pages_back_and_keeps_its_share, .timeout = 120) {
  start_tier("lz4", 256);
  size_t pages = 4096;
  uint64_t *a = upg_map(pages * PAGE, 0);
  write_records(a, 0, pages, 1);
  check_records(a, 0, pages, 1);
  upg_stats_t s = stats_now();
  cr_assert_gt(s.tier_writebacks, 0);
  cr_assert_gt(s.swap_bytes_written, 0);
  cr_assert_leq(s.tier_pool_peak, 128 * PAGE, "the pool keeps to its share");
  cr_assert_gt(s.tier_pool_peak, 0);
  cr_assert_leq(s.pages_resident_peak, 256);
}

/* ---- the budget, as the kernel counts it --------------------------------------*/
#define BUDGET_MIB 16
#define REGION_MIB 64

static void cgroup_child_work(int touch_all) {
  setenv("UPAGER_COMPRESS", "lz4", 1);
  setenv("UPAGER_SWAP_DIR", "/var/tmp", 1); /* a disk: O_DIRECT, no page cache */
  upg_options_t opt = {.budget = (size_t)BUDGET_MIB << 20};
  if (upg_init(&opt) != 0) _exit(3);
  size_t pages = touch_all ? ((size_t)REGION_MIB << 20) / PAGE : 1;
  uint64_t *a = upg_map((size_t)REGION_MIB << 20, 0);
  for (int round = 1; round <= 2; round++) write_records(a, 0, pages, (uint64_t)round);
  for (size_t p = 0; p < pages; p++)
    if (a[p * WORDS] != record_word(p, 0, 2)) _exit(5);
  upg_stats_t s = UPG_STATS_INIT;
  upg_stats(&s);
  if (touch_all && s.tier_pool_peak == 0) _exit(6); /* the pool must have been used */
  _exit(0);
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The peak memory of a child in a memory cgroup of its own: its pages,
 * shared memory and page cache alike. -1 when no cgroup can be made. */
static long long cgroup_peak(int touch_all) {
  char dir[128], path[192], buf[64];
  snprintf(dir, sizeof dir, "/sys/fs/cgroup/memory/upager-test-%d-%d", getpid(), touch_all);
  if (mkdir(dir, 0755) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    snprintf(buf, sizeof buf, "%d", getpid());
    if (write_file(path, buf) != 0) _exit(2);
    cgroup_child_work(touch_all);
  }
  int status;
  waitpid(pid, &status, 0);
  snprintf(path, sizeof path, "%s/memory.max_usage_in_bytes", dir);
  FILE *f = fopen(path, "r");
  long long peak = -1;
  if (f == NULL || fscanf(f, "%lld", &peak) != 1) peak = -1;
  if (f) fclose(f);
  rmdir(dir);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  return peak;
}

/* Without a cgroup: the process's own anonymous and shared memory after the
 * work, with the region still mapped. */
static long long proc_growth(void) {
  start_tier("lz4", (size_t)BUDGET_MIB << 20 >> 12);
  long before = proc_status_kib("RssAnon") + proc_status_kib("RssShmem");
  size_t pages = ((size_t)REGION_MIB << 20) / PAGE;
  uint64_t *a = upg_map((size_t)REGION_MIB << 20, 0);
  for (int round = 1; round <= 2; round++) write_records(a, 0, pages, (uint64_t)round);
  cr_assert_gt(stats_now().tier_pool_peak, 0);
  long after = proc_status_kib("RssAnon") + proc_status_kib("RssShmem");
  return (long long)(after - before) * 1024;
}

/* The frames, the pool and its write-back buffers are the budget; the
 * runtime's tables (the tier's included) are the slack: with the tier off
 * the same child peaked 1.5-1.8 MiB over its baseline, and the tier's
 * table and contexts add under 0.5 MiB. A pool outside the budget would
 * add its share, 8 MiB. */
#define SLACK ((long long)3 << 20)

Test(compress, frames_and_pool_together_stay_inside_the_budget, .timeout = 120) {
  long long base = cgroup_peak(0);
  if (base < 0) {
    long long grown = proc_growth();
    cr_assert_leq(grown, ((long long)BUDGET_MIB << 20) + SLACK, "grew %lld KiB", grown / 1024);
    return;
  }
  long long peak = cgroup_peak(1);
  cr_log_info("cgroup peak %lld KiB, baseline %lld KiB", peak / 1024, base / 1024);
  cr_assert_leq(peak - base, ((long long)BUDGET_MIB << 20) + SLACK,
                "cgroup peak %lld KiB over a %lld KiB baseline", peak / 1024, base / 1024);
}

/* ---- failures ---------------------------------------------------------------*/
/* Every third put to the store below fails, the pool's write-backs among
 * them: the pages stay in the pool, nothing is lost, the program goes on. */
Test(compress, failing_write_backs_keep_the_pages_in_the_pool, .timeout = 120) {
  upg__faulty.fail_puts = 3;
  setenv("UPAGER_STORE", "faulty", 1);
  start_tier("lz4", 256);
  size_t pages = 4096;
  uint64_t *a = upg_map(pages * PAGE, 0);
  for (uint64_t round = 1; round <= 2; round++) write_records(a, 0, pages, round);
  check_records(a, 0, pages, 2);
  upg_stats_t s = stats_now();
  cr_assert_gt(s.tier_writeback_errors, 0);
  cr_assert_gt(s.tier_writebacks, 0);
}

static void read_back_corrupted(void) {
  setenv("UPAGER_COMPRESS", "lz4", 1);
  upg_options_t opt = {.budget = 128 * PAGE};
  if (upg_init(&opt) != 0) _exit(4);
  uint64_t *a = upg_map(512 * PAGE, 0);
  write_records(a, 0, 512, 1);
  atomic_store(&upg__tier_faults.corrupt_gets, 1);
  volatile uint64_t sink = 0;
  for (size_t p = 0; p < 512; p++) sink += a[p * WORDS];
  (void)sink;
}

Test(compress, a_corrupt_compressed_page_ends_the_program_naming_the_cause, .timeout = 30) {
  assert_ends_naming(read_back_corrupted, "corrupt (checksum mismatch)");
}

/* ---- options ----------------------------------------------------------------*/
Test(compress, a_bad_compress_option_fails_init_naming_the_variable, .timeout = 10) {
  const char *vars[][2] = {{"UPAGER_COMPRESS", "lzma"},
                           {"UPAGER_COMPRESS_POOL", "95"},
                           {"UPAGER_COMPRESS_THRESHOLD", "8K"}};
  for (size_t i = 0; i < 3; i++) {
    setenv(vars[i][0], vars[i][1], 1);
    cr_assert_eq(upg_init(NULL), UPG_EOPTION, "%s", vars[i][0]);
    cr_assert_not_null(strstr(upg_last_error(), vars[i][0]), "%s", upg_last_error());
    unsetenv(vars[i][0]);
  }
}
