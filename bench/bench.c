/* bench.c: what the benchmark programs share (bench.h). */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

double bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

void bench_die(const char *what) {
  perror(what);
  exit(1);
}

int bench_pread_random(int fd, size_t pages, size_t n, unsigned *seed) {
  static _Thread_local char buf[PAGE] __attribute__((aligned(PAGE)));
  for (size_t i = 0; i < n; i++)
    if (pread(fd, buf, PAGE, (off_t)(rand_r(seed) % pages * PAGE)) != PAGE) return -1;
  return 0;
}

int bench_floor_file(size_t pages, int direct) {
  const char *dir = getenv("UPAGER_SWAP_DIR") ? getenv("UPAGER_SWAP_DIR")
                    : getenv("TMPDIR")        ? getenv("TMPDIR")
                                              : "/tmp";
  char path[4096];
  snprintf(path, sizeof path, "%s/upager-bench-XXXXXX", dir);
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  unlink(path);
  static char chunk[64 * PAGE] __attribute__((aligned(PAGE)));
  memset(chunk, 1, sizeof chunk);
  for (size_t done = 0; done < pages;) {
    size_t n = pages - done < 64 ? pages - done : 64;
    if (pwrite(fd, chunk, n * PAGE, (off_t)(done * PAGE)) != (ssize_t)(n * PAGE)) goto fail;
    done += n;
  }
  if (fsync(fd) != 0) goto fail;
  if (direct && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT) != 0) goto fail;
  return fd;
fail:;
  int err = errno;
  close(fd);
  errno = err;
  return -1;
}

int bench_uffd_open(unsigned long long features) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = {UFFD_API, features, 0};
  if (fd < 0 || ioctl(fd, UFFDIO_API, &api) == 0) return fd;
  int err = errno;
  close(fd);
  errno = err;
  return -1;
}

void *bench_uffd_region(int uffd, size_t bytes, unsigned long long mode) {
  char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return NULL;
  madvise(p, bytes, MADV_NOHUGEPAGE);
  struct uffdio_register reg = {{(uintptr_t)p, bytes}, mode, 0};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0) return p;
  int err = errno;
  munmap(p, bytes);
  errno = err;
  return NULL;
}

uint64_t bench_next_random(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static const char vocabulary[16][8] = {"apple", "banana", "cherry", "delta",  "echo", "fox",
                                       "golf",  "hotel",  "india",  "juliet", "kilo", "lima",
                                       "mike",  "nov",    "oscar",  "papa"};

void bench_fill_records(uint64_t *page, size_t index) {
  uint64_t state = index * 0x632BE59BD9B4E019ull + 7;
  uint64_t time = 1700000000000ull + index * 5000;
  for (size_t r = 0; r < BENCH_PAGE_WORDS / 8; r++) {
    uint64_t x = bench_next_random(&state), *rec = page + r * 8;
    rec[0] = index * (BENCH_PAGE_WORDS / 8) + r;          /* id */
    rec[1] = 0x00007f3a10000000ull | ((x & 0xffff) << 4); /* pointer into the heap */
    rec[2] = (x >> 20) & 0x3f;                            /* small counter */
    rec[3] = (x >> 28) % 100000;                          /* price in cents */
    memcpy(&rec[4], vocabulary[(x >> 45) & 15], 8);       /* a word of the vocabulary */
    rec[5] = time += (x >> 49) & 0x3ff;                   /* timestamp, ms */
    rec[6] = rec[1] + 64;                                 /* its neighbour */
    rec[7] = (x >> 59) < 4 ? (x >> 59) : 0;               /* flags, mostly clear */
  }
}
