/* test_integrity.c: no data is lost under eviction. A 1 GiB region under
 * an 8 MiB budget is written in a scattered order with a pattern that names
 * each word's page and place, by one thread and by four, then read back in
 * full; the memory the kernel says the runtime holds stays within the
 * budget throughout. Also: wide windows loading in several threads at
 * once, many threads faulting on the same pages, and
 * threads discarding their own pages while the others' faults evict, also
 * while the kernel compacts memory. */
#define _GNU_SOURCE
#include <pthread.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>

#include "helpers.h"

#define PAGE 4096u
#define WORDS (PAGE / 8)
#define REGION ((size_t)1 << 30)
#define PAGES (REGION / PAGE)
#define BUDGET ((size_t)8 << 20)
#define SAMPLE_EVERY 8192
/* The writers stop at a barrier while one of them samples, since smaps is
 * read one mapping at a time and a page that moved during the read would
 * be counted twice. The runtime's own threads go on: a prefetch already
 * asked for can still land, a readahead window of 256 KiB at most, and
 * the view's figure gets that slack. The frames' figure, the memfd's
 * block count and the views' anonymous pages, gets none. */
#define VIEW_SLACK ((long long)256 << 10)

static pthread_barrier_t sample_barrier;

typedef struct job {
  uint64_t *region;
  size_t first, step; /* this thread visits permutation indices first, first+step, ... */
  uint64_t round;
  size_t mismatches;
  long long worst_frames, worst_view_kib;
} job_t;

/* An odd multiplier permutes a power-of-two range: a scattered order in
 * which every page comes exactly once. */
static size_t scattered(size_t i) { return (i * 0x9E3779B1u) & (PAGES - 1); }

/* The view is read twice and the smaller figure kept: with the writers
 * stopped, a page really over budget shows in both readings, while one
 * reading can catch the evictor between closing and releasing a batch. */
static void sample_memory(job_t *job) {
  long long held = frame_bytes();
  long view = smaps_rss_kib(job->region, REGION), again = smaps_rss_kib(job->region, REGION);
  if (again < view) view = again;
  if (held > job->worst_frames) job->worst_frames = held;
  if (view > job->worst_view_kib) job->worst_view_kib = view;
}

static void *write_pages(void *arg) {
  job_t *job = arg;
  for (size_t i = job->first; i < PAGES; i += job->step) {
    size_t page = scattered(i);
    uint64_t *words = job->region + page * WORDS;
    for (size_t w = 0; w < WORDS; w++) words[w] = pattern(page, w, job->round);
    if ((i - job->first) / job->step % SAMPLE_EVERY == SAMPLE_EVERY - 1) {
      pthread_barrier_wait(&sample_barrier);
      if (job->first == 0) sample_memory(job);
      pthread_barrier_wait(&sample_barrier);
    }
  }
  return NULL;
}

static void *check_pages(void *arg) {
  job_t *job = arg;
  for (size_t page = job->first; page < PAGES; page += job->step) {
    const uint64_t *words = job->region + page * WORDS;
    for (size_t w = 0; w < WORDS; w++) job->mismatches += words[w] != pattern(page, w, job->round);
  }
  return NULL;
}

static void run_threads(void *(*fn)(void *), job_t *jobs, int nthreads) {
  pthread_t threads[8];
  for (int t = 0; t < nthreads; t++) pthread_create(&threads[t], NULL, fn, &jobs[t]);
  for (int t = 0; t < nthreads; t++) pthread_join(threads[t], NULL);
}

static void write_and_verify(int nthreads) {
  start_runtime(BUDGET, NULL);
  uint64_t *region = upg_map(REGION, 0);
  cr_assert_not_null(region);
  job_t jobs[8];
  for (int t = 0; t < nthreads; t++)
    jobs[t] = (job_t){region, (size_t)t, (size_t)nthreads, 1, 0, 0, 0};
  pthread_barrier_init(&sample_barrier, NULL, (unsigned)nthreads);
  run_threads(write_pages, jobs, nthreads);
  run_threads(check_pages, jobs, nthreads);
  size_t mismatches = 0;
  for (int t = 0; t < nthreads; t++) mismatches += jobs[t].mismatches;
  cr_assert_eq(mismatches, 0, "%zu words lost or misplaced", mismatches);

  upg_stats_t s = stats_now();
  cr_assert_leq(s.pages_resident_peak, BUDGET / PAGE);
  cr_assert_geq(s.swap_bytes_read / PAGE, PAGES - BUDGET / PAGE);
  /* The kernel's own accounting: memory held by the frames, and the
   * program view's resident set, never above the budget. */
  cr_assert_gt(jobs[0].worst_frames, 0, "memory was sampled");
  cr_assert_leq(jobs[0].worst_frames, (long long)BUDGET, "the frames held %lld bytes",
                jobs[0].worst_frames);
  cr_assert_leq(jobs[0].worst_view_kib * 1024, (long long)BUDGET + VIEW_SLACK, "view rss %lld KiB",
                jobs[0].worst_view_kib);
  cr_assert_leq(frame_bytes(), (long long)BUDGET);
}

