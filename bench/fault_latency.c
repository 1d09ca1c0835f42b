/* fault_latency.c: what each kind of fault costs under upager, beside the
 * floor of the mechanism measured in the same run on the same machine.
 *
 * Floors: a bare sigaction handler that mprotects the faulting page back to
 * read-write (the least a protection-based pager can do per fault), timed
 * in address order and in the scattered order of the random passes, and a
 * bare 4 KiB pread at random offsets of a file opened as the swap file is
 * (O_DIRECT when the runtime's swap file is, in the same directory, as
 * large as the region): the least a major fault can add. A virtual disk's
 * latency drifts by tens of percent within a minute, so the pread floor is
 * read right before and right after each major pass, each pass is compared
 * with the mean of the two, and the random kinds take the median of five
 * passes. Then upager's zero-fill, minor, major-clean and
 * major-with-dirty-victim faults, each timed over many faults and divided
 * by the count the runtime's own statistics report for that kind. The
 * per-fault rows advise UPG_ADV_RANDOM so that each fault loads one page,
 * and the major ones visit the pages in a scattered order, so that the swap
 * file is read at random offsets as the floor's preads are; the last row is
 * a sequential pass with readahead, per page.
 *
 *   fault_latency [budget_pages [rounds]]      defaults: 1024 8
 *
 * Each fault source runs in turn (UPAGER_FAULT sigsegv, then uffd where
 * userfaultfd can run, in the mode UPAGER_UFFD_MODE says), and each is
 * compared with its own floor: for uffd,
 * a bare userfaultfd fault delivered as SIGBUS and resolved by UFFDIO_COPY
 * of a page, the least a userfaultfd pager can do per fault.
 *
 * Targets (issues 2, 20): minor <= 1.3x floor, major clean <= 1.3x
 * (floor+pread), each source against its own floor. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "upager.h"

#define PAGE 4096u

/* Page i of a scattered visit: an odd multiplier permutes a power-of-two
 * count, so slots are read at random offsets, as the floor's preads are. */
static size_t scattered(size_t i, size_t pages) { return (i * 0x9E3779B1u) & (pages - 1); }

/* ---- floors ---------------------------------------------------------------*/
static void open_page(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)ctx;
  void *page = (void *)((uintptr_t)info->si_addr & ~(uintptr_t)(PAGE - 1));
  if (mprotect(page, PAGE, PROT_READ | PROT_WRITE) != 0) abort();
}

/* One SIGSEGV and one mprotect a page, in a populated region, visited in
 * address order (each open merges with the last) or in the scattered order
 * of the random major passes (each open splits a mapping, as theirs do). */
static double floor_fault_us(size_t pages, int rounds, int order) {
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = open_page;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old);
  volatile char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) bench_die("mmap");
  double total = 0;
  for (int r = 0; r < rounds; r++) {
    if (mprotect((void *)p, pages * PAGE, PROT_NONE) != 0) bench_die("mprotect");
    double t0 = bench_now_us();
    for (size_t i = 0; i < pages; i++) (void)p[(order ? scattered(i, pages) : i) * PAGE];
    total += bench_now_us() - t0;
  }
  munmap((void *)p, pages * PAGE);
  sigaction(SIGSEGV, &old, NULL);
  return total / ((double)pages * rounds);
}

/* The uffd floor: each missing page raises SIGBUS (UFFD_FEATURE_SIGBUS)
 * in the faulting thread, whose handler copies a page into place. */
static int floor_uffd = -1;
static char floor_page[PAGE] __attribute__((aligned(PAGE)));

static void copy_page(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)ctx;
  struct uffdio_copy c = {(uintptr_t)info->si_addr & ~(uintptr_t)(PAGE - 1), (uintptr_t)floor_page,
                          PAGE, 0, 0};
  if (ioctl(floor_uffd, UFFDIO_COPY, &c) != 0) abort();
}

/* -1 where userfaultfd cannot run. Each round gives the region back
 * (MADV_DONTNEED, untimed), so every touch is a missing-page fault. */
