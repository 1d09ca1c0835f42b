/* mechanism.c: what the kernel charges, per 4 KiB page, for the steps a
 * protection-based pager is made of, on a memfd mapped twice (upager's
 * design) and on anonymous memory filled through /proc/self/mem (the
 * alternative docs/design.md weighs). No upager code runs here: these are
 * the floors under the runtime's own figures.
 *
 *   mechanism [pages]      default 16384; scattered pages of a region 2x that
 *
 * The first three rows grow a fresh region in address order, as a heap
 * grows; the others visit the pages in a scattered order of a region whose
 * program view is fragmented as a pager's is (every other page open), so
 * that the kernel's mapping trees are as large as they are under paging.
 * Then the userfaultfd source's steps (mechanism_uffd.c). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define PAGE 4096u

typedef struct space {
  char *view;  /* the program's view */
  char *alias; /* memfd only: the runtime's always-writable view */
  int memfd;   /* -1: anonymous */
  size_t pages;
} space_t;

static space_t make_space(size_t pages, int memfd_backed) {
  space_t s = {NULL, NULL, -1, pages};
  size_t len = pages * PAGE;
  if (memfd_backed) {
    s.memfd = memfd_create("mechanism", MFD_CLOEXEC);
    if (s.memfd < 0 || ftruncate(s.memfd, (off_t)len) != 0) bench_die("memfd");
    s.view = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s.memfd, 0);
    s.alias = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s.memfd, 0);
  } else {
    s.view = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  if (s.view == MAP_FAILED || s.alias == MAP_FAILED) bench_die("mmap");
  for (size_t p = 1; p < pages; p += 2) /* fragment the view as paging does */
    if (mprotect(s.view + p * PAGE, PAGE, PROT_NONE) != 0) bench_die("mprotect");
  return s;
}

static void drop_space(space_t *s) {
  munmap(s->view, s->pages * PAGE);
  if (s->alias != NULL) munmap(s->alias, s->pages * PAGE);
  if (s->memfd >= 0) close(s->memfd);
}

/* Open (even) pages of the region, in a scattered order. */
static size_t open_page(size_t i, size_t pages) {
  return ((i * 0x9E3779B1u) % (pages / 2)) * 2; /* a permutation when pages/2 is a power of 2 */
}
static size_t closed_page(size_t i, size_t pages) { return open_page(i, pages) + 1; }

static double first_touch(space_t *s, size_t n) {
  double t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) s->view[open_page(i, s->pages) * PAGE] = 1;
  return (bench_now_us() - t0) / (double)n;
}

/* A fresh, unfragmented region: a heap about to grow into its pages. */
static space_t fresh_space(size_t n, int memfd_backed) {
  space_t s = {NULL, NULL, -1, n};
  if (memfd_backed) {
    s.memfd = memfd_create("mechanism", MFD_CLOEXEC);
    if (s.memfd < 0 || ftruncate(s.memfd, (off_t)(n * PAGE)) != 0) bench_die("memfd");
    s.view = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, s.memfd, 0);
  } else {
    s.view = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  if (s.view == MAP_FAILED) bench_die("mmap");
  return s;
}

#define POPULATE_PAGES 32 /* as the runtime's prefetch thread does */

typedef struct heap_costs {
  double touch;    /* first touches in address order, a fault each */
  double populate; /* MADV_POPULATE_WRITE, 32 pages a call */
  double exit;     /* unmapping and closing the filled region, as at exit */
} heap_costs_t;

