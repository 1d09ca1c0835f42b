/* store_file.c: the swap file store. The file is private to the process
 * from its first instant: O_TMPFILE where the filesystem has it (never
 * named), else a 0600 file unlinked right after creation. Direct I/O
 * (O_DIRECT) where the filesystem allows it, so evicted pages leave RAM
 * instead of moving to the page cache; buffered where it refuses (tmpfs).
 * Its I/O calls are system calls made directly (os.c) and io_uring's,
 * safe in the fault handler. A fault's read can go on in the background through a ring
 * of its own, while the fault does eviction work (pager.c). A batch of
 * writes goes to the device at once through another ring, so that
 * scattered slots are written in parallel rather than one after another,
 * and so that a write to new blocks, which holds the file's inode lock
 * exclusively (ext4), holds it only until it is queued: written with a
 * synchronous pwritev it holds it until the data is on disk, and every
 * fault's read of the swap file waits that long (fault throughput with two
 * threads went from 0.99x to 1.30x of one thread's, bench/fault_scaling). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <liburing.h>
#include <unistd.h>

#include "internal.h"

typedef struct file_store {
  upg__store_t base;
  int fd;
  uint64_t size; /* the file's length, set ahead of the writes */
  int has_ring;
  _Atomic int ring_busy; /* one user at a time; others write serially */
  uint32_t batch;        /* the ring user's count of batches */
  struct io_uring ring;
  int has_read_ring;
  _Atomic int read_busy; /* the one background read's owner is in flight */
  struct io_uring read_ring;
  struct {
    uint64_t offset;
    const struct iovec *iov;
    int n;
  } reading;
} file_store_t;

static int file_fd(upg__store_t *s) { return ((file_store_t *)s)->fd; }

