/* floor_file.c: the file the benchmarks' pread floors read (floor_file.h). */
#define _GNU_SOURCE
#include "floor_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u

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
