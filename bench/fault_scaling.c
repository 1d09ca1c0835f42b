/* fault_scaling.c: fault throughput with one thread and with two, each
 * faulting on its own pages. Every access is a major fault (a random page
 * of a region four times the budget, readahead off), so the figure shows
 * whether faults wait for each other's I/O: with no lock held across I/O,
 * two threads overlap their reads.
 *
 *   fault_scaling [budget [faults_per_thread]]      defaults: 64M 20000
 *
 * The device's own scaling is measured after, in the same run: bare 4 KiB
 * preads at random offsets of a file as large as the region, in the swap
 * directory (O_DIRECT when the swap file is), by one thread and by two.
 * No pager can scale better than the reads it waits for. So is the bare
 * mechanism's: a SIGSEGV handler with no runtime around it that reads a
 * page into a memfd alias, opens it with one mprotect and, once its
 * thread holds its share of the budget, closes and punches its oldest page
 * (FIFO), one and two threads on the same file. Its page-table changes are
 * what every protection-based pager pays, and they do not scale on a
 * 2-vCPU VM: each one flushes the other CPU's TLB. The userfaultfd source
 * has a bare floor of its own: a SIGBUS handler (UFFD_FEATURE_SIGBUS) that
 * preads the page into a buffer and places it with UFFDIO_COPY and, once
 * its thread holds its share, frees its oldest pages, 32 a call, as the
 * runtime does; where userfaultfd cannot run it is skipped.
 *
 * Each fault source runs in turn (sigsegv, then uffd where it can run).
 *
 * Target (issues 5, 20): two threads at least 1.6x one thread's
 * throughput, or the device's own two-thread ratio if lower, per source. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/uffd_abi.h"
#include "bench.h"
#include "upager.h"

#define PAGE 4096u
/* Pages the bare uffd pager frees a call. */
#define FREE_BATCH 32

typedef struct job {
  volatile char *base;
  size_t pages; /* this thread's half */
  size_t faults;
  uint64_t seed;
} job_t;

static double now_s(void) { return bench_now_us() / 1e6; }

static void *touch_random(void *arg) {
  job_t *job = arg;
  uint64_t x = job->seed;
  volatile char sink = 0;
  for (size_t i = 0; i < job->faults; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    sink += job->base[(x % job->pages) * PAGE];
  }
  (void)sink;
  return NULL;
}

/* ---- the device's floor ---------------------------------------------------*/
typedef struct reader {
  int fd;
  size_t pages, reads;
  unsigned seed;
} reader_t;

static void *read_random(void *arg) {
  reader_t *rd = arg;
  return bench_pread_random(rd->fd, rd->pages, rd->reads, &rd->seed) != 0 ? (void *)1 : NULL;
}

/* Bare preads per second with `threads` threads, or 0 on an I/O error. */
static double reads_per_s(int fd, size_t pages, int threads, size_t reads) {
  pthread_t tid[2];
  reader_t rd[2];
  void *failed = NULL, *res;
  double t0 = now_s();
  for (int t = 0; t < threads; t++) {
    rd[t] = (reader_t){fd, pages, reads, (unsigned)(7 * threads + t)};
    pthread_create(&tid[t], NULL, read_random, &rd[t]);
  }
  for (int t = 0; t < threads; t++)
    if (pthread_join(tid[t], &res) == 0 && res != NULL) failed = res;
  return failed ? 0 : (double)threads * (double)reads / (now_s() - t0);
}

/* ---- the bare mechanism's floor -------------------------------------------*/
static struct {
  char *view, *alias; /* alias: the sigsegv pager's writable view */
  int memfd, fd, uffd, pidfd;
  size_t pages, frames; /* frames: each thread's share of the budget */
  pthread_barrier_t start;
} bare;

/* Each thread's FIFO of the pages it holds; volatile, as the handler
 * changes them behind the compiler's back. */
static _Thread_local size_t *volatile bare_fifo;
static _Thread_local volatile size_t bare_held, bare_oldest, bare_faults;
static _Thread_local unsigned bare_seed;
static _Thread_local char *bare_buffer; /* the uffd pager's read buffer */

