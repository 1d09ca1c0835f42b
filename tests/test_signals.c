/* test_signals.c: the fault path as the interrupted program sees it. A
 * fault must leave errno as it was; a program's own signal handlers may
 * run at any instant and touch paged memory; stops, continues and signals
 * during write-back lose nothing; a stalled stderr or trace reader stalls
 * no fault; unmapping a huge sparse region costs what was touched. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "helpers.h"

#define PAGE 4096
#define WORDS (PAGE / sizeof(uint64_t))

static uint64_t word_of(size_t page, uint64_t round) {
  return page * 0x9e3779b97f4a7c15ull ^ round;
}

static uint64_t next_random(uint64_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

/* ---- errno ---------------------------------------------------------------*/
#define ERRNO_THREADS 3
#define ERRNO_ACCESSES 60000
#define ERRNO_PAGES 16384 /* 64 MiB under a 4 MiB budget */

typedef struct errno_worker {
  uint64_t *region;
  unsigned seed;
  long changed; /* accesses after which errno was not what was set */
  long wrong;   /* pages that did not read back as written */
} errno_worker_t;

/* errno is read through a volatile pointer, so the compiler cannot keep
 * the value it stored in a register across the access. */
static void *errno_loop(void *arg) {
  errno_worker_t *w = arg;
  volatile int *err = &errno;
  uint64_t state = 0x2545f4914f6cdd1dull + w->seed;
  for (long i = 0; i < ERRNO_ACCESSES; i++) {
    size_t page = next_random(&state) % ERRNO_PAGES;
    volatile uint64_t *at = &w->region[page * WORDS + w->seed];
    int expected = 1000 + (int)(i % 100);
    *err = expected;
    if (i % 3 == 0) {
      *at = word_of(page, w->seed);
    } else {
      uint64_t v = *at;
      if (v != 0 && v != word_of(page, w->seed)) w->wrong++;
    }
    if (*err != expected) w->changed++;
  }
  return NULL;
}

Test(signals, no_kind_of_fault_changes_errno, .timeout = 120) {
  start_runtime(1024 * PAGE, NULL);
  uint64_t *region = upg_map((size_t)ERRNO_PAGES * PAGE, 0);
  cr_assert_not_null(region);
  pthread_t threads[ERRNO_THREADS];
  errno_worker_t workers[ERRNO_THREADS];
  for (unsigned t = 0; t < ERRNO_THREADS; t++) {
    workers[t] = (errno_worker_t){region, t, 0, 0};
    pthread_create(&threads[t], NULL, errno_loop, &workers[t]);
  }
  for (unsigned t = 0; t < ERRNO_THREADS; t++) pthread_join(threads[t], NULL);
  upg_stats_t s = stats_now();
  for (unsigned t = 0; t < ERRNO_THREADS; t++) {
    cr_expect_eq(workers[t].changed, 0, "thread %u: errno changed after %ld accesses", t,
                 workers[t].changed);
    cr_expect_eq(workers[t].wrong, 0, "thread %u: %ld pages read back wrong", t, workers[t].wrong);
  }
  /* Every kind of fault was taken, so every kind left errno alone. */
  cr_expect_gt(s.fault_zero, 0);
  cr_expect_gt(s.fault_minor, 0);
  cr_expect_gt(s.fault_write, 0);
  cr_expect_gt(s.fault_major, 0);
  cr_expect_gt(s.fault_wait, 0, "no fault waited for another thread's load or eviction");
  cr_expect_gt(s.evict_batches, 0);
  cr_expect_gt(s.swap_writes, 0, "no dirty victim was written");
}

/* ---- a program's handler that reads paged memory --------------------------*/
#define TIMER_PAGES 8192 /* 32 MiB under a 2 MiB budget */
static uint64_t *volatile timer_region;
static atomic_long timer_reads, timer_wrong;