Test(integrity, one_gib_under_8_mib_one_thread_loses_nothing, .timeout = 180) {
  write_and_verify(1);
}

Test(integrity, one_gib_under_8_mib_four_threads_lose_nothing, .timeout = 180) {
  write_and_verify(4);
}

/* Windows of 256 pages loading in three threads and the prefetch thread at
 * once take more buffers than there are staging pages (staging.c): the
 * loads that find none read where the source would without them, and
 * every page, whichever way it came, holds what was written. */
#define WIDE_PAGES 6144
#define WIDE_THREADS 3

static void *scan_third(void *arg) {
  uint64_t *p = arg;
  size_t share = WIDE_PAGES / WIDE_THREADS;
  for (uint64_t round = 1; round <= 3; round++)
    for (size_t page = 0; page < share; page++) {
      if (round > 1 && p[page * PAGE / 8 + 7] != pattern(page, 7, round - 1))
        return (void *)(page + 1);
      p[page * PAGE / 8 + 7] = pattern(page, 7, round);
    }
  return NULL;
}

Test(integrity, wide_windows_in_several_threads_come_back_intact, .timeout = 60) {
  upg_options_t opt = {0};
  opt.budget = 2048 * PAGE;
  opt.readahead = 256 * PAGE;
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  uint64_t *p = upg_map(WIDE_PAGES * PAGE, 0);
  cr_assert_not_null(p);
  cr_assert_eq(upg_advise(p, WIDE_PAGES * PAGE, UPG_ADV_SEQUENTIAL), 0, "every window whole");
  pthread_t t[WIDE_THREADS];
  for (int i = 0; i < WIDE_THREADS; i++)
    pthread_create(&t[i], NULL, scan_third, p + (size_t)i * WIDE_PAGES / WIDE_THREADS * PAGE / 8);
  for (int i = 0; i < WIDE_THREADS; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    cr_assert_null(bad, "thread %d: page %zu lost its contents", i, (size_t)bad - 1);
  }
  cr_assert_gt(stats_now().readahead_pages, WIDE_PAGES, "the windows were not wide");
}

/* Eight threads keep faulting on the same 64 pages under an 8-page budget,
 * each writing only its own word of every page, so any lost update is the
 * runtime's doing. */
#define SHARED_PAGES 64
#define HAMMER_THREADS 8
#define HAMMER_ROUNDS 300

typedef struct hammer {
  volatile uint64_t *pages;
  int id;
} hammer_t;

static void *hammer(void *arg) {
  hammer_t *h = arg;
  for (int round = 0; round < HAMMER_ROUNDS; round++)
    for (size_t p = 0; p < SHARED_PAGES; p++) h->pages[p * WORDS + (size_t)h->id * 8] += 1;
  return NULL;
}

Test(integrity, eight_threads_faulting_on_the_same_pages_lose_no_update, .timeout = 120) {
  start_runtime(8 * PAGE, NULL);
  volatile uint64_t *pages = upg_map(SHARED_PAGES * PAGE, 0);
  pthread_t threads[HAMMER_THREADS];
  hammer_t args[HAMMER_THREADS];
  for (int t = 0; t < HAMMER_THREADS; t++) {
    args[t] = (hammer_t){pages, t};
    pthread_create(&threads[t], NULL, hammer, &args[t]);
  }
  for (int t = 0; t < HAMMER_THREADS; t++) pthread_join(threads[t], NULL);
  for (size_t p = 0; p < SHARED_PAGES; p++)
    for (int t = 0; t < HAMMER_THREADS; t++)
      cr_assert_eq(pages[p * WORDS + (size_t)t * 8], HAMMER_ROUNDS, "page %zu thread %d", p, t);
  upg_stats_t s = stats_now();
  cr_assert_leq(s.pages_resident_peak, 8);
  cr_assert_gt(s.fault_major, 0);
}

/* Threads write, discard and check their own slices of one region while
 * the others' faults evict: a discard's runs of resident pages and the swap
 * space it gives back must never take another page's data. */
#define SLICE_PAGES 2048
#define SLICERS 4
#define SLICE_ROUNDS 6

