/* swap.c: swap slots, each one paging unit of the store. A bitmap marks the
 * slots in use; allocation is next-fit from a cursor and hands out runs of
 * consecutive slots, so a batch of victims leaves in one large write, and
 * freed slots are taken again before the file grows, so churn does not grow
 * it. A released slot's disk space goes back to the filesystem later, one
 * hole a long run of free slots: a hole punched in the file is a synchronous
 * discard on ext4, tens of microseconds each, and unmapping a 256 MiB
 * region slot by slot took 5.9 s. All store calls from the core go through
 * the wrappers here, which is where tests put a failing store. */
#include <errno.h>

#include "internal.h"

/* The bitmap is reserved for every possible slot; only the part in use is
 * ever backed by memory. */
#define MAX_SLOTS ((uint64_t)UINT32_MAX)
#define BITMAP_BYTES ((MAX_SLOTS / 64 + 1) * sizeof(uint64_t))

static uint64_t slot_offset(const upg__swap_t *sw, uint32_t slot) {
  return (uint64_t)(slot - 1) * sw->slot_bytes;
}

static int slot_used(const upg__swap_t *sw, uint32_t slot) {
  return (sw->used[slot / 64] >> (slot % 64)) & 1;
}

static void mark(upg__swap_t *sw, uint32_t first, uint32_t n, int used) {
  for (uint32_t s = first; s < first + n; s++) {
    if (used) sw->used[s / 64] |= 1ull << (s % 64);
    else sw->used[s / 64] &= ~(1ull << (s % 64));
  }
  UPG__COUNT(swap_slots_in_use, used ? (uint64_t)n : -(uint64_t)n);
}

/* The first free slot in [from, to], or 0; skips full words. */
static uint32_t find_free(const upg__swap_t *sw, uint64_t from, uint64_t to) {
  while (from <= to) {
    uint64_t free_bits = ~sw->used[from / 64] & (~0ull << (from % 64));
    if (free_bits != 0) {
      uint64_t slot = (from & ~63ull) + (uint64_t)__builtin_ctzll(free_bits);
      return slot <= to ? (uint32_t)slot : 0;
    }
    from = (from | 63) + 1;
  }
  return 0;
}

int upg__swap_open(upg__swap_t *sw, const char *dir, size_t slot_bytes, int direct_io) {
  sw->slot_bytes = slot_bytes;
  sw->high = 0;
  sw->cursor = 1;
  sw->released_lo = sw->released_hi = 0;
  sw->used = upg__os_alloc(BITMAP_BYTES);
  if (sw->used == NULL) return -ENOMEM;
  sw->used[0] = 1; /* slot 0 means "no slot" */
  int rc = upg__store_class->open(dir, direct_io, &sw->store);
  if (rc != 0) upg__os_free(sw->used, BITMAP_BYTES);
  return rc;
}

void upg__swap_close(upg__swap_t *sw) {
  if (sw->store != NULL) sw->store->methods->close(sw->store);
  upg__os_free(sw->used, BITMAP_BYTES);
  sw->store = NULL;
  sw->used = NULL;
}

/* The first slot after `slot`, up to last + 1, that is in use: where the
 * run of free slots that starts at `slot` ends. */
static uint32_t free_run_end(const upg__swap_t *sw, uint32_t slot, uint32_t last) {
  while (slot <= last && !slot_used(sw, slot)) slot++;
  return slot;
}

/* The file may grow to twice the slots in use before a batch settles for
 * scattered free slots: a run written at once costs one I/O, scattered
 * slots one each, and a write of 4 KiB costs as much as one of 256 KiB. */
static int may_grow(const upg__swap_t *sw, uint32_t want) {
  uint64_t in_use = atomic_load_explicit(&upg__rt.counters.swap_slots_in_use,
                                         memory_order_relaxed);
  return (uint64_t)sw->high + want <= 2 * in_use + 2 * (uint64_t)want &&
         sw->high < UINT32_MAX - want;
}

long upg__swap_alloc_run(upg__swap_t *sw, uint32_t want, uint32_t *first) {
  uint32_t s = find_free(sw, sw->cursor, sw->high);
  if (s == 0) s = find_free(sw, 1, sw->high);
  uint32_t n = 1;
  if (s != 0) { /* reuse: a run of free slots inside the file */
    uint64_t last = (uint64_t)s + want - 1;
    n = free_run_end(sw, s, last < sw->high ? (uint32_t)last : sw->high) - s;
  }
  if (s == 0 || (n < want && may_grow(sw, want))) { /* the file grows */
    if (sw->high >= UINT32_MAX - 1) return -ENOSPC;
    s = sw->high + 1;
    for (n = 1; n < want && s + n < UINT32_MAX; n++) {}
  }
  if (s + n - 1 > sw->high) {
    sw->high = s + n - 1;
    UPG__SET(swap_slots_high, sw->high);
    if (sw->store->methods->reserve != NULL)
      sw->store->methods->reserve(sw->store, (uint64_t)sw->high * sw->slot_bytes);
  }
  mark(sw, s, n, 1);
  sw->cursor = s + n;
  *first = s;
  return n;
}

