/* io.c: system-call wrappers: each pins the buffers the kernel will touch
 * (pin.c), calls the real function and applies the EFAULT safety net.
 *
 * A transfer larger than the pin limit moves in pieces: a read returns
 * after the first piece (a short read, which every reader must accept),
 * a write carries on piece by piece as long as each one goes out whole.
 * Vectors and messages are pinned whole when they fit, else moved one
 * buffer at a time. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload_api.h"
#include "preload.h"

#define MAX_PINNED_IOV 64

extern _Noreturn void __chk_fail(void);

/* ---- reads: the kernel writes into the buffer --------------------------*/

UPG__EXPORT ssize_t read(int fd, void *buf, size_t len) {
  upg__pin_t pin;
  size_t piece = upg__pin_begin(&pin, buf, len);
  ssize_t n = UPG__REAL(read)(fd, buf, piece);
  upg__pin_end(&pin);
  upg__efault_check(n, "read", buf);
  return n;
}

UPG__EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen) {
  if (len > buflen) __chk_fail();
  return read(fd, buf, len);
}

UPG__EXPORT ssize_t pread64(int fd, void *buf, size_t len, off_t offset) {
  upg__pin_t pin;
  size_t piece = upg__pin_begin(&pin, buf, len);
  ssize_t n = UPG__REAL(pread64)(fd, buf, piece, offset);
  upg__pin_end(&pin);
  upg__efault_check(n, "pread", buf);
  return n;
}

UPG__EXPORT ssize_t pread(int fd, void *buf, size_t len, off_t offset) {
  return pread64(fd, buf, len, offset);
}

UPG__EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t len, off_t offset, size_t buflen) {
  if (len > buflen) __chk_fail();
  return pread64(fd, buf, len, offset);
}

UPG__EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags) {
  upg__pin_t pin;
  size_t piece = upg__pin_begin(&pin, buf, len);
  ssize_t n = UPG__REAL(recv)(fd, buf, piece, flags);
  upg__pin_end(&pin);
  upg__efault_check(n, "recv", buf);
  return n;
}

UPG__EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                             socklen_t *addrlen) {
  upg__pin_t pin, pin_addr, pin_len;
  size_t piece = upg__pin_begin(&pin, buf, len);
  upg__pin_whole(&pin_len, addrlen, sizeof *addrlen);
  upg__pin_whole(&pin_addr, addr, addr != NULL && addrlen != NULL ? *addrlen : 0);
  ssize_t n = UPG__REAL(recvfrom)(fd, buf, piece, flags, addr, addrlen);
  upg__pin_end(&pin_addr);
  upg__pin_end(&pin_len);
  upg__pin_end(&pin);
  upg__efault_check(n, "recvfrom", buf);
  return n;
}

UPG__EXPORT ssize_t getdents64(int fd, void *buf, size_t len) {
  upg__pin_t pin;
  upg__pin_whole(&pin, buf, len); /* an entry cannot be split */
  ssize_t n = UPG__REAL(getdents64)(fd, buf, len);
  upg__pin_end(&pin);
  upg__efault_check(n, "getdents64", buf);
  return n;
}

UPG__EXPORT ssize_t getrandom(void *buf, size_t len, unsigned flags) {
  upg__pin_t pin;
  size_t piece = upg__pin_begin(&pin, buf, len);
  ssize_t n = UPG__REAL(getrandom)(buf, piece, flags);
  upg__pin_end(&pin);
  upg__efault_check(n, "getrandom", buf);
  return n;
}

UPG__EXPORT int getentropy(void *buf, size_t len) {
  if (len > 256) {
    errno = EIO;
    return -1;
  }
  for (size_t done = 0; done < len;) {
    ssize_t n = getrandom((char *)buf + done, len - done, 0);
    if (n < 0 && errno != EINTR) return -1;
    if (n > 0) done += (size_t)n;
  }
  return 0;
}

/* ---- writes: the kernel reads the buffer -------------------------------*/

/* One piece of a write-like call at `offset` bytes into the transfer. */
typedef ssize_t (*write_piece_fn)(const void *ctx, const char *buf, size_t len, size_t offset);

static ssize_t write_in_pieces(const void *ctx, write_piece_fn op, const char *call,
                               const void *buf, size_t len) {
  size_t done = 0;
  do {
    upg__pin_t pin;
    size_t piece = upg__pin_begin(&pin, (const char *)buf + done, len - done);
    ssize_t n = op(ctx, (const char *)buf + done, piece, done);
    upg__pin_end(&pin);
    upg__efault_check(n, call, buf);
    if (n < 0) return done > 0 ? (ssize_t)done : n;
    done += (size_t)n;
    if ((size_t)n < piece) break;
  } while (done < len);
  return (ssize_t)done;
}

