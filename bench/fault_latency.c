/* fault_latency.c: what each kind of fault costs under upager, beside the
 * floor of the mechanism measured in the same run on the same machine.
 *
 * Floors: a bare sigaction handler that mprotects the faulting page back to
 * read-write (the least a protection-based pager can do per fault), and a
 * bare 4 KiB pread at random offsets of a file opened as the swap file is
 * (O_DIRECT when the runtime's swap file is, in the same directory, as
 * large as the region): the least a major fault can add. A virtual disk's
 * latency drifts by tens of percent within a minute, so the pread floor is
 * measured right before and right after each major pass, and the pass is
 * compared with the mean of the two. Then upager's zero-fill, minor, major-clean
 * and major-with-dirty-victim faults, each timed over many faults and
 * divided by the count the runtime's own statistics report for that kind.
 * The per-fault rows advise UPG_ADV_RANDOM so that each fault loads one
 * page, and visit the pages in a scattered order, so that the swap file is
 * read at random offsets as the floor's preads are; the last row is a
 * sequential pass with readahead, per page.
 *
 *   fault_latency [budget_pages [rounds]]      defaults: 1024 8
 *
 * Targets (issue 2): minor <= 1.3x floor, major clean <= 1.3x (floor+pread). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "floor_file.h"
#include "upager.h"

#define PAGE 4096u

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* ---- floors ---------------------------------------------------------------*/
static void open_page(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)ctx;
  void *page = (void *)((uintptr_t)info->si_addr & ~(uintptr_t)(PAGE - 1));
  if (mprotect(page, PAGE, PROT_READ | PROT_WRITE) != 0) abort();
}

/* One SIGSEGV and one mprotect a page, in a populated region. */
static double floor_fault_us(size_t pages, int rounds) {
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = open_page;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old);
  volatile char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  double total = 0;
  for (int r = 0; r < rounds; r++) {
    if (mprotect((void *)p, pages * PAGE, PROT_NONE) != 0) die("mprotect");
    double t0 = now_us();
    for (size_t i = 0; i < pages; i++) (void)p[i * PAGE];
    total += now_us() - t0;
  }
  munmap((void *)p, pages * PAGE);
  sigaction(SIGSEGV, &old, NULL);
  return total / ((double)pages * rounds);
}

/* A 4 KiB pread at random offsets of the floor file, averaged over n. */
static double floor_pread_us(int fd, size_t pages, size_t n) {
  static char buf[PAGE] __attribute__((aligned(PAGE)));
  static unsigned seed = 1;
  double t0 = now_us();
  for (size_t i = 0; i < n; i++)
    if (pread(fd, buf, PAGE, (off_t)(rand_r(&seed) % pages * PAGE)) != PAGE) die("pread");
  return (now_us() - t0) / (double)n;
}

/* ---- upager faults --------------------------------------------------------*/
static upg_stats_t stats(void) {
  upg_stats_t s;
  if (upg_stats(&s) != 0) die("upg_stats");
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
  if (closed == NULL) die("malloc");
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
    double t0 = now_us();
    for (size_t i = 0; i < n; i++) (void)p[closed[i] * PAGE];
    m.us += now_us() - t0;
    upg_stats_t after = stats();
    m.faults += FAULTS_OF(fault_minor);
  }
  free(closed);
  return m;
}

/* Page i of a scattered visit: an odd multiplier permutes a power-of-two
 * count, so slots are read at random offsets, as the floor's preads are. */
static size_t scattered(size_t i, size_t pages) { return (i * 0x9E3779B1u) & (pages - 1); }

/* Timed pass over the region in scattered order, counted in major faults;
 * `order` 0 visits the pages in address order instead (readahead's case). */
static measure_t major_pass(volatile char *p, size_t pages, int write, int order) {
  upg_stats_t before = stats();
  double t0 = now_us();
  for (size_t i = 0; i < pages; i++) {
    size_t page = order ? scattered(i, pages) : i;
    if (write) p[page * PAGE] = 7;
    else (void)p[page * PAGE];
  }
  measure_t m = {now_us() - t0, 0};
  upg_stats_t after = stats();
  m.faults = FAULTS_OF(fault_major);
  return m;
}

