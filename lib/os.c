/* os.c: Linux implementations of the primitives in os.h. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *upg__os_alloc(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void upg__os_free(void *p, size_t bytes) {
  if (p != NULL) munmap(p, bytes);
}

size_t upg__os_page_size(void) {
  static size_t page;
  if (page == 0) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

uint64_t upg__os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void upg__os_wait(const uint32_t *word, uint32_t expected) {
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void upg__os_wake_all(const uint32_t *word) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int upg__os_punch_hole(int fd, uint64_t offset, uint64_t len) {
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                (off_t)len) != 0)
    return -errno;
  return 0;
}

int upg__os_pwrite_all(int fd, const void *from, size_t len, uint64_t offset) {
  const char *p = from;
  while (len > 0) {
    long k = syscall(SYS_pwrite64, fd, p, len, (off_t)offset);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return k < 0 ? -errno : -EIO;
    p += k;
    len -= (size_t)k;
    offset += (uint64_t)k;
  }
  return 0;
}

int upg__os_prefault_write(void *addr, uint64_t len) {
  return madvise(addr, len, MADV_POPULATE_WRITE) == 0 ? 0 : -errno;
}

size_t upg__os_max_map_count(void) {
  char buf[32];
  size_t count = 65530;
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return count;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 0) {
    size_t parsed = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
      parsed = parsed * 10 + (size_t)(buf[i] - '0');
    if (parsed > 0) count = parsed;
  }
  return count;
}

void upg__os_write_stderr(const char *msg) {
  size_t len = strlen(msg);
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, msg, len);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    msg += n;
    len -= (size_t)n;
  }
}