static void on_timer(int signo) {
  (void)signo;
  int saved = errno;
  static _Thread_local uint64_t state = 88172645463325252ull;
  size_t page = next_random(&state) % TIMER_PAGES;
  if (timer_region[page * WORDS] != word_of(page, 7)) atomic_fetch_add(&timer_wrong, 1);
  atomic_fetch_add(&timer_reads, 1);
  errno = saved;
}

static void *thrash_loop(void *arg) {
  uint64_t state = (uintptr_t)arg | 1;
  for (long i = 0; i < 40000; i++) {
    size_t page = next_random(&state) % TIMER_PAGES;
    if (timer_region[page * WORDS] != word_of(page, 7)) atomic_fetch_add(&timer_wrong, 1);
  }
  return NULL;
}

/* POSIX timers signal with real-time signals, which libsigsegv does not
 * block while it handles a fault: the handler may run on a thread in the
 * middle of one, unless the runtime holds it off until the fault is done. */
Test(signals, a_timer_handler_reads_paged_memory_while_threads_thrash, .timeout = 120) {
  start_runtime(512 * PAGE, NULL);
  uint64_t *region = upg_map((size_t)TIMER_PAGES * PAGE, 0);
  for (size_t page = 0; page < TIMER_PAGES; page++) region[page * WORDS] = word_of(page, 7);
  timer_region = region;
  struct sigaction act = {0};
  act.sa_handler = on_timer;
  act.sa_flags = SA_RESTART;
  sigaction(SIGRTMIN, &act, NULL);
  struct sigevent ev = {0};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGRTMIN;
  timer_t timer;
  cr_assert_eq(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
  struct itimerspec every = {{0, 200000}, {0, 200000}}; /* 5000 a second */
  cr_assert_eq(timer_settime(timer, 0, &every, NULL), 0);
  pthread_t threads[2];
  for (uintptr_t t = 0; t < 2; t++) pthread_create(&threads[t], NULL, thrash_loop, (void *)(t + 1));
  for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
  timer_delete(timer);
  cr_expect_eq(atomic_load(&timer_wrong), 0);
  cr_expect_gt(atomic_load(&timer_reads), 500, "the handler ran %ld times",
               atomic_load(&timer_reads));
  cr_expect_gt(stats_now().fault_major, 10000);
}

/* ---- stops, continues and signals during write-back ----------------------*/
#define STOP_PAGES 8192

static void ignore(int signo) { (void)signo; }

/* The child rewrites every page three times and reads them back. */
static int write_back_child(void) {
  upg_options_t opt = {0};
  opt.budget = 256 * PAGE;
  if (upg_init(&opt) != 0) return 2;
  volatile uint64_t *a = upg_map((size_t)STOP_PAGES * PAGE, 0);
  for (uint64_t round = 1; round <= 3; round++)
    for (size_t page = 0; page < STOP_PAGES; page++)
      for (size_t w = 0; w < WORDS; w += 128) a[page * WORDS + w] = word_of(page, round + w);
  for (size_t page = 0; page < STOP_PAGES; page++)
    for (size_t w = 0; w < WORDS; w += 128)
      if (a[page * WORDS + w] != word_of(page, 3 + w)) return 1;
  upg_stats_t s = UPG_STATS_INIT;
  if (upg_stats(&s) != 0) return 4;
  return s.swap_write_errors == 0 && s.fault_major > 0 ? 0 : 3;
}

Test(signals, stops_continues_and_signals_during_write_back_lose_nothing, .timeout = 120) {
  struct sigaction act = {0};
  act.sa_handler = ignore;        /* no SA_RESTART: interrupted calls fail with EINTR */
  sigaction(SIGUSR1, &act, NULL); /* before the fork: the child has it from its start */
  pid_t child = fork();
  if (child == 0) _exit(write_back_child());
  const struct timespec beat = {0, 2 * 1000 * 1000};
  int status, signals = 0;
  while (waitpid(child, &status, WNOHANG) == 0 && signals < 3000) {
    kill(child, SIGSTOP);
    nanosleep(&beat, NULL);
    kill(child, SIGCONT);
    kill(child, SIGUSR1);
    nanosleep(&beat, NULL);
    signals++;
  }
  waitpid(child, &status, 0);
  cr_assert(WIFEXITED(status), "the child died by signal %d", WTERMSIG(status));
  cr_assert_eq(WEXITSTATUS(status), 0, "child status %d (1: a page read back wrong)",
               WEXITSTATUS(status));
  cr_expect_gt(signals, 100, "only %d stops while the child paged", signals);
}

/* ---- cancellation ----------------------------------------------------------*/
static void *fault_forever(void *arg) {
  volatile uint64_t *region = arg;
  uint64_t state = 12345;
  for (long i = 1;; i++) { /* deferred: a cancellation point ends it */
    size_t page = next_random(&state) % TIMER_PAGES;
    region[page * WORDS] += 1;
    if (i % 1000 == 0) pthread_testcancel(); /* the program's own, the only one */
  }
  return NULL;
}

/* A thread cancelled while its faults read the swap file: no system call
 * of the fault path is a cancellation point, so the thread unwinds at its
 * own next one, never inside a fault with the runtime lock held, and the
 * other threads page on. */
Test(signals, a_thread_cancelled_while_faulting_leaves_paging_working, .timeout = 60) {
  start_runtime(256 * PAGE, NULL);
  uint64_t *region = upg_map((size_t)TIMER_PAGES * PAGE, 0);
  cr_assert_eq(upg_advise(region, (size_t)TIMER_PAGES * PAGE, UPG_ADV_RANDOM), 0);
  const struct timespec pause = {0, 20 * 1000 * 1000};
  for (int round = 0; round < 20; round++) {
    pthread_t victim;
    pthread_create(&victim, NULL, fault_forever, region);
    nanosleep(&pause, NULL);
    pthread_cancel(victim);
    pthread_join(victim, NULL);
  }
  volatile uint64_t *v = region;
  for (size_t page = 0; page < TIMER_PAGES; page += 7) v[page * WORDS + 1] = page;
  for (size_t page = 0; page < TIMER_PAGES; page += 7) cr_assert_eq(v[page * WORDS + 1], page);
  cr_expect_gt(stats_now().fault_major, 100);
}

/* ---- a reader that stalls -------------------------------------------------*/
static int stalled_pipe(int *reader) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  char block[4096] = {0};
  while (write(fds[1], block, sizeof block) > 0) continue; /* full */
  fcntl(fds[1], F_SETFL, 0);
  *reader = fds[0];
  return fds[1];
}