typedef struct slicer {
  uint64_t *base; /* the slice */
  size_t first;   /* its first page in the region, for the pattern */
  unsigned seed;
  size_t mismatches;
  int advise_errors;
  int first_advise_error;
  char first_wrong[160]; /* the first wrong word, for the failure's message */
} slicer_t;

static void discard_some(slicer_t *s, unsigned char *alive) {
  for (int k = 0; k < 8; k++) {
    size_t start = (size_t)rand_r(&s->seed) % SLICE_PAGES;
    size_t len = 1 + (size_t)rand_r(&s->seed) % 64;
    if (start + len > SLICE_PAGES) len = SLICE_PAGES - start;
    int rc = upg_advise(s->base + start * WORDS, len * PAGE, UPG_ADV_DONTNEED);
    if (rc != 0 && s->advise_errors++ == 0) s->first_advise_error = rc;
    memset(alive + start, 0, len);
  }
}

static void *write_discard_check(void *arg) {
  slicer_t *s = arg;
  unsigned char alive[SLICE_PAGES];
  for (uint64_t round = 1; round <= SLICE_ROUNDS; round++) {
    for (size_t p = 0; p < SLICE_PAGES; p++)
      for (size_t w = 0; w < WORDS; w += 64)
        s->base[p * WORDS + w] = pattern(s->first + p, w, round);
    memset(alive, 1, sizeof alive);
    discard_some(s, alive);
    for (size_t p = 0; p < SLICE_PAGES; p++)
      for (size_t w = 0; w < WORDS; w += 64) {
        uint64_t want = alive[p] ? pattern(s->first + p, w, round) : 0,
                 got = s->base[p * WORDS + w];
        if (got != want && s->mismatches++ == 0)
          snprintf(s->first_wrong, sizeof s->first_wrong,
                   "round %" PRIu64 ", page %zu, word %zu: %#" PRIx64 " where %#" PRIx64, round, p,
                   w, got, want);
      }
  }
  return NULL;
}

/* Four slicers on one region under a 256-page budget; every page checked. */
static void slice_and_check(void) {
  start_runtime(256 * PAGE, NULL);
  uint64_t *region = upg_map((size_t)SLICERS * SLICE_PAGES * PAGE, 0);
  cr_assert_not_null(region);
  pthread_t threads[SLICERS];
  slicer_t slicers[SLICERS];
  for (size_t t = 0; t < SLICERS; t++) {
    slicers[t] = (slicer_t){.base = region + t * SLICE_PAGES * WORDS,
                            .first = t * SLICE_PAGES,
                            .seed = (unsigned)t + 7};
    pthread_create(&threads[t], NULL, write_discard_check, &slicers[t]);
  }
  for (size_t t = 0; t < SLICERS; t++) {
    pthread_join(threads[t], NULL);
    cr_assert_eq(slicers[t].advise_errors, 0, "thread %zu: %d discards failed, the first: %s", t,
                 slicers[t].advise_errors, upg_strerror(slicers[t].first_advise_error));
    cr_assert_eq(slicers[t].mismatches, 0, "thread %zu: %zu words wrong, the first at %s", t,
                 slicers[t].mismatches, slicers[t].first_wrong);
  }
  upg_stats_t st = stats_now();
  cr_assert_gt(st.discards, 0);
  cr_assert_gt(st.evict_dirty, 0);
  cr_assert_leq(st.pages_resident_peak, 256);
}

Test(integrity, discards_beside_other_threads_faults_lose_no_data, .timeout = 120) {
  slice_and_check();
}

/* The kernel's compaction moves the process's pages to other frames while
 * the runtime works on them: on Linux 6.18 that made UFFDIO_MOVE lose
 * pages and leave given-back ones behind (view_uffd.c). It runs whenever
 * memory is fragmented; here it is asked for every 50 ms (root only). */
static _Atomic int compacting;

static void *compact_memory(void *arg) {
  int fd = *(int *)arg;
  while (atomic_load(&compacting)) {
    if (pwrite(fd, "1", 1, 0) != 1) break;
    usleep(50000);
  }
  return NULL;
}

Test(integrity, pages_survive_the_kernel_compacting_memory, .timeout = 120) {
  int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);
  if (fd < 0) cr_skip_test("cannot ask for compaction: %s", strerror(errno));
  pthread_t compactor;
  atomic_store(&compacting, 1);
  pthread_create(&compactor, NULL, compact_memory, &fd);
  for (int run = 0; run < 2; run++) {
    slice_and_check();
    upg_shutdown();
  }
  atomic_store(&compacting, 0);
  pthread_join(compactor, NULL);
  close(fd);
}
