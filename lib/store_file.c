/* store_file.c: the swap file store, UPAGER_STORE=file. A page's handle is
 * its slot in the file (slots.c), chosen by put: a batch takes runs of
 * consecutive slots, each written with one request. The file is private to the process
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
#include <pthread.h>
#include <unistd.h>

#include "internal.h"

/* One contiguous piece of a batch of writes, and how it went. */
typedef struct io_run {
  uint64_t offset;
  const struct iovec *iov;
  int iovcnt;
  int rc; /* out: 0 or a negative errno */
} io_run_t;

typedef struct file_store {
  upg__store_t base;
  int fd;
  size_t slot_bytes;
  pthread_mutex_t lock; /* slots and size: puts run beside releases */
  upg__slots_t slots;
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
static int transfer(upg__store_t *s, uint64_t offset, const struct iovec *iov, int n, int writing) {
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

static uint64_t slot_offset(const file_store_t *fs, upg__handle_t slot) {
  return (uint64_t)(slot - 1) * fs->slot_bytes;
}

/* How many of the n handles from the first are consecutive slots: one
 * request moves them. */
static int slot_run(const upg__handle_t *handles, int n) {
  int k = 1;
  while (k < n && handles[k] == handles[0] + (uint32_t)k) k++;
  return k;
}

static int count_read(int rc, const struct iovec *iov, int n) {
  if (rc == 0) {
    UPG__COUNT(swap_reads, 1);
    UPG__COUNT(swap_bytes_read, (uint64_t)n * iov[0].iov_len);
  }
  return rc;
}

static int file_get(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov, int n) {
  file_store_t *fs = (file_store_t *)s;
  for (int i = 0, k; i < n; i += k) {
    k = slot_run(handles + i, n - i);
    int rc = count_read(transfer(s, slot_offset(fs, handles[i]), iov + i, k, 0), iov + i, k);
    if (rc != 0) return rc;
  }
  return 0;
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
/* One run of slots only: a read the ring takes as one request. */
static int file_read_begin(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                           int n) {
  file_store_t *fs = (file_store_t *)s;
  if (slot_run(handles, n) != n) return -EINVAL;
  if (!fs->has_read_ring || atomic_exchange(&fs->read_busy, 1)) return -EBUSY;
  uint64_t offset = slot_offset(fs, handles[0]);
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
  rc = count_read(rc, fs->reading.iov, fs->reading.n);
  /* Last: the next read_begin, on another thread, rewrites `reading`. */
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
static void reap_writes(file_store_t *fs, io_run_t *runs, int n, int inflight) {
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
      io_run_t *run = &runs[i];
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
static void ring_write_runs(file_store_t *fs, io_run_t *runs, int n) {
  struct io_uring_sqe *sqes[UPG__IOV_MAX];
  int queued = 0;
  fs->batch++;
  for (int i = 0; i < n; i++) runs[i].rc = RUN_PENDING;
  while (queued < n && (sqes[queued] = io_uring_get_sqe(&fs->ring)) != NULL) {
    io_run_t *run = &runs[queued];
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

static void write_runs(file_store_t *fs, io_run_t *runs, int n) {
  if (fs->has_ring && !atomic_exchange(&fs->ring_busy, 1)) {
    ring_write_runs(fs, runs, n);
    atomic_store(&fs->ring_busy, 0);
    return;
  }
  for (int i = 0; i < n; i++)
    runs[i].rc = transfer(&fs->base, runs[i].offset, runs[i].iov, runs[i].iovcnt, 1);
}

/* Writes past the end of the file extend it, and an extending O_DIRECT
 * write holds the inode lock exclusively until it completes, stalling every
 * fault's read. So the length runs ahead of the writes, doubling: a sparse
 * file, whose unwritten part costs no disk. Under fs->lock. */
#define MIN_RESERVE ((uint64_t)64 << 20)

static void reserve(file_store_t *fs, uint64_t bytes) {
  if (bytes <= fs->size) return;
  uint64_t size = fs->size * 2 > bytes ? fs->size * 2 : bytes;
  if (size < MIN_RESERVE) size = MIN_RESERVE;
  if (upg__os_truncate(fs->fd, size) == 0) fs->size = size;
}

/* Gives each of the n pages a slot, in as few runs as the free space
 * allows. 0, or an error with the pages from the first without a slot
 * left at UPG__NO_HANDLE. */
static int take_slots(file_store_t *fs, int n, upg__handle_t *handles) {
  int rc = 0;
  pthread_mutex_lock(&fs->lock);
  for (int i = 0; i < n;) {
    uint32_t first;
    long got = upg__slots_alloc_run(&fs->slots, (uint32_t)(n - i), &first);
    if (got < 0) {
      for (rc = (int)got; i < n; i++) handles[i] = UPG__NO_HANDLE;
      break;
    }
    for (long k = 0; k < got; k++) handles[i++] = first + (uint32_t)k;
  }
  reserve(fs, (uint64_t)fs->slots.high * fs->slot_bytes);
  pthread_mutex_unlock(&fs->lock);
  return rc;
}

/* A run whose write failed gives its slots back unwritten. */
static int settle_run(file_store_t *fs, const io_run_t *run, upg__handle_t *handles) {
  if (run->rc == 0) {
    UPG__COUNT(swap_writes, 1);
    UPG__COUNT(swap_bytes_written, (uint64_t)run->iovcnt * fs->slot_bytes);
    return 0;
  }
  pthread_mutex_lock(&fs->lock);
  for (int k = 0; k < run->iovcnt; k++) {
    upg__slots_unalloc(&fs->slots, handles[k]);
    handles[k] = UPG__NO_HANDLE;
  }
  pthread_mutex_unlock(&fs->lock);
  return run->rc;
}

/* One write a run of consecutive slots, all runs handed to the device at
 * once. */
static int file_put(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles) {
  file_store_t *fs = (file_store_t *)s;
  io_run_t runs[UPG__IOV_MAX];
  int first[UPG__IOV_MAX], nruns = 0, rc = take_slots(fs, n, handles);
  for (int i = 0, k; i < n && handles[i] != UPG__NO_HANDLE; i += k) {
    k = slot_run(handles + i, n - i);
    runs[nruns] = (io_run_t){slot_offset(fs, handles[i]), iov + i, k, 0};
    first[nruns++] = i;
  }
  if (nruns > 0) write_runs(fs, runs, nruns);
  for (int r = 0; r < nruns; r++) {
    int run_rc = settle_run(fs, &runs[r], handles + first[r]);
    if (run_rc != 0) rc = run_rc;
  }
  return rc;
}

static void file_release(upg__store_t *s, const upg__handle_t *handles, int n) {
  file_store_t *fs = (file_store_t *)s;
  pthread_mutex_lock(&fs->lock);
  for (int i = 0; i < n; i++) upg__slots_release(&fs->slots, handles[i]);
  pthread_mutex_unlock(&fs->lock);
}

/* Runs of free slots shorter than this keep their disk space, for the
 * next allocation to take: a hole a slot would cost more than it gives. */
#define GIVE_BACK_MIN_BYTES ((uint64_t)1 << 20)

static void punch_slots(void *ctx, uint32_t first, uint32_t n) {
  file_store_t *fs = ctx;
  /* Only the disk space is at stake: a failure costs space, not data. */
  (void)upg__os_punch_hole(fs->fd, slot_offset(fs, first), (size_t)n * fs->slot_bytes);
}

/* Under fs->lock, so that no put takes a slot of a run being punched. */
static void file_give_back(upg__store_t *s) {
  file_store_t *fs = (file_store_t *)s;
  pthread_mutex_lock(&fs->lock);
  upg__slots_give_back(&fs->slots, (uint32_t)(GIVE_BACK_MIN_BYTES / fs->slot_bytes), punch_slots,
                       fs);
  pthread_mutex_unlock(&fs->lock);
}

/* Each put is in the file when it returns: nothing waits. */
static int file_flush(upg__store_t *s) {
  (void)s;
  return 0;
}

static void file_close(upg__store_t *s) {
  file_store_t *fs = (file_store_t *)s;
  if (fs->has_ring) io_uring_queue_exit(&fs->ring);
  if (fs->has_read_ring) io_uring_queue_exit(&fs->read_ring);
  upg__os_close(fs->fd);
  upg__slots_fini(&fs->slots);
  pthread_mutex_destroy(&fs->lock);
  upg__os_free(s, sizeof(file_store_t));
}

static const upg__store_methods_t file_methods = {
    .version = UPG__STORE_VERSION,
    .caps = UPG__STORE_SIGNAL_SAFE,
    .put = file_put,
    .get = file_get,
    .release = file_release,
    .flush = file_flush,
    .close = file_close,
    .read_begin = file_read_begin,
    .read_done = file_read_done,
    .read_end = file_read_end,
    .give_back = file_give_back,
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

/* UPAGER_SWAP_DIR and UPAGER_DIRECT_IO are this store's options. */
static int file_open(const upg__config_t *cfg, upg__store_t *lower, upg__store_t **out) {
  (void)lower;
  file_store_t *fs = upg__os_alloc(sizeof *fs);
  if (fs == NULL) return -ENOMEM;
  int rc = upg__slots_init(&fs->slots);
  if (rc != 0) {
    upg__os_free(fs, sizeof *fs);
    return rc;
  }
  fs->fd = create_private_file(cfg->swap_dir);
  if (fs->fd < 0) {
    rc = fs->fd;
    upg__slots_fini(&fs->slots);
    upg__os_free(fs, sizeof *fs);
    return rc;
  }
  fs->base.methods = &file_methods;
  fs->slot_bytes = cfg->page_size;
  pthread_mutex_init(&fs->lock, NULL);
  UPG__SET(swap_direct_io, (uint64_t)(cfg->direct_io && try_direct_io(fs->fd)));
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

const upg__store_class_t upg__store_file = {"file", NULL, file_open};