static double floor_uffd_us(size_t pages, int rounds, int order) {
  if ((floor_uffd = bench_uffd_open(UFFD_FEATURE_SIGBUS)) < 0) return -1;
  volatile char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) bench_die("mmap");
  madvise((void *)p, pages * PAGE, MADV_NOHUGEPAGE);
  struct uffdio_register reg = {{(uintptr_t)p, pages * PAGE}, UFFDIO_REGISTER_MODE_MISSING, 0};
  if (ioctl(floor_uffd, UFFDIO_REGISTER, &reg) != 0) bench_die("UFFDIO_REGISTER");
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = copy_page;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGBUS, &sa, &old);
  double total = 0;
  for (int r = 0; r < rounds; r++) {
    madvise((void *)p, pages * PAGE, MADV_DONTNEED);
    double t0 = bench_now_us();
    for (size_t i = 0; i < pages; i++) (void)p[(order ? scattered(i, pages) : i) * PAGE];
    total += bench_now_us() - t0;
  }
  sigaction(SIGBUS, &old, NULL);
  munmap((void *)p, pages * PAGE);
  close(floor_uffd);
  return total / ((double)pages * rounds);
}

/* A 4 KiB pread at random offsets of the floor file, averaged over n. */
static double floor_pread_us(int fd, size_t pages, size_t n) {
  static unsigned seed = 1;
  double t0 = bench_now_us();
  if (bench_pread_random(fd, pages, n, &seed) != 0) bench_die("pread");
  return (bench_now_us() - t0) / (double)n;
}

/* ---- upager faults --------------------------------------------------------*/
static upg_stats_t stats(void) {
  upg_stats_t s = UPG_STATS_INIT;
  if (upg_stats(&s) != 0) bench_die("upg_stats");
  return s;
}

typedef struct measure {
  double us;
  uint64_t faults;
} measure_t;

#define FAULTS_OF(field) (after.field - before.field)

static void read_pages(volatile char *p, size_t first, size_t end) {
  for (size_t i = first; i < end; i++) (void)p[i * PAGE];
}

static void write_pages(volatile char *p, size_t first, size_t end, char v) {
  for (size_t i = first; i < end; i++) p[i * PAGE] = v;
}

/* Minor faults: a full budget of resident pages, then one more page makes
 * the Clock hand pass over all of them, clearing each reference bit by
 * closing the page; touching the ones still resident is one minor fault
 * each. Which pages stay is the policy's business: upg_page_info says. */
static measure_t minor_faults(volatile char *p, size_t budget, int rounds) {
  measure_t m = {0, 0};
  size_t *closed = malloc(budget * sizeof *closed);
  if (closed == NULL) bench_die("malloc");
  read_pages(p, 0, budget);
  for (int r = 0; r < rounds; r++) {
    read_pages(p, budget + (size_t)r, budget + (size_t)r + 1);
    size_t n = 0;
    for (size_t i = 0; i < budget; i++) {
      upg_page_info_t info;
      if (upg_page_info((char *)p + i * PAGE, &info) == 0 && info.present &&
          info.prot == UPG_PROT_NONE)
        closed[n++] = i;
    }
    upg_stats_t before = stats();
    double t0 = bench_now_us();
    for (size_t i = 0; i < n; i++) (void)p[closed[i] * PAGE];
    m.us += bench_now_us() - t0;
    upg_stats_t after = stats();
    m.faults += FAULTS_OF(fault_minor);
  }
  free(closed);
  return m;
}


/* Timed pass over the region in scattered order, counted in major faults;
 * `order` 0 visits the pages in address order instead (readahead's case). */
static measure_t major_pass(volatile char *p, size_t pages, int write, int order) {
  upg_stats_t before = stats();
  double t0 = bench_now_us();
  for (size_t i = 0; i < pages; i++) {
    size_t page = order ? scattered(i, pages) : i;
    if (write) p[page * PAGE] = 7;
    else (void)p[page * PAGE];
  }
  measure_t m = {bench_now_us() - t0, 0};
  upg_stats_t after = stats();
  m.faults = FAULTS_OF(fault_major);
  return m;
}

