/* store_file.c: the swap file store. The file is private to the process
 * from its first instant: O_TMPFILE where the filesystem has it (never
 * named), else a 0600 file unlinked right after creation. Direct I/O
 * (O_DIRECT) where the filesystem allows it, so evicted pages leave RAM
 * instead of moving to the page cache; buffered where it refuses (tmpfs).
 * Its I/O calls are plain preadv/pwritev, safe in the fault handler. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

typedef struct file_store {
  upg__store_t base;
  int fd;
} file_store_t;

static int file_fd(upg__store_t *s) { return ((file_store_t *)s)->fd; }

/* Moves the whole of iov, resuming after short transfers. */
static int transfer(upg__store_t *s, uint64_t offset, const struct iovec *iov, int n,
                    int writing) {
  struct iovec rest[UPG__IOV_MAX];
  memcpy(rest, iov, (size_t)n * sizeof *iov);
  struct iovec *v = rest;
  while (n > 0) {
    ssize_t done = writing ? pwritev(file_fd(s), v, n, (off_t)offset)
                           : preadv(file_fd(s), v, n, (off_t)offset);
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return -errno;
    if (done == 0) return writing ? -ENOSPC : -EIO; /* past the end: never written */
    offset += (uint64_t)done;
    while (n > 0 && (size_t)done >= v->iov_len) done -= (ssize_t)v->iov_len, v++, n--;
    if (n > 0) v->iov_base = (char *)v->iov_base + done, v->iov_len -= (size_t)done;
  }
  return 0;
}

static int file_readv(upg__store_t *s, uint64_t offset, const struct iovec *iov, int n) {
  return transfer(s, offset, iov, n, 0);
}

static int file_writev(upg__store_t *s, uint64_t offset, const struct iovec *iov, int n) {
  return transfer(s, offset, iov, n, 1);
}

static int file_discard(upg__store_t *s, uint64_t offset, size_t len) {
  return upg__os_punch_hole(file_fd(s), offset, len);
}

static void file_close(upg__store_t *s) {
  close(file_fd(s));
  upg__os_free(s, sizeof(file_store_t));
}

static const upg__store_methods_t file_methods = {file_readv, file_writev, file_discard,
                                                  file_close};

static int create_private_file(const char *dir) {
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT)) return fd;
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/upager-swap-XXXXXX", dir) >= (int)sizeof path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  fd = mkostemp(path, O_CLOEXEC); /* mode 0600 */
  if (fd >= 0) unlink(path);
  return fd;
}

/* Slots are whole pages at page offsets, from page-aligned frames: all that
 * O_DIRECT asks. A filesystem that refuses it answers EINVAL. */
static int try_direct_io(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
}

static int file_open(const char *dir, int direct_io, upg__store_t **out) {
  file_store_t *fs = upg__os_alloc(sizeof *fs);
  if (fs == NULL) return -ENOMEM;
  fs->fd = create_private_file(dir);
  if (fs->fd < 0) {
    int err = -errno;
    upg__os_free(fs, sizeof *fs);
    return err;
  }
  fs->base.methods = &file_methods;
  fs->base.direct_io = direct_io && try_direct_io(fs->fd);
  *out = &fs->base;
  return 0;
}

const upg__store_class_t upg__store_file = {"file", file_open};
const upg__store_class_t *upg__store_class = &upg__store_file;
