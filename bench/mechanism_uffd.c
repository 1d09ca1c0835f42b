/* mechanism_uffd.c: what the kernel charges, per 4 KiB page, for the steps
 * of a userfaultfd pager (lib/view_uffd.c), and for the ways of keeping
 * Clock's reference bit that docs/design.md weighs: the page moved out to
 * a closet and back (UFFDIO_MOVE, the runtime's), copied aside and
 * dropped, or only write-protected (which sees writes, not reads). No
 * upager code runs here; pages are visited in a scattered order. Skipped,
 * with a line saying so, where userfaultfd cannot run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/uffd_abi.h"
#include "bench.h"

#define PAGE 4096u
#define BATCH 256 /* pages a process_madvise call gives back */

static int uffd = -1;

static char *registered(size_t pages) {
  char *p = bench_uffd_region(uffd, pages * PAGE,
                              UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
  if (p == NULL) bench_die("UFFDIO_REGISTER");
  return p;
}

static char *plain(size_t pages) {
  char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) bench_die("mmap");
  madvise(p, pages * PAGE, MADV_NOHUGEPAGE);
  return p;
}

static size_t at(size_t i, size_t n) { return ((i * 0x9E3779B1u) % n) * PAGE; }

static void copy(char *dst, const char *src, int wp) {
  struct uffdio_copy c = {(uintptr_t)dst, (uintptr_t)src, PAGE, wp ? UFFDIO_COPY_MODE_WP : 0, 0};
  if (ioctl(uffd, UFFDIO_COPY, &c) != 0) bench_die("UFFDIO_COPY");
}

static void move(char *dst, char *src) {
  struct uffdio_move m = {(uintptr_t)dst, (uintptr_t)src, PAGE, 0, 0};
  if (ioctl(uffd, UFFDIO_MOVE, &m) != 0) bench_die("UFFDIO_MOVE");
}

static void protect(char *p, int on) {
  struct uffdio_writeprotect w = {{(uintptr_t)p, PAGE}, on ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
  if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) != 0) bench_die("UFFDIO_WRITEPROTECT");
}

static void populate(char *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i * PAGE] = 1;
}

static void dontneed(char *p) {
  if (madvise(p, PAGE, MADV_DONTNEED) != 0) bench_die("madvise");
}

enum {
  PLACE_COPY,
  PLACE_MOVE,
  LOAD_FRAME,
  LOAD_STAGED,
  ZERO,
  MOVE_CYCLE,
  MOVE_COPY_CYCLE,
  ASIDE_CYCLE,
  WP_CYCLE,
  FREE_ONE,
  FREE_BATCH,
  STEPS
};

static const char *const names[STEPS] = {
    "place a read page: UFFDIO_COPY, write-protected",
    "place a read page: UFFDIO_MOVE from the frame",
    "load: written into its frame's page, moved",
    "load: written into a staging page, copied",
    "place a fresh page: UFFDIO_ZEROPAGE",
    "ref bit, moved out and back (written page)",
    "ref bit, moved out, copied back protected",
    "ref bit, protect+copy aside+drop, copy back",
    "ref bit, write-protect on and off (writes only)",
    "free a page: one madvise",
    "free a page: process_madvise, 256 a call",
};

/* A whole load, the contents written in as a read does and then placed:
 * through a frame's page of the frame area, which its last placement left
 * empty (the write faults a fresh zeroed page in), or through one staging
 * page that stays in memory. `data` holds the contents read. */
static void loads(char *view, char *frames, const char *data, size_t n, double *us) {
  static char staging[PAGE] __attribute__((aligned(PAGE)));
  madvise(frames, n * PAGE, MADV_DONTNEED);
  double t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    memcpy(frames + at(i, n), data + at(i, n), PAGE);
    move(view + at(i, n), frames + at(i, n));
  }
  us[LOAD_FRAME] = (bench_now_us() - t0) / (double)n;
  madvise(view, n * PAGE, MADV_DONTNEED);
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    memcpy(staging, data + at(i, n), PAGE);
    copy(view + at(i, n), staging, 0);
  }
  us[LOAD_STAGED] = (bench_now_us() - t0) / (double)n;
  madvise(view, n * PAGE, MADV_DONTNEED);
}