typedef struct write_args {
  int fd;
  int flags;
  off_t offset;
  const struct sockaddr *addr;
  socklen_t addrlen;
} write_args_t;

static ssize_t write_piece(const void *ctx, const char *buf, size_t len, size_t offset) {
  (void)offset;
  return UPG__REAL(write)(((const write_args_t *)ctx)->fd, buf, len);
}

static ssize_t pwrite_piece(const void *ctx, const char *buf, size_t len, size_t offset) {
  const write_args_t *a = ctx;
  return UPG__REAL(pwrite64)(a->fd, buf, len, a->offset + (off_t)offset);
}

static ssize_t send_piece(const void *ctx, const char *buf, size_t len, size_t offset) {
  const write_args_t *a = ctx;
  (void)offset;
  return UPG__REAL(sendto)(a->fd, buf, len, a->flags, a->addr, a->addrlen);
}

UPG__EXPORT ssize_t write(int fd, const void *buf, size_t len) {
  if (!upg__heap_contains(buf)) return UPG__REAL(write)(fd, buf, len);
  write_args_t a = {.fd = fd};
  return write_in_pieces(&a, write_piece, "write", buf, len);
}

UPG__EXPORT ssize_t pwrite64(int fd, const void *buf, size_t len, off_t offset) {
  if (!upg__heap_contains(buf)) return UPG__REAL(pwrite64)(fd, buf, len, offset);
  write_args_t a = {.fd = fd, .offset = offset};
  return write_in_pieces(&a, pwrite_piece, "pwrite", buf, len);
}

UPG__EXPORT ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset) {
  return pwrite64(fd, buf, len, offset);
}

UPG__EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                           const struct sockaddr *addr, socklen_t addrlen) {
  upg__pin_t pin_addr;
  upg__pin_whole(&pin_addr, addr, addr != NULL ? addrlen : 0);
  write_args_t a = {.fd = fd, .flags = flags, .addr = addr, .addrlen = addrlen};
  ssize_t n = write_in_pieces(&a, send_piece, "sendto", buf, len);
  upg__pin_end(&pin_addr);
  return n;
}

UPG__EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags) {
  return sendto(fd, buf, len, flags, NULL, 0);
}

/* ---- vectors and messages ----------------------------------------------*/

typedef struct vector_pins {
  upg__pin_t pins[MAX_PINNED_IOV];
  int count;
} vector_pins_t;

static void unpin_vector(vector_pins_t *v) {
  while (v->count > 0) upg__pin_end(&v->pins[--v->count]);
}

/* Pins every buffer whole, or none (0) when they are too many or too big. */
static int pin_vector(vector_pins_t *v, const struct iovec *iov, int count) {
  v->count = 0;
  size_t total = 0;
  for (int i = 0; i < count; i++)
    if (upg__heap_contains(iov[i].iov_base)) total += iov[i].iov_len;
  if (total == 0) return 1;
  if (count > MAX_PINNED_IOV) return 0;
  for (int i = 0; i < count; i++) {
    size_t len = iov[i].iov_len;
    if (upg__pin_begin(&v->pins[v->count++], iov[i].iov_base, len) < len) {
      unpin_vector(v);
      return 0;
    }
  }
  return 1;
}

typedef ssize_t (*one_buffer_fn)(int fd, void *buf, size_t len, off_t offset);

static ssize_t read_one(int fd, void *buf, size_t len, off_t offset) {
  return offset < 0 ? read(fd, buf, len) : pread64(fd, buf, len, offset);
}

static ssize_t write_one(int fd, void *buf, size_t len, off_t offset) {
  return offset < 0 ? write(fd, buf, len) : pwrite64(fd, buf, len, offset);
}

/* A vector whose buffers cannot be pinned together, one buffer at a time. */
static ssize_t vector_by_buffer(int fd, const struct iovec *iov, int count, off_t offset,
                                one_buffer_fn op) {
  size_t done = 0;
  for (int i = 0; i < count; i++) {
    ssize_t n = op(fd, iov[i].iov_base, iov[i].iov_len, offset < 0 ? -1 : offset + (off_t)done);
    if (n < 0) return done > 0 ? (ssize_t)done : n;
    done += (size_t)n;
    if ((size_t)n < iov[i].iov_len) break;
  }
  return (ssize_t)done;
}

/* Copies the iovec array itself out of paged memory. */
static const struct iovec *stable_iov(const struct iovec *iov, int count, struct iovec *copy) {
  if (!upg__heap_contains(iov) || count > MAX_PINNED_IOV) return iov;
  memcpy(copy, iov, (size_t)count * sizeof *iov);
  return copy;
}