/* Cycling over twice the budget brings every page back from swap within
 * two budgets of its eviction: thrashing, which the runtime warns about
 * on stderr. */
static void cycle(volatile char *p, size_t pages, int rounds) {
  for (int round = 0; round < rounds; round++)
    for (size_t page = 0; page < pages; page++) p[page * PAGE] = (char)round;
}

Test(signals, a_full_stderr_pipe_stalls_no_fault, .timeout = 60) {
  int reader, writer = stalled_pipe(&reader);
  int saved_stderr = dup(2);
  dup2(writer, 2);
  start_runtime(256 * PAGE, NULL);
  char *p = upg_map(512 * PAGE, 0);
  cr_assert_eq(upg_advise(p, 512 * PAGE, UPG_ADV_RANDOM), 0); /* a fault a page */
  cycle(p, 512, 12);
  upg_stats_t s = stats_now();
  dup2(saved_stderr, 2);
  cr_expect_geq(s.thrash_warnings, 1, "no warning was due, so nothing was tested");
  cr_expect_gt(s.fault_major, 4000);
  close(reader);
}

#define TRACE_THREADS 2
static atomic_int finished;

/* Reads the trace until the runtime closes its end. */
static void *drain_all(void *arg) {
  int reader = (int)(intptr_t)arg;
  fcntl(reader, F_SETFL, 0);
  char buffer[65536];
  while (read(reader, buffer, sizeof buffer) > 0) continue;
  return NULL;
}