static void bare_fault(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)ctx;
  size_t page = (size_t)((char *)info->si_addr - bare.view) / PAGE;
  if (bare_held == bare.frames) { /* evict the oldest: close it, free its frame */
    size_t victim = bare_fifo[bare_oldest];
    mprotect(bare.view + victim * PAGE, PAGE, PROT_NONE);
    fallocate(bare.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(victim * PAGE), PAGE);
    bare_oldest = (bare_oldest + 1) % bare.frames;
    bare_held--;
  }
  off_t from = (off_t)(rand_r(&bare_seed) % bare.pages * PAGE);
  if (pread(bare.fd, bare.alias + page * PAGE, PAGE, from) != PAGE) abort();
  mprotect(bare.view + page * PAGE, PAGE, PROT_READ);
  bare_fifo[(bare_oldest + bare_held++) % bare.frames] = page;
  bare_faults++;
}

/* Frees the uffd pager's FREE_BATCH oldest pages, in one process_madvise
 * as the runtime does (Linux 6.13), else one madvise each. */
static void bare_free_oldest(void) {
  struct iovec iov[FREE_BATCH];
  for (int k = 0; k < FREE_BATCH; k++) {
    iov[k] = (struct iovec){bare.view + bare_fifo[bare_oldest] * PAGE, PAGE};
    bare_oldest = (bare_oldest + 1) % bare.frames;
    bare_held--;
  }
  if (syscall(SYS_process_madvise, bare.pidfd, iov, FREE_BATCH, MADV_DONTNEED, 0) < 0)
    for (int k = 0; k < FREE_BATCH; k++) madvise(iov[k].iov_base, PAGE, MADV_DONTNEED);
}

static void bare_uffd_fault(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)ctx;
  size_t page = (size_t)((char *)info->si_addr - bare.view) / PAGE;
  if (bare_held == bare.frames) bare_free_oldest();
  off_t from = (off_t)(rand_r(&bare_seed) % bare.pages * PAGE);
  if (pread(bare.fd, bare_buffer, PAGE, from) != PAGE) abort();
  struct uffdio_copy c = {(uintptr_t)(bare.view + page * PAGE), (uintptr_t)bare_buffer, PAGE, 0, 0};
  if (ioctl(bare.uffd, UFFDIO_COPY, &c) != 0) abort();
  bare_fifo[(bare_oldest + bare_held++) % bare.frames] = page;
  bare_faults++;
}

static void *bare_touch(void *arg) {
  job_t *job = arg;
  bare_fifo = malloc(bare.frames * sizeof *bare_fifo);
  bare_buffer = aligned_alloc(PAGE, PAGE);
  if (bare_fifo == NULL || bare_buffer == NULL) abort();
  bare_held = bare_oldest = 0;
  bare_seed = (unsigned)job->seed;
  volatile char sink = 0;
  for (size_t p = 0; p < bare.frames && p < job->pages; p++) sink += job->base[p * PAGE];
  (void)sink;
  bare_faults = 0; /* from here on, as under upager, every fault evicts */
  pthread_barrier_wait(&bare.start);
  touch_random(job);
  job->faults = bare_faults;
  free(bare_fifo);
  free(bare_buffer);
  return NULL;
}

/* The sigsegv pager's view and alias of one memfd; 0 or -1. */
static int bare_sigsegv_view(size_t pages) {
  bare.memfd = memfd_create("fault_scaling", MFD_CLOEXEC);
  if (bare.memfd < 0 || ftruncate(bare.memfd, (off_t)(pages * PAGE)) != 0) return -1;
  bare.view = mmap(NULL, pages * PAGE, PROT_NONE, MAP_SHARED, bare.memfd, 0);
  bare.alias = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, bare.memfd, 0);
  return bare.view == MAP_FAILED || bare.alias == MAP_FAILED ? -1 : 0;
}

/* The uffd pager's view: anonymous memory whose missing pages raise
 * SIGBUS; 0, or -1 where userfaultfd cannot run. */