#define VECTOR_CALL(real_call, name, op, offset)                                          \
  do {                                                                                    \
    struct iovec copy[MAX_PINNED_IOV];                                                    \
    vector_pins_t v;                                                                      \
    if (count < 0) return UPG__REAL(name) real_call;                                      \
    iov = stable_iov(iov, count, copy);                                                   \
    if (!pin_vector(&v, iov, count)) return vector_by_buffer(fd, iov, count, offset, op); \
    ssize_t n = UPG__REAL(name) real_call;                                                \
    unpin_vector(&v);                                                                     \
    upg__efault_check(n, #name, NULL);                                                    \
    return n;                                                                             \
  } while (0)

UPG__EXPORT ssize_t readv(int fd, const struct iovec *iov, int count) {
  VECTOR_CALL((fd, iov, count), readv, read_one, -1);
}

UPG__EXPORT ssize_t writev(int fd, const struct iovec *iov, int count) {
  VECTOR_CALL((fd, iov, count), writev, write_one, -1);
}

UPG__EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int count, off_t offset) {
  VECTOR_CALL((fd, iov, count, offset), preadv64, read_one, offset);
}

UPG__EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t offset) {
  VECTOR_CALL((fd, iov, count, offset), pwritev64, write_one, offset);
}

UPG__EXPORT ssize_t preadv(int fd, const struct iovec *iov, int count, off_t offset) {
  return preadv64(fd, iov, count, offset);
}

UPG__EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset) {
  return pwritev64(fd, iov, count, offset);
}

/* A message goes whole or not at all, so its parts are pinned whole. */
#define MESSAGE_CALL(name, msg_type)                                                               \
  do {                                                                                             \
    struct iovec copy[MAX_PINNED_IOV];                                                             \
    msg_type local = *msg;                                                                         \
    vector_pins_t v;                                                                               \
    upg__pin_t pin_name, pin_control;                                                              \
    local.msg_iov = (struct iovec *)stable_iov(msg->msg_iov, (int)msg->msg_iovlen, copy);          \
    if (!pin_vector(&v, local.msg_iov, (int)local.msg_iovlen))                                     \
      upg__fatal(#name "'s buffers are larger than the pin limit; raise UPAGER_BUDGET",            \
                 UPG_EPINLIMIT);                                                                   \
    upg__pin_whole(&pin_name, local.msg_name, local.msg_name ? local.msg_namelen : 0);             \
    upg__pin_whole(&pin_control, local.msg_control, local.msg_control ? local.msg_controllen : 0); \
    ssize_t n = UPG__REAL(name)(fd, &local, flags);                                                \
    upg__pin_end(&pin_control);                                                                    \
    upg__pin_end(&pin_name);                                                                       \
    unpin_vector(&v);                                                                              \
    upg__efault_check(n, #name, NULL);                                                             \
    MESSAGE_RESULT;                                                                                \
    return n;                                                                                      \
  } while (0)

UPG__EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
#define MESSAGE_RESULT                        \
  msg->msg_namelen = local.msg_namelen;       \
  msg->msg_controllen = local.msg_controllen; \
  msg->msg_flags = local.msg_flags
  MESSAGE_CALL(recvmsg, struct msghdr);
#undef MESSAGE_RESULT
}

UPG__EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
#define MESSAGE_RESULT (void)0
  MESSAGE_CALL(sendmsg, struct msghdr);
#undef MESSAGE_RESULT
}

/* ---- paths and stat -----------------------------------------------------*/