static heap_costs_t heap_in_order(size_t n, int memfd_backed) {
  heap_costs_t c;
  space_t s = fresh_space(n, memfd_backed);
  double t0 = bench_now_us();
  for (size_t p = 0; p < n; p++) s.view[p * PAGE] = 1;
  double t1 = bench_now_us();
  drop_space(&s);
  double t2 = bench_now_us();
  c.touch = (t1 - t0) / (double)n;
  c.exit = (t2 - t1) / (double)n;
  s = fresh_space(n, memfd_backed);
  t0 = bench_now_us();
  for (size_t p = 0; p < n; p += POPULATE_PAGES) {
    size_t len = n - p < POPULATE_PAGES ? n - p : POPULATE_PAGES;
    if (madvise(s.view + p * PAGE, len * PAGE, MADV_POPULATE_WRITE) != 0) bench_die("populate");
  }
  c.populate = (bench_now_us() - t0) / (double)n;
  drop_space(&s);
  return c;
}

/* Frees the pages first_touch filled: a hole for the memfd, MADV_DONTNEED
 * for anonymous memory. */
static double release(space_t *s, size_t n) {
  double t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    size_t p = open_page(i, s->pages);
    int rc = s->memfd >= 0 ? fallocate(s->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                       (off_t)(p * PAGE), PAGE)
                           : madvise(s->view + p * PAGE, PAGE, MADV_DONTNEED);
    if (rc != 0) bench_die("release");
  }
  return (bench_now_us() - t0) / (double)n;
}

/* Fills closed pages without opening them: through the alias for the
 * memfd, through /proc/self/mem (which may write a PROT_NONE private page)
 * for anonymous memory. */
static double fill_closed(space_t *s, int mem, size_t n) {
  static char buf[PAGE] __attribute__((aligned(PAGE)));
  memset(buf, 7, sizeof buf);
  double t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    size_t p = closed_page(i, s->pages);
    if (s->memfd >= 0) memcpy(s->alias + p * PAGE, buf, PAGE);
    else if (pwrite(mem, buf, PAGE, (off_t)(uintptr_t)(s->view + p * PAGE)) != PAGE)
      bench_die("pwrite /proc/self/mem");
  }
  return (bench_now_us() - t0) / (double)n;
}

/* Opens and closes again closed pages: the split and the merge of a
 * mapping that a load and an eviction each cost. */
static double open_close(space_t *s, size_t n) {
  double t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    char *page = s->view + closed_page(i, s->pages) * PAGE;
    if (mprotect(page, PAGE, PROT_READ) != 0 || mprotect(page, PAGE, PROT_NONE) != 0)
      bench_die("mprotect");
  }
  return (bench_now_us() - t0) / (double)n;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 16384;
  if (n < 16) {
    fprintf(stderr, "usage: mechanism [pages >= 16]\n");
    return 2;
  }
  int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (mem < 0) bench_die("/proc/self/mem");
  size_t pages = 2 * n; /* its n closed pages make 2n mappings, under the limit */
  printf("mechanism: %zu scattered pages of a %zu-page region, every other page closed, "
         "us a page\n\n",
         n, pages);
  printf("%-44s %12s %12s\n", "step", "memfd x2", "anonymous");
  double us[2][7];
  for (int anon = 0; anon < 2; anon++) { /* one at a time: each fills half the map limit */
    heap_costs_t heap = heap_in_order(n, !anon);
    us[anon][0] = heap.touch;
    us[anon][1] = heap.populate;
    us[anon][2] = heap.exit;
    space_t s = make_space(pages, !anon);
    us[anon][3] = first_touch(&s, n);
    us[anon][4] = release(&s, n);
    us[anon][5] = fill_closed(&s, mem, n);
    us[anon][6] = open_close(&s, n);
    drop_space(&s);
  }
  static const char *steps[7] = {"first touch, in address order (a heap)",
                                 "the same pages populated, 32 a call",
                                 "given back at exit (munmap, close)",
                                 "first touch, scattered",
                                 "free a page (hole punched / MADV_DONTNEED)",
                                 "fill a closed page (alias / /proc/self/mem)",
                                 "open and close a page (two mprotects)"};
  for (int i = 0; i < 7; i++) printf("%-44s %12.2f %12.2f\n", steps[i], us[0][i], us[1][i]);
  close(mem);
  mechanism_uffd(n);
  return 0;
}