/* Moves the whole of iov, resuming after short transfers. */
static int transfer(upg__store_t *s, uint64_t offset, const struct iovec *iov, int n,
                    int writing) {
  struct iovec rest[UPG__IOV_MAX];
  memcpy(rest, iov, (size_t)n * sizeof *iov);
  struct iovec *v = rest;
  while (n > 0) {
    long done = writing ? upg__os_pwritev(file_fd(s), v, n, offset)
                        : upg__os_preadv(file_fd(s), v, n, offset);
    if (done < 0) return (int)done;
    if (done == 0) return writing ? -ENOSPC : -EIO; /* past the end: never written */
    offset += (uint64_t)done;
    while (n > 0 && (size_t)done >= v->iov_len) done -= (long)v->iov_len, v++, n--;
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

/* ---- submitting to a ring ----------------------------------------------*/
/* Times a submission the kernel refuses for want of memory or room for
 * completions is tried again before the ring is given up. */
#define SUBMIT_TRIES 64

/* Passes the n requests just queued to the kernel; returns how many it
 * took. Requests it did not take stay queued, pointing at buffers the
 * caller is about to reuse, and the kernel would run them at the next
 * submission: they become no-ops, and the caller gives the ring up, never
 * submitting to it again. */
static int submit_all(struct io_uring *ring, struct io_uring_sqe **sqes, int n) {
  int taken = 0;
  for (int tries = 0; taken < n && tries < SUBMIT_TRIES;) {
    int rc = io_uring_submit(ring);
    if (rc > 0) {
      taken += rc;
      continue;
    }
    if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) break;
    tries++;
    upg__os_yield();
  }
  for (int i = taken; i < n; i++) io_uring_prep_nop(sqes[i]);
  return taken;
}

/* ---- the background read ----------------------------------------------*/
static int file_read_begin(upg__store_t *s, uint64_t offset, const struct iovec *iov, int n) {
  file_store_t *fs = (file_store_t *)s;
  if (!fs->has_read_ring || atomic_exchange(&fs->read_busy, 1)) return -EBUSY;
  struct io_uring_sqe *sqe = io_uring_get_sqe(&fs->read_ring); /* one read: always room */
  io_uring_prep_readv(sqe, fs->fd, iov, (unsigned)n, offset);
  fs->reading.offset = offset;
  fs->reading.iov = iov;
  fs->reading.n = n;
  if (submit_all(&fs->read_ring, &sqe, 1) == 1) return 0;
  fs->has_read_ring = 0; /* the caller reads with preadv, now and from now on */
  atomic_store(&fs->read_busy, 0);
  return -EAGAIN;
}

static int file_read_done(upg__store_t *s) {
  struct io_uring_cqe *cqe;
  return io_uring_peek_cqe(&((file_store_t *)s)->read_ring, &cqe) == 0;
}

static size_t iov_bytes(const struct iovec *iov, int n) {
  size_t bytes = 0;
  for (int i = 0; i < n; i++) bytes += iov[i].iov_len;
  return bytes;
}

/* The read must have ended before its pages are used or reused: a wait cut
 * short by a signal is resumed. A short or failed read is redone with
 * preadv, which resumes short reads and says what went wrong. */
static int file_read_end(upg__store_t *s) {
  file_store_t *fs = (file_store_t *)s;
  struct io_uring_cqe *cqe;
  int rc;
  while ((rc = io_uring_wait_cqe(&fs->read_ring, &cqe)) == -EINTR || rc == -EAGAIN) continue;
  if (rc != 0) upg__fatal("cannot wait for a swap read in flight", rc);
  int whole = cqe->res >= 0 && (size_t)cqe->res == iov_bytes(fs->reading.iov, fs->reading.n);
  io_uring_cqe_seen(&fs->read_ring, cqe);
  rc = whole ? 0 : transfer(s, fs->reading.offset, fs->reading.iov, fs->reading.n, 0);
  atomic_store(&fs->read_busy, 0);
  return rc;
}

/* ---- writes -------------------------------------------------------------*/
/* A run's request carries its batch's number and its index: a completion
 * is matched to the request it belongs to, never to another batch's. */
#define RUN_TAG(batch, i) (((uint64_t)(batch) << 32) | (uint32_t)(i))
#define RUN_PENDING 1 /* a run's rc while the ring has it, or must redo it */

/* Waits until the ring has reported every one of `inflight` writes; a wait
 * cut short by a signal or a stop is resumed, since the caller frees the
 * pages once this returns. */
static void reap_writes(file_store_t *fs, upg__io_run_t *runs, int n, int inflight) {
  while (inflight > 0) {
    struct io_uring_cqe *cqe;
    int rc = io_uring_wait_cqe_nr(&fs->ring, &cqe, (unsigned)inflight);
    if (rc == -EINTR || rc == -EAGAIN) continue;
    if (rc != 0) upg__fatal("cannot wait for swap writes in flight", rc);
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&fs->ring, head, cqe) {
      uint64_t tag = io_uring_cqe_get_data64(cqe);
      uint32_t i = (uint32_t)tag;
      seen++;
      if (tag >> 32 != fs->batch || i >= (uint32_t)n) continue;
      upg__io_run_t *run = &runs[i];
      size_t want = (size_t)run->iovcnt * run->iov[0].iov_len;
      run->rc = cqe->res >= 0 && (size_t)cqe->res == want ? 0 : RUN_PENDING;
      inflight--;
    }
    io_uring_cq_advance(&fs->ring, seen);
  }
}

/* Queues every run, submits, and reaps every completion; a run the ring
 * moved only partly, failed or never took is redone with pwritev, which
 * resumes short writes and says what went wrong. */
static void ring_write_runs(file_store_t *fs, upg__io_run_t *runs, int n) {
  struct io_uring_sqe *sqes[UPG__IOV_MAX];
  int queued = 0;
  fs->batch++;
  for (int i = 0; i < n; i++) runs[i].rc = RUN_PENDING;
  while (queued < n && (sqes[queued] = io_uring_get_sqe(&fs->ring)) != NULL) {
    upg__io_run_t *run = &runs[queued];
    io_uring_prep_writev(sqes[queued], fs->fd, run->iov, (unsigned)run->iovcnt, run->offset);
    io_uring_sqe_set_data64(sqes[queued], RUN_TAG(fs->batch, queued));
    queued++;
  }
  int taken = submit_all(&fs->ring, sqes, queued);
  if (taken < queued) fs->has_ring = 0;
  reap_writes(fs, runs, n, taken);
  for (int i = 0; i < n; i++)
    if (runs[i].rc == RUN_PENDING)
      runs[i].rc = transfer(&fs->base, runs[i].offset, runs[i].iov, runs[i].iovcnt, 1);
}

static void file_write_runs(upg__store_t *s, upg__io_run_t *runs, int n) {
  file_store_t *fs = (file_store_t *)s;
  if (fs->has_ring && !atomic_exchange(&fs->ring_busy, 1)) {
    ring_write_runs(fs, runs, n);
    atomic_store(&fs->ring_busy, 0);
    return;
  }
  for (int i = 0; i < n; i++) runs[i].rc = transfer(s, runs[i].offset, runs[i].iov, runs[i].iovcnt, 1);
}