static int mode_wanted(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

UPG__EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  mode_t mode = 0;
  if (mode_wanted(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  upg__pin_t pin;
  upg__pin_string(&pin, path);
  int fd = UPG__REAL(openat64)(dirfd, path, flags, mode);
  upg__pin_end(&pin);
  upg__efault_check(fd, "open", path);
  return fd;
}

#define OPEN_ALIAS(name, call)                             \
  UPG__EXPORT int name(const char *path, int flags, ...) { \
    mode_t mode = 0;                                       \
    if (mode_wanted(flags)) {                              \
      va_list ap;                                          \
      va_start(ap, flags);                                 \
      mode = va_arg(ap, mode_t);                           \
      va_end(ap);                                          \
    }                                                      \
    return call;                                           \
  }
OPEN_ALIAS(open, openat64(AT_FDCWD, path, flags, mode))
OPEN_ALIAS(open64, openat64(AT_FDCWD, path, flags, mode))
#undef OPEN_ALIAS

UPG__EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_wanted(flags) ? va_arg(ap, mode_t) : 0;
  va_end(ap);
  return openat64(dirfd, path, flags, mode);
}

UPG__EXPORT int __open_2(const char *path, int flags) { return openat64(AT_FDCWD, path, flags); }
UPG__EXPORT int __open64_2(const char *path, int flags) { return openat64(AT_FDCWD, path, flags); }

UPG__EXPORT int creat(const char *path, mode_t mode) {
  return openat64(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* A call taking one path (and maybe a result buffer of a fixed size). */
#define PATH_CALL(ret, name, real_name, params, args, path, out, out_len) \
  UPG__EXPORT ret name params {                                           \
    upg__pin_t pin_path, pin_out;                                         \
    upg__pin_string(&pin_path, path);                                     \
    upg__pin_whole(&pin_out, out, out_len);                               \
    ret rc = UPG__REAL(real_name) args;                                   \
    upg__pin_end(&pin_out);                                               \
    upg__pin_end(&pin_path);                                              \
    upg__efault_check((long)rc, #name, NULL);                             \
    return rc;                                                            \
  }

PATH_CALL(int, stat, stat64, (const char *p, struct stat *st), (p, st), p, st, sizeof *st)
PATH_CALL(int, stat64, stat64, (const char *p, struct stat64 *st), (p, (struct stat *)st), p, st,
          sizeof *st)
PATH_CALL(int, lstat, lstat64, (const char *p, struct stat *st), (p, st), p, st, sizeof *st)
PATH_CALL(int, lstat64, lstat64, (const char *p, struct stat64 *st), (p, (struct stat *)st), p, st,
          sizeof *st)
PATH_CALL(int, fstatat, fstatat64, (int d, const char *p, struct stat *st, int f), (d, p, st, f), p,
          st, sizeof *st)
PATH_CALL(int, fstatat64, fstatat64, (int d, const char *p, struct stat64 *st, int f),
          (d, p, (struct stat *)st, f), p, st, sizeof *st)
PATH_CALL(int, fstat, fstat64, (int fd, struct stat *st), (fd, st), NULL, st, sizeof *st)
PATH_CALL(int, fstat64, fstat64, (int fd, struct stat64 *st), (fd, (struct stat *)st), NULL, st,
          sizeof *st)
PATH_CALL(int, access, access, (const char *p, int m), (p, m), p, NULL, 0)
PATH_CALL(int, unlink, unlink, (const char *p), (p), p, NULL, 0)
PATH_CALL(int, mkdir, mkdir, (const char *p, mode_t m), (p, m), p, NULL, 0)
PATH_CALL(int, rmdir, rmdir, (const char *p), (p), p, NULL, 0)
PATH_CALL(int, chdir, chdir, (const char *p), (p), p, NULL, 0)
PATH_CALL(ssize_t, readlink, readlink, (const char *p, char *buf, size_t n), (p, buf, n), p, buf, n)
PATH_CALL(DIR *, opendir, opendir, (const char *p), (p), p, NULL, 0)
PATH_CALL(char *, getcwd, getcwd, (char *buf, size_t n), (buf, n), NULL, buf, buf ? n : 0)
#undef PATH_CALL

UPG__EXPORT int rename(const char *from, const char *to) {
  upg__pin_t pin_from, pin_to;
  upg__pin_string(&pin_from, from);
  upg__pin_string(&pin_to, to);
  int rc = UPG__REAL(rename)(from, to);
  upg__pin_end(&pin_to);
  upg__pin_end(&pin_from);
  upg__efault_check(rc, "rename", NULL);
  return rc;
}

/* opendir() mallocs the DIR with its entry buffer inline, and readdir
 * refills that buffer with an internal getdents64: pin the whole block. */
UPG__EXPORT struct dirent64 *readdir64(DIR *dir) {
  upg__pin_t pin;
  int saved = errno;
  upg__pin_whole(&pin, dir, upg__heap_contains(dir) ? malloc_usable_size(dir) : 0);
  errno = 0;
  struct dirent64 *entry = UPG__REAL(readdir64)(dir);
  upg__pin_end(&pin);
  if (entry == NULL) upg__efault_check(-1, "readdir", dir);
  if (errno == 0) errno = saved;
  return entry;
}

UPG__EXPORT struct dirent *readdir(DIR *dir) { return (struct dirent *)readdir64(dir); }

/* ---- syscall(): arguments of unknown meaning ----------------------------
 * Nothing can be pinned, but a failure with EFAULT while an argument points
 * into paged memory is caught by the net. */
UPG__EXPORT long syscall(long number, ...) {
  va_list ap;
  long a[6];
  va_start(ap, number);
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  long rc = UPG__REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (rc == -1 && errno == EFAULT)
    for (int i = 0; i < 6; i++)
      if (upg__heap_contains((const void *)a[i])) upg__efault_fatal("syscall", (void *)a[i]);
  return rc;
}