static int bare_uffd_view(size_t pages) {
  bare.uffd = bench_uffd_open(UFFD_FEATURE_SIGBUS);
  bare.pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (bare.uffd < 0) return -1;
  bare.view = bench_uffd_region(bare.uffd, pages * PAGE, UFFDIO_REGISTER_MODE_MISSING);
  return bare.view != NULL ? 0 : -1;
}

static void bare_unmap(size_t pages) {
  if (bare.view != MAP_FAILED && bare.view != NULL) munmap(bare.view, pages * PAGE);
  if (bare.alias != MAP_FAILED && bare.alias != NULL) munmap(bare.alias, pages * PAGE);
  if (bare.memfd >= 0) close(bare.memfd);
  if (bare.uffd >= 0) close(bare.uffd);
  if (bare.pidfd >= 0) close(bare.pidfd);
  bare.view = bare.alias = NULL;
  bare.memfd = bare.uffd = bare.pidfd = -1;
}

/* Faults per second of a bare mechanism (`uffd` or not) with `threads`
 * threads, each on its own half of a region as large as upager's,
 * `budget` pages in all; 0 where it cannot run. */
static double bare_run(int uffd, int fd, size_t pages, size_t budget, int threads,
                       size_t accesses) {
  bare.pages = pages;
  bare.fd = fd;
  bare.frames = budget / (size_t)threads;
  bare.memfd = bare.uffd = bare.pidfd = -1;
  if ((uffd ? bare_uffd_view(pages) : bare_sigsegv_view(pages)) != 0) {
    bare_unmap(pages);
    return 0;
  }
  int sig = uffd ? SIGBUS : SIGSEGV;
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = uffd ? bare_uffd_fault : bare_fault;
  sa.sa_flags = SA_SIGINFO;
  sigaction(sig, &sa, &old);
  pthread_t tid[2];
  job_t jobs[2];
  pthread_barrier_init(&bare.start, NULL, (unsigned)threads + 1);
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job_t){bare.view + (size_t)t * (pages / 2) * PAGE, pages / 2, accesses,
                      88172645463325252ull + (uint64_t)(16 * threads + t)};
    pthread_create(&tid[t], NULL, bare_touch, &jobs[t]);
  }
  pthread_barrier_wait(&bare.start);
  double t0 = now_s();
  size_t faults = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(tid[t], NULL);
    faults += jobs[t].faults;
  }
  double seconds = now_s() - t0;
  pthread_barrier_destroy(&bare.start);
  sigaction(sig, &old, NULL);
  bare_unmap(pages);
  return (double)faults / seconds;
}

/* ---- upager ---------------------------------------------------------------*/
/* Faults per second with `threads` threads, each on its own half. */
static double run(volatile char *region, size_t pages, int threads, size_t faults) {
  pthread_t tid[2];
  job_t jobs[2];
  upg_stats_t before = UPG_STATS_INIT, after = UPG_STATS_INIT;
  upg_stats(&before);
  double t0 = now_s();
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job_t){region + (size_t)t * (pages / 2) * PAGE, pages / 2, faults,
                      88172645463325252ull + (uint64_t)(16 * threads + t)};
    pthread_create(&tid[t], NULL, touch_random, &jobs[t]);
  }
  for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  double seconds = now_s() - t0;
  upg_stats(&after);
  uint64_t majors = after.fault_major - before.fault_major;
  printf("  %d thread%s: %8llu major faults in %6.2f s: %8.0f faults/s (%llu minor, %llu waited)\n",
         threads, threads > 1 ? "s" : " ", (unsigned long long)majors, seconds,
         (double)majors / seconds, (unsigned long long)(after.fault_minor - before.fault_minor),
         (unsigned long long)(after.fault_wait - before.fault_wait));
  return (double)majors / seconds;
}