/* Writes past the end of the file extend it, and an extending O_DIRECT
 * write holds the inode lock exclusively until it completes, stalling every
 * fault's read. So the length runs ahead of the writes, doubling: a sparse
 * file, whose unwritten part costs no disk. */
#define MIN_RESERVE ((uint64_t)64 << 20)

static void file_reserve(upg__store_t *s, uint64_t bytes) {
  file_store_t *fs = (file_store_t *)s;
  if (bytes <= fs->size) return;
  uint64_t size = fs->size * 2 > bytes ? fs->size * 2 : bytes;
  if (size < MIN_RESERVE) size = MIN_RESERVE;
  if (upg__os_truncate(fs->fd, size) == 0) fs->size = size;
}

static int file_discard(upg__store_t *s, uint64_t offset, size_t len) {
  return upg__os_punch_hole(file_fd(s), offset, len);
}

static void file_close(upg__store_t *s) {
  file_store_t *fs = (file_store_t *)s;
  if (fs->has_ring) io_uring_queue_exit(&fs->ring);
  if (fs->has_read_ring) io_uring_queue_exit(&fs->read_ring);
  upg__os_close(file_fd(s));
  upg__os_free(s, sizeof(file_store_t));
}

static const upg__store_methods_t file_methods = {
    .readv = file_readv,
    .writev = file_writev,
    .read_begin = file_read_begin,
    .read_done = file_read_done,
    .read_end = file_read_end,
    .write_runs = file_write_runs,
    .reserve = file_reserve,
    .discard = file_discard,
    .close = file_close,
};

/* Names tried before a directory full of them is taken for an error. */
#define NAME_TRIES 16

/* A new 0600 file in dir, unlinked at once: for filesystems without
 * O_TMPFILE. */
static int create_named_file(const char *dir) {
  char path[PATH_MAX];
  for (int tries = 0; tries < NAME_TRIES; tries++) {
    uint64_t tag;
    int rc = upg__os_random(&tag, sizeof tag);
    if (rc != 0) return rc;
    if (snprintf(path, sizeof path, "%s/upager-swap-%016llx", dir, (unsigned long long)tag) >=
        (int)sizeof path)
      return -ENAMETOOLONG;
    int fd = upg__os_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) upg__os_unlink(path);
    if (fd != -EEXIST) return fd;
  }
  return -EEXIST;
}

static int create_private_file(const char *dir) {
  int fd = upg__os_open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (fd != -EOPNOTSUPP && fd != -EISDIR && fd != -ENOENT)) return fd;
  return create_named_file(dir);
}

/* Slots are whole pages at page offsets, from page-aligned frames: all that
 * O_DIRECT asks. A filesystem that refuses it answers EINVAL. */
static int try_direct_io(int fd) {
  int flags = upg__os_fcntl(fd, F_GETFL, 0);
  return flags >= 0 && upg__os_fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
}

static int file_open(const char *dir, int direct_io, upg__store_t **out) {
  file_store_t *fs = upg__os_alloc(sizeof *fs);
  if (fs == NULL) return -ENOMEM;
  fs->fd = create_private_file(dir);
  if (fs->fd < 0) {
    int err = fs->fd;
    upg__os_free(fs, sizeof *fs);
    return err;
  }
  fs->base.methods = &file_methods;
  fs->base.direct_io = direct_io && try_direct_io(fs->fd);
  /* Without io_uring (old kernel, or disabled) batches are written serially. */
  fs->has_ring = io_uring_queue_init(UPG__IOV_MAX, &fs->ring, 0) == 0;
  /* Without it, every fault reads with preadv. A completion lands while the
   * fault is busy making system calls, and is seen at the next one: the
   * kernel need not interrupt it (a VM exit on both CPUs) to say so. */
  struct io_uring_params params = {0};
  params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  fs->has_read_ring = io_uring_queue_init_params(2, &fs->read_ring, &params) == 0 ||
                      io_uring_queue_init(2, &fs->read_ring, 0) == 0;
  atomic_store(&fs->read_busy, 0);
  *out = &fs->base;
  return 0;
}

const upg__store_class_t upg__store_file = {"file", file_open};
const upg__store_class_t *upg__store_class = &upg__store_file;