/* Random passes of one kind, alternated with the pread floor: each pass is
 * compared with the mean of the floors read right before and right after
 * it, and the pass with the median ratio stands for the kind. */
#define PASSES 5
typedef struct paired {
  measure_t m;
  double floor_us; /* SIGSEGV + mprotect + pread, around this pass */
  double ratio;
} paired_t;

static double per_fault(measure_t m) { return m.us / (double)(m.faults ? m.faults : 1); }

static paired_t median_pass(volatile char *p, size_t pages, int write, int fd, double signal_us,
                            paired_t *all) {
  double before = floor_pread_us(fd, pages, pages / 2);
  for (int i = 0; i < PASSES; i++) {
    all[i].m = major_pass(p, pages, write, 1);
    double after = floor_pread_us(fd, pages, pages / 2);
    all[i].floor_us = signal_us + (before + after) / 2;
    all[i].ratio = per_fault(all[i].m) / all[i].floor_us;
    before = after;
  }
  paired_t sorted[PASSES];
  memcpy(sorted, all, sizeof sorted);
  for (int i = 1; i < PASSES; i++)
    for (int j = i; j > 0 && sorted[j].ratio < sorted[j - 1].ratio; j--) {
      paired_t t = sorted[j];
      sorted[j] = sorted[j - 1];
      sorted[j - 1] = t;
    }
  return sorted[PASSES / 2];
}

static void print_passes(const char *kind, const paired_t *all) {
  printf("  %s, pass by pass:", kind);
  for (int i = 0; i < PASSES; i++) printf(" %.2fx", all[i].ratio);
  printf("\n");
}

/* One source's run: every kind of fault, in one process after the other. */
typedef struct results {
  measure_t zero, minor, seq;
  paired_t clean, dirty, clean_all[PASSES], dirty_all[PASSES];
  double seq_floor_us; /* the source's floor plus the pread around the pass */
  double pread_us;
  int direct;
} results_t;

static int measure_source(const char *source, size_t budget, int rounds, double floor_us,
                          double scattered_floor_us, results_t *res) {
  upg_options_t opt = {0};
  opt.budget = budget * PAGE;
  opt.page_size = PAGE;
  opt.fault = source;
  int rc = upg_init(&opt);
  if (rc != 0) {
    fprintf(stderr, "upg_init (%s): %s (%s)\n", source, upg_strerror(rc), upg_last_error());
    return rc;
  }
  size_t pages = 4 * budget;
  volatile char *p = upg_map(pages * PAGE, 0);
  if (p == NULL) bench_die("upg_map");
  res->direct = (int)stats().swap_direct_io;
  int fd = bench_floor_file(pages, res->direct);
  if (fd < 0) bench_die("the pread floor's file");
  if (upg_advise((void *)p, pages * PAGE, UPG_ADV_RANDOM) != 0) bench_die("upg_advise");

  upg_stats_t before = stats();
  double t0 = bench_now_us();
  read_pages(p, 0, budget);
  res->zero = (measure_t){bench_now_us() - t0, 0};
  upg_stats_t after = stats();
  res->zero.faults = FAULTS_OF(fault_zero);

  res->minor = minor_faults(p, budget, rounds);
  write_pages(p, 0, pages, 1); /* every page dirty, most in swap, in order */
  if (upg_advise((void *)p, pages * PAGE, UPG_ADV_NORMAL) != 0) bench_die("upg_advise");
  (void)major_pass(p, pages, 0, 0); /* read back: victims written, pages clean */
  double pread_before = floor_pread_us(fd, pages, pages / 2);
  res->seq = major_pass(p, pages, 0, 0);
  double pread_after = floor_pread_us(fd, pages, pages / 2);
  res->seq.faults = pages;
  res->pread_us = pread_before;
  res->seq_floor_us = floor_us + (pread_before + pread_after) / 2;
  if (upg_advise((void *)p, pages * PAGE, UPG_ADV_RANDOM) != 0) bench_die("upg_advise");
  res->clean = median_pass(p, pages, 0, fd, scattered_floor_us, res->clean_all); /* victims clean */
  res->dirty = median_pass(p, pages, 1, fd, scattered_floor_us,
                           res->dirty_all); /* write-back first */
  close(fd);
  upg_shutdown();
  return 0;
}