static void row(const char *kind, measure_t m, double floor_us, const char *floor_name) {
  double us = m.us / (double)(m.faults ? m.faults : 1);
  printf("%-34s %10llu %9.2f  %-22s %7.2f %6.2fx\n", kind, (unsigned long long)m.faults, us,
         floor_name, floor_us, floor_us > 0 ? us / floor_us : 0);
}

int main(int argc, char **argv) {
  size_t budget = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
  int rounds = argc > 2 ? atoi(argv[2]) : 8;
  if (budget < 16 || (budget & (budget - 1)) != 0 || rounds < 1) {
    fprintf(stderr, "usage: fault_latency [budget_pages (a power of two >= 16) [rounds>=1]]\n");
    return 2;
  }
  double floor_us = floor_fault_us(budget, rounds);

  upg_options_t opt = {0};
  opt.budget = budget * PAGE;
  opt.page_size = PAGE;
  int rc = upg_init(&opt);
  if (rc != 0) {
    fprintf(stderr, "upg_init: %s (%s)\n", upg_strerror(rc), upg_last_error());
    return 1;
  }
  size_t pages = 4 * budget;
  volatile char *p = upg_map(pages * PAGE, 0);
  if (p == NULL) die("upg_map");
  int direct = (int)stats().swap_direct_io;
  int fd = bench_floor_file(pages, direct);
  if (fd < 0) die("the pread floor's file");
  if (upg_advise((void *)p, pages * PAGE, UPG_ADV_RANDOM) != 0) die("upg_advise");

  upg_stats_t before = stats();
  double t0 = now_us();
  read_pages(p, 0, budget);
  measure_t zero = {now_us() - t0, 0};
  upg_stats_t after = stats();
  zero.faults = FAULTS_OF(fault_zero);

  measure_t minor = minor_faults(p, budget, rounds);
  write_pages(p, 0, pages, 1);       /* every page dirty, most in swap, in order */
  if (upg_advise((void *)p, pages * PAGE, UPG_ADV_NORMAL) != 0) die("upg_advise");
  (void)major_pass(p, pages, 0, 0); /* read back: victims written, pages clean */
  double pread_us[4];
  pread_us[0] = floor_pread_us(fd, pages, pages);
  measure_t seq = major_pass(p, pages, 0, 0);
  if (upg_advise((void *)p, pages * PAGE, UPG_ADV_RANDOM) != 0) die("upg_advise");
  pread_us[1] = floor_pread_us(fd, pages, pages);
  measure_t clean = major_pass(p, pages, 0, 1); /* victims clean: no write-back */
  pread_us[2] = floor_pread_us(fd, pages, pages);
  measure_t dirty = major_pass(p, pages, 1, 1); /* victims dirty: write-back first */
  pread_us[3] = floor_pread_us(fd, pages, pages);
  close(fd);
  seq.faults = pages;

  printf("upager fault latency: %zu-page budget, %zu-page region, %d rounds, page %u bytes\n",
         budget, pages, rounds, PAGE);
  printf("floor: SIGSEGV + mprotect %.2f us; pread 4 KiB (%s) %.2f / %.2f / %.2f / %.2f us,\n"
         "       measured before, between and after the three major passes\n\n",
         floor_us, direct ? "O_DIRECT, as the swap file" : "page cache, as the swap file",
         pread_us[0], pread_us[1], pread_us[2], pread_us[3]);
  printf("%-34s %10s %9s  %-22s %7s %7s\n", "fault kind", "faults", "us/fault", "floor",
         "us", "ratio");
  row("zero-fill (first touch)", zero, floor_us, "sigsegv+mprotect");
  row("minor (Clock reference bit)", minor, floor_us, "sigsegv+mprotect");
  row("major, clean victim", clean, floor_us + (pread_us[1] + pread_us[2]) / 2,
      "sigsegv+mprotect+pread");
  row("major, dirty victim (write-back)", dirty, floor_us + (pread_us[2] + pread_us[3]) / 2,
      "sigsegv+mprotect+pread");
  row("sequential read, per page", seq, floor_us + (pread_us[0] + pread_us[1]) / 2,
      "sigsegv+mprotect+pread");
  upg_shutdown();
  return 0;
}