static void *trace_loop(void *arg) {
  char *p = arg;
  cycle(p, 256, 200); /* 51,200 faults: many buffers of trace records */
  atomic_fetch_add(&finished, 1);
  return NULL;
}

/* A trace written to a pipe whose reader has paused: the thread that
 * writes a full buffer waits for the reader, without the runtime lock, so
 * every other thread pages on. */
Test(signals, a_stalled_trace_reader_stalls_only_the_thread_writing_it, .timeout = 60) {
  char path[] = "/tmp/upager-trace-XXXXXX";
  cr_assert_not_null(mkdtemp(path));
  char fifo[sizeof path + 8];
  snprintf(fifo, sizeof fifo, "%s/fifo", path);
  cr_assert_eq(mkfifo(fifo, 0600), 0);
  int reader = open(fifo, O_RDONLY | O_NONBLOCK);
  upg_options_t opt = {0};
  opt.budget = 128 * PAGE;
  opt.trace = fifo;
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  pthread_t threads[TRACE_THREADS];
  char *regions[TRACE_THREADS];
  for (int t = 0; t < TRACE_THREADS; t++) {
    regions[t] = upg_map(256 * PAGE, 0);
    pthread_create(&threads[t], NULL, trace_loop, regions[t]);
  }
  const struct timespec tick = {0, 10 * 1000 * 1000};
  for (int i = 0; i < 1500 && atomic_load(&finished) < TRACE_THREADS - 1; i++)
    nanosleep(&tick, NULL);
  int finished_while_stalled = atomic_load(&finished);
  pthread_t drainer;
  pthread_create(&drainer, NULL, drain_all, (void *)(intptr_t)reader);
  for (int t = 0; t < TRACE_THREADS; t++) pthread_join(threads[t], NULL);
  cr_expect_geq(finished_while_stalled, TRACE_THREADS - 1,
                "every thread stopped while the trace's reader paused");
  cr_expect_gt(stats_now().trace_dropped, 0, "no buffer waited for the reader");
  upg_shutdown();
  pthread_join(drainer, NULL);
  close(reader);
  unlink(fifo);
  rmdir(path);
}

/* ---- unmapping what was reserved, not touched -----------------------------*/
Test(signals, unmapping_a_sparse_tebibyte_costs_what_was_touched, .timeout = 30) {
  start_runtime(64 * PAGE, NULL);
  size_t len = (size_t)1 << 40;
  char *p = upg_map(len, 0);
  cr_assert_not_null(p);
  p[0] = 1;
  p[len / 2] = 2;
  p[len - 1] = 3;
  long before = proc_status_kib("VmRSS") + proc_status_kib("VmPTE");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  cr_assert_eq(upg_unmap(p, len), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  long peak = usage.ru_maxrss;
  cr_expect_lt(seconds, 0.5, "unmap took %.2f s", seconds);
  cr_expect_lt(peak - before, 1024, "resident peak %ld KiB over the %ld KiB before", peak - before,
               before);
  cr_expect_eq(stats_now().pages_resident, 0);
}

/* The first eviction moves every view onto its memfd; its walk, and
 * shutdown's, cover the chunks touched, not the whole reservation. */
Test(signals, evicting_and_shutting_down_a_sparse_tebibyte_cost_what_was_touched, .timeout = 30) {
  start_runtime(64 * PAGE, NULL);
  size_t len = (size_t)1 << 40;
  volatile char *p = upg_map(len, 0);
  p[len - 1] = 3;
  long before = proc_status_kib("VmRSS") + proc_status_kib("VmPTE");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (size_t page = 0; page < 200; page++) p[page * PAGE] = 1; /* some go to swap */
  cr_expect_gt(stats_now().evict_batches, 0);
  upg_shutdown();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  cr_expect_lt(seconds, 0.5, "paging 200 pages and shutting down took %.2f s", seconds);
  cr_expect_lt(usage.ru_maxrss - before, 2048, "resident peak %ld KiB over the %ld KiB before",
               usage.ru_maxrss - before, before);
}