/* Each step over n scattered pages; us a page. */
static void measure(size_t n, double *us) {
  char *view = registered(n), *closet = registered(n), *frames = plain(n), *aside = plain(n);
  double t0;
  populate(frames, n);
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) copy(view + at(i, n), frames + at(i, n), 1);
  us[PLACE_COPY] = (bench_now_us() - t0) / (double)n;
  madvise(view, n * PAGE, MADV_DONTNEED);
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) move(view + at(i, n), frames + at(i, n));
  us[PLACE_MOVE] = (bench_now_us() - t0) / (double)n;
  madvise(view, n * PAGE, MADV_DONTNEED);
  populate(aside, n);
  loads(view, frames, aside, n, us);
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    struct uffdio_zeropage z = {{(uintptr_t)(view + at(i, n)), PAGE}, 0, 0};
    if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) != 0) bench_die("UFFDIO_ZEROPAGE");
  }
  us[ZERO] = (bench_now_us() - t0) / (double)n;
  madvise(view, n * PAGE, MADV_DONTNEED);
  populate(frames, n);
  for (size_t i = 0; i < n; i++) move(view + at(i, n), frames + at(i, n));
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    move(closet + at(i, n), view + at(i, n));
    move(view + at(i, n), closet + at(i, n));
  }
  us[MOVE_CYCLE] = (bench_now_us() - t0) / (double)n;
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    move(closet + at(i, n), view + at(i, n));
    copy(view + at(i, n), closet + at(i, n), 1);
    dontneed(closet + at(i, n));
  }
  us[MOVE_COPY_CYCLE] = (bench_now_us() - t0) / (double)n;
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    char *page = view + at(i, n);
    protect(page, 1);
    memcpy(aside + at(i, n), page, PAGE);
    dontneed(page);
    copy(page, aside + at(i, n), 1);
  }
  us[ASIDE_CYCLE] = (bench_now_us() - t0) / (double)n;
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) {
    protect(view + at(i, n), 1);
    protect(view + at(i, n), 0);
  }
  us[WP_CYCLE] = (bench_now_us() - t0) / (double)n;
  populate(aside, n);
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i++) dontneed(aside + at(i, n));
  us[FREE_ONE] = (bench_now_us() - t0) / (double)n;
  populate(aside, n);
  int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  struct iovec iov[BATCH];
  t0 = bench_now_us();
  for (size_t i = 0; i < n; i += BATCH) {
    size_t k = n - i < BATCH ? n - i : BATCH;
    for (size_t j = 0; j < k; j++) iov[j] = (struct iovec){aside + at(i + j, n), PAGE};
    if (syscall(SYS_process_madvise, pidfd, iov, k, MADV_DONTNEED, 0) < 0) {
      us[FREE_BATCH] = -1; /* before Linux 6.13 */
      break;
    }
  }
  if (us[FREE_BATCH] == 0) us[FREE_BATCH] = (bench_now_us() - t0) / (double)n;
  close(pidfd);
  munmap(view, n * PAGE);
  munmap(closet, n * PAGE);
  munmap(frames, n * PAGE);
  munmap(aside, n * PAGE);
}

void mechanism_uffd(size_t n) {
  uffd = bench_uffd_open(UFFD_FEATURE_MOVE | UFFD_FEATURE_PAGEFAULT_FLAG_WP);
  if (uffd < 0) {
    printf("\nuserfaultfd: cannot run here (%s): skipped\n", strerror(errno));
    return;
  }
  double us[STEPS] = {0};
  measure(n, us);
  printf("\n%-48s %12s\n", "userfaultfd step (a page)", "anonymous");
  for (int i = 0; i < STEPS; i++) printf("%-48s %12.2f\n", names[i], us[i]);
  close(uffd);
}