/* One source's runs, one thread then two; 0 where it cannot run. */
static int measure_source(const char *source, size_t budget, size_t faults, double *one,
                          double *two, int *direct) {
  upg_options_t opt = {.budget = budget, .fault = source};
  int rc = upg_init(&opt);
  if (rc != 0) {
    fprintf(stderr, "upg_init (%s): %s (%s)\n", source, upg_strerror(rc), upg_last_error());
    return 0;
  }
  size_t pages = 4 * budget / PAGE;
  volatile char *region = upg_map(pages * PAGE, 0);
  if (region == NULL) {
    fprintf(stderr, "upg_map: %s\n", upg_strerror(-errno));
    exit(1);
  }
  for (size_t p = 0; p < pages; p++) region[p * PAGE] = (char)p; /* all in swap, mostly */
  upg_advise((void *)region, pages * PAGE, UPG_ADV_RANDOM);
  printf("fault_scaling, %s source: %zu MiB budget, %zu MiB region, random reads, readahead off\n",
         source, budget >> 20, pages * PAGE >> 20);
  *one = run(region, pages, 1, faults);
  *two = run(region, pages, 2, faults);
  printf("  two threads / one thread: %.2fx\n", *two / *one);
  upg_stats_t s = UPG_STATS_INIT;
  upg_stats(&s);
  *direct = (int)s.swap_direct_io;
  upg_shutdown();
  return 1;
}

int main(int argc, char **argv) {
  size_t budget = argc > 1 ? strtoull(argv[1], NULL, 0) << 20 : (size_t)64 << 20;
  size_t faults = argc > 2 ? strtoull(argv[2], NULL, 0) : 20000;
  size_t pages = 4 * budget / PAGE;
  static const char *const sources[2] = {"sigsegv", "uffd"};
  double one[2] = {0, 0}, two[2] = {0, 0};
  int ran[2], direct = 0;
  for (int i = 0; i < 2; i++)
    ran[i] = measure_source(sources[i], budget, faults, &one[i], &two[i], &direct);
  if (!ran[0]) return 1;
  upg_stats_t s = {.swap_direct_io = (uint64_t)direct};
  int fd = bench_floor_file(pages, (int)s.swap_direct_io);
  double dev_one = fd < 0 ? 0 : reads_per_s(fd, pages, 1, faults);
  double dev_two = fd < 0 ? 0 : reads_per_s(fd, pages, 2, faults);
  double bare_one[2], bare_two[2];
  for (int i = 0; i < 2; i++) {
    bare_one[i] = dev_two <= 0 ? 0 : bare_run(i, fd, pages, budget / PAGE, 1, faults);
    bare_two[i] = bare_one[i] <= 0 ? 0 : bare_run(i, fd, pages, budget / PAGE, 2, faults);
  }
  if (fd >= 0) close(fd);
  if (dev_one <= 0 || dev_two <= 0 || bare_one[0] <= 0 || bare_two[0] <= 0) {
    fprintf(stderr, "fault_scaling: cannot measure the floors: %s\n", strerror(errno));
    return 1;
  }
  printf("device floor, bare 4 KiB preads (%s): 1 thread %.0f/s, 2 threads %.0f/s: %.2fx\n",
         s.swap_direct_io ? "O_DIRECT" : "page cache", dev_one, dev_two, dev_two / dev_one);
  for (int i = 0; i < 2; i++)
    if (bare_two[i] > 0)
      printf("mechanism floor, bare %s pager (FIFO, no runtime): 1 thread %.0f faults/s, "
             "2 threads %.0f/s: %.2fx\n",
             i ? "userfaultfd (SIGBUS, UFFDIO_COPY, 32 freed a call)" : "SIGSEGV (mprotect, punch)",
             bare_one[i], bare_two[i], bare_two[i] / bare_one[i]);
  for (int i = 0; i < 2; i++)
    if (ran[i] && bare_two[i] > 0)
      printf("  upager (%s) against its bare mechanism: 1 thread %.2f, 2 threads %.2f of its "
             "throughput; two threads %.2fx one, the bare mechanism %.2fx, the device %.2fx\n",
             sources[i], one[i] / bare_one[i], two[i] / bare_two[i], two[i] / one[i],
             bare_two[i] / bare_one[i], dev_two / dev_one);
  return 0;
}