static void cell(measure_t m, double floor_us) {
  double us = per_fault(m);
  printf(" %9.2f %6.2fx", us, floor_us > 0 ? us / floor_us : 0);
}

/* A row: the fault kind, then each source's cost and its ratio to the
 * source's own floor. */
static void row(const char *kind, const results_t *res, const int *ran, const double *floor,
                int which) {
  printf("%-34s", kind);
  for (int s = 0; s < 2; s++) {
    if (!ran[s]) {
      printf(" %17s", "-");
      continue;
    }
    const results_t *r = &res[s];
    switch (which) {
      case 0: cell(r->zero, floor[s]); break;
      case 1: cell(r->minor, floor[s]); break;
      case 2: cell(r->clean.m, r->clean.floor_us); break;
      case 3: cell(r->dirty.m, r->dirty.floor_us); break;
      default: cell(r->seq, r->seq_floor_us); break;
    }
  }
  printf("\n");
}

int main(int argc, char **argv) {
  size_t budget = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
  int rounds = argc > 2 ? atoi(argv[2]) : 8;
  if (budget < 16 || (budget & (budget - 1)) != 0 || rounds < 1) {
    fprintf(stderr, "usage: fault_latency [budget_pages (a power of two >= 16) [rounds>=1]]\n");
    return 2;
  }
  static const char *const sources[2] = {"sigsegv", "uffd"};
  double floor[2], scattered_floor[2];
  floor[0] = floor_fault_us(budget, rounds, 0);
  scattered_floor[0] = floor_fault_us(4 * budget, rounds, 1);
  floor[1] = floor_uffd_us(budget, rounds, 0);
  scattered_floor[1] = floor_uffd_us(4 * budget, rounds, 1);
  static results_t res[2];
  int ran[2] = {0, 0};
  for (int s = 0; s < 2; s++)
    if (s == 0 || floor[1] > 0)
      ran[s] = measure_source(sources[s], budget, rounds, floor[s], scattered_floor[s], &res[s]) ==
               0;

  printf("upager fault latency: %zu-page budget, %zu-page region, %d rounds, page %u bytes\n",
         budget, 4 * budget, rounds, PAGE);
  printf(
      "floors: SIGSEGV + mprotect %.2f us in address order, %.2f us in the random passes' order;\n"
      "        uffd SIGBUS + UFFDIO_COPY %.2f us in address order, %.2f us in random order;\n"
      "        pread 4 KiB (%s) read around every major pass (%.2f us before the\n"
      "        sequential one); %d random passes of each kind, the median shown\n\n",
      floor[0], scattered_floor[0], floor[1], scattered_floor[1],
      res[0].direct ? "O_DIRECT, as the swap file" : "page cache, as the swap file",
      res[0].pread_us, PASSES);
  const char *mode = getenv("UPAGER_UFFD_MODE");
  char uffd_name[32];
  snprintf(uffd_name, sizeof uffd_name, "uffd (%s)", mode != NULL ? mode : "sigbus");
  printf("%-34s %17s %17s\n", "", "sigsegv", uffd_name);
  printf("%-34s %9s %7s %9s %7s\n", "fault kind (floor)", "us/fault", "ratio", "us/fault", "ratio");
  row("zero-fill (source floor)", res, ran, floor, 0);
  row("minor (source floor)", res, ran, floor, 1);
  row("major, clean victim (floor+pread)", res, ran, floor, 2);
  row("major, dirty victim (floor+pread)", res, ran, floor, 3);
  row("sequential read/page (floor+pread)", res, ran, floor, 4);
  printf("\n");
  for (int s = 0; s < 2; s++) {
    if (!ran[s]) continue;
    printf("%s:\n", sources[s]);
    print_passes("major, clean victim", res[s].clean_all);
    print_passes("major, dirty victim", res[s].dirty_all);
  }
  return 0;
}
