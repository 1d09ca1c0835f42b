/* slots.c: the file store's slots, each one page of the swap file. A
 * bitmap marks the slots in use; allocation is next-fit from a cursor and
 * hands out runs of consecutive slots, so a batch of victims leaves in one
 * large write, and freed slots are taken again before the file grows, so
 * churn does not grow it. A released slot's disk space goes back to the
 * filesystem later, one hole a long run of free slots: a hole punched in
 * the file is a synchronous discard on ext4, tens of microseconds each, and
 * unmapping a 256 MiB region slot by slot took 5.9 s. The store that owns
 * the slots serializes calls. */
#include <errno.h>

#include "internal.h"

/* The bitmap is reserved for every possible slot; only the part in use is
 * ever backed by memory. */
#define MAX_SLOTS ((uint64_t)UINT32_MAX)
#define BITMAP_BYTES ((MAX_SLOTS / 64 + 1) * sizeof(uint64_t))

static int slot_used(const upg__slots_t *sl, uint32_t slot) {
  return (sl->used[slot / 64] >> (slot % 64)) & 1;
}

static void mark(upg__slots_t *sl, uint32_t first, uint32_t n, int used) {
  for (uint32_t s = first; s < first + n; s++) {
    if (used) sl->used[s / 64] |= 1ull << (s % 64);
    else sl->used[s / 64] &= ~(1ull << (s % 64));
  }
  if (!sl->uncounted) UPG__COUNT(swap_slots_in_use, used ? (uint64_t)n : -(uint64_t)n);
}

/* The first free slot in [from, to], or 0; skips full words. */
static uint32_t find_free(const upg__slots_t *sl, uint64_t from, uint64_t to) {
  while (from <= to) {
    uint64_t free_bits = ~sl->used[from / 64] & (~0ull << (from % 64));
    if (free_bits != 0) {
      uint64_t slot = (from & ~63ull) + (uint64_t)__builtin_ctzll(free_bits);
      return slot <= to ? (uint32_t)slot : 0;
    }
    from = (from | 63) + 1;
  }
  return 0;
}

int upg__slots_init(upg__slots_t *sl) {
  sl->high = 0;
  sl->cursor = 1;
  sl->released_lo = sl->released_hi = 0;
  sl->used = upg__os_alloc(BITMAP_BYTES);
  if (sl->used == NULL) return -ENOMEM;
  sl->used[0] = 1; /* slot 0 means "no slot" */
  return 0;
}

void upg__slots_fini(upg__slots_t *sl) {
  upg__os_free(sl->used, BITMAP_BYTES);
  sl->used = NULL;
}

/* The first slot after `slot`, up to last + 1, that is in use: where the
 * run of free slots that starts at `slot` ends. */
static uint32_t free_run_end(const upg__slots_t *sl, uint32_t slot, uint32_t last) {
  while (slot <= last && !slot_used(sl, slot)) slot++;
  return slot;
}

/* The file may grow to twice the slots in use before a batch settles for
 * scattered free slots: a run written at once costs one I/O, scattered
 * slots one each, and a write of 4 KiB costs as much as one of 256 KiB. */
static int may_grow(const upg__slots_t *sl, uint32_t want) {
  uint64_t in_use = UPG__GET(swap_slots_in_use);
  return (uint64_t)sl->high + want <= 2 * in_use + 2 * (uint64_t)want &&
         sl->high < UINT32_MAX - want;
}

long upg__slots_alloc_run(upg__slots_t *sl, uint32_t want, uint32_t *first) {
  uint32_t s = find_free(sl, sl->cursor, sl->high);
  if (s == 0) s = find_free(sl, 1, sl->high);
  uint32_t n = 1;
  if (s != 0) { /* reuse: a run of free slots inside the file */
    uint64_t last = (uint64_t)s + want - 1;
    n = free_run_end(sl, s, last < sl->high ? (uint32_t)last : sl->high) - s;
  }
  if (s == 0 || (n < want && may_grow(sl, want))) { /* the file grows */
    if (sl->high >= UINT32_MAX - 1) return -ENOSPC;
    s = sl->high + 1;
    for (n = 1; n < want && s + n < UINT32_MAX; n++) {}
  }
  if (s + n - 1 > sl->high) {
    sl->high = s + n - 1;
    if (!sl->uncounted) UPG__SET(swap_slots_high, sl->high);
  }
  mark(sl, s, n, 1);
  sl->cursor = s + n;
  *first = s;
  return n;
}

void upg__slots_unalloc(upg__slots_t *sl, uint32_t slot) { mark(sl, slot, 1, 0); }

void upg__slots_release(upg__slots_t *sl, uint32_t slot) {
  upg__slots_unalloc(sl, slot);
  if (sl->released_lo == 0 || slot < sl->released_lo) sl->released_lo = slot;
  if (slot > sl->released_hi) sl->released_hi = slot;
}

void upg__slots_give_back(upg__slots_t *sl, uint32_t min_slots,
                          void (*discard)(void *ctx, uint32_t first, uint32_t n), void *ctx) {
  uint32_t slot = sl->released_lo, last = sl->released_hi;
  while (slot > 1 && !slot_used(sl, slot - 1)) slot--; /* the run may start earlier */
  while (slot != 0 && slot <= last) {
    uint32_t end = free_run_end(sl, slot, sl->high);
    if (end - slot >= (min_slots ? min_slots : 1)) discard(ctx, slot, end - slot);
    slot = find_free(sl, end, last);
  }
  sl->released_lo = sl->released_hi = 0;
}
