/* store_file.c: the swap file store. The file is private to the process
 * from its first instant: O_TMPFILE where the filesystem has it (never
 * named), else a 0600 file unlinked right after creation. Its I/O calls are
 * plain pread/pwrite, safe in the fault handler. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

typedef struct file_store {
  upg__store_t base;
  int fd;
} file_store_t;

static int file_fd(upg__store_t *s) { return ((file_store_t *)s)->fd; }

static int file_read(upg__store_t *s, uint64_t offset, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = pread(file_fd(s), p, len, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EIO; /* a slot past the end was never written */
    p += n, offset += (uint64_t)n, len -= (size_t)n;
  }
  return 0;
}

static int file_write(upg__store_t *s, uint64_t offset, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = pwrite(file_fd(s), p, len, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -ENOSPC;
    p += n, offset += (uint64_t)n, len -= (size_t)n;
  }
  return 0;
}

static int file_discard(upg__store_t *s, uint64_t offset, size_t len) {
  return upg__os_punch_hole(file_fd(s), offset, len);
}

static void file_close(upg__store_t *s) {
  close(file_fd(s));
  upg__os_free(s, sizeof(file_store_t));
}

static const upg__store_methods_t file_methods = {file_read, file_write, file_discard,
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

static int file_open(const char *dir, upg__store_t **out) {
  file_store_t *fs = upg__os_alloc(sizeof *fs);
  if (fs == NULL) return -ENOMEM;
  fs->fd = create_private_file(dir);
  if (fs->fd < 0) {
    int err = -errno;
    upg__os_free(fs, sizeof *fs);
    return err;
  }
  fs->base.methods = &file_methods;
  *out = &fs->base;
  return 0;
}

const upg__store_class_t upg__store_file = {"file", file_open};
const upg__store_class_t *upg__store_class = &upg__store_file;