void upg__swap_unalloc(upg__swap_t *sw, uint32_t slot) { mark(sw, slot, 1, 0); }

void upg__swap_release(upg__swap_t *sw, uint32_t slot) {
  upg__swap_unalloc(sw, slot);
  if (sw->released_lo == 0 || slot < sw->released_lo) sw->released_lo = slot;
  if (slot > sw->released_hi) sw->released_hi = slot;
}

/* Runs of free slots shorter than this keep their disk space, for the
 * next allocation to take: a hole a slot would cost more than it gives. */
#define GIVE_BACK_MIN_BYTES ((uint64_t)1 << 20)

void upg__swap_give_back(upg__swap_t *sw) {
  uint64_t min_slots = GIVE_BACK_MIN_BYTES / sw->slot_bytes;
  uint32_t slot = sw->released_lo, last = sw->released_hi;
  while (slot > 1 && !slot_used(sw, slot - 1)) slot--; /* the run may start earlier */
  while (slot != 0 && slot <= last) {
    uint32_t end = free_run_end(sw, slot, sw->high);
    if (end - slot >= (min_slots ? min_slots : 1))
      /* Only the disk space is at stake: a failure costs space, not data. */
      (void)sw->store->methods->discard(sw->store, slot_offset(sw, slot),
                                        (size_t)(end - slot) * sw->slot_bytes);
    slot = find_free(sw, end, last);
  }
  sw->released_lo = sw->released_hi = 0;
}

static int count_read(const upg__swap_t *sw, int rc, int pages) {
  if (rc == 0) {
    UPG__COUNT(swap_reads, 1);
    UPG__COUNT(swap_bytes_read, (uint64_t)pages * sw->slot_bytes);
  }
  return rc;
}

/* Times a store call that a signal interrupted is made again: EINTR is
 * no failure of the store, and a page whose write failed would stay
 * resident for nothing. A store that answers nothing else fails. */
#define EINTR_TRIES 64

int upg__swap_read(upg__swap_t *sw, uint32_t slot, const struct iovec *iov, int n) {
  int rc = -EINTR;
  for (int tries = 0; rc == -EINTR && tries < EINTR_TRIES; tries++)
    rc = sw->store->methods->readv(sw->store, slot_offset(sw, slot), iov, n);
  return count_read(sw, rc, n);
}

int upg__swap_read_begin(upg__swap_t *sw, uint32_t slot, const struct iovec *iov, int n) {
  const upg__store_methods_t *m = sw->store->methods;
  if (m->read_begin == NULL) return -ENOTSUP;
  return m->read_begin(sw->store, slot_offset(sw, slot), iov, n);
}

int upg__swap_read_done(upg__swap_t *sw) { return sw->store->methods->read_done(sw->store); }

int upg__swap_read_end(upg__swap_t *sw, int n) {
  return count_read(sw, sw->store->methods->read_end(sw->store), n);
}

static void count_write(const upg__swap_t *sw, int rc, int pages) {
  if (rc == 0) {
    UPG__COUNT(swap_writes, 1);
    UPG__COUNT(swap_bytes_written, (uint64_t)pages * sw->slot_bytes);
  } else {
    UPG__COUNT(swap_write_errors, (uint64_t)pages);
  }
}

void upg__swap_write_runs(upg__swap_t *sw, upg__io_run_t *runs, int n) {
  const upg__store_methods_t *m = sw->store->methods;
  for (int i = 0; i < n; i++) {
    runs[i].offset = slot_offset(sw, (uint32_t)runs[i].offset);
    runs[i].rc = -EINTR;
  }
  if (m->write_runs != NULL) m->write_runs(sw->store, runs, n);
  for (int i = 0; i < n; i++) {
    upg__io_run_t *run = &runs[i];
    for (int tries = 0; run->rc == -EINTR && tries < EINTR_TRIES; tries++)
      run->rc = m->writev(sw->store, run->offset, run->iov, run->iovcnt);
    count_write(sw, run->rc, run->iovcnt);
  }
}
