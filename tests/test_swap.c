/* test_swap.c: swap slots: runs of consecutive slots, reuse before growth,
 * the file's bounded growth, data written to a slot read back, and released
 * space given back in long runs. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SLOT 4096

static upg__swap_t sw;

static void open_swap(void) {
  memset(&upg__rt.counters, 0, sizeof upg__rt.counters);
  cr_assert_eq(upg__swap_open(&sw, "/tmp", SLOT, 1), 0);
}

static uint32_t alloc(uint32_t want, long expect_n) {
  uint32_t first;
  long n = upg__swap_alloc_run(&sw, want, &first);
  cr_assert_eq(n, expect_n, "asked %u, got %ld", want, n);
  return first;
}

Test(swap, runs_are_consecutive_and_start_at_slot_one, .timeout = 10) {
  open_swap();
  cr_assert_eq(alloc(8, 8), 1);
  cr_assert_eq(alloc(4, 4), 9);
  cr_assert_eq(sw.high, 12);
  cr_assert_eq(upg__rt.counters.swap_slots_in_use, 12);
}

Test(swap, a_freed_slot_is_taken_again_before_the_file_grows, .timeout = 10) {
  open_swap();
  alloc(64, 64);
  upg__swap_unalloc(&sw, 10);
  upg__swap_unalloc(&sw, 11);
  cr_assert_eq(alloc(2, 2), 10); /* a run that fits in the hole: no growth */
  cr_assert_eq(sw.high, 64);
}

Test(swap, the_file_grows_to_at_most_twice_its_use_for_contiguous_runs, .timeout = 30) {
  open_swap();
  alloc(4096, 4096);
  srand(7);
  for (int round = 0; round < 2000; round++) { /* scattered frees, runs of 16 wanted */
    uint32_t first;
    for (int k = 0; k < 16; k++) {
      uint32_t s = 1 + (uint32_t)rand() % sw.high;
      if (sw.used[s / 64] & (1ull << (s % 64))) upg__swap_unalloc(&sw, s);
      else k--;
    }
    for (uint32_t left = 16; left > 0;) {
      long n = upg__swap_alloc_run(&sw, left, &first);
      cr_assert_gt(n, 0);
      left -= (uint32_t)n;
    }
  }
  cr_assert_eq(upg__rt.counters.swap_slots_in_use, 4096);
  cr_assert_leq(sw.high, 2 * 4096 + 2 * 16, "file of %u slots for 4096 in use", sw.high);
}

/* A store that counts the discards it passes on to the real one. */
static upg__store_t *real;
static int discards;
static uint64_t discarded_bytes;
static int pass_readv(upg__store_t *s, uint64_t off, const struct iovec *iov, int n) {
  (void)s;
  return real->methods->readv(real, off, iov, n);
}
static int pass_writev(upg__store_t *s, uint64_t off, const struct iovec *iov, int n) {
  (void)s;
  return real->methods->writev(real, off, iov, n);
}
static void pass_reserve(upg__store_t *s, uint64_t bytes) {
  (void)s;
  real->methods->reserve(real, bytes);
}
static int count_discard(upg__store_t *s, uint64_t off, size_t len) {
  (void)s;
  discards++;
  discarded_bytes += len;
  return real->methods->discard(real, off, len);
}
static void pass_close(upg__store_t *s) {
  (void)s;
  real->methods->close(real);
}
static const upg__store_methods_t counting_methods = {
    .readv = pass_readv,
    .writev = pass_writev,
    .reserve = pass_reserve,
    .discard = count_discard,
    .close = pass_close,
};
static upg__store_t counting = {&counting_methods, 0};

static void count_discards(void) {
  real = sw.store;
  counting.direct_io = real->direct_io;
  sw.store = &counting;
}

static void write_pattern(uint32_t first, uint32_t n, char c) {
  static char out[64][SLOT] __attribute__((aligned(4096)));
  memset(out, c, sizeof out);
  for (uint32_t done = 0; done < n; done += 64) {
    struct iovec v[64];
    int k = n - done < 64 ? (int)(n - done) : 64;
    for (int i = 0; i < k; i++) v[i] = (struct iovec){out[i], SLOT};
    upg__io_run_t run = {first + done, v, k, -1};
    upg__swap_write_runs(&sw, &run, 1);
    cr_assert_eq(run.rc, 0);
  }
}

Test(swap, a_written_run_reads_back, .timeout = 10) {
  open_swap();
  static char in[2][SLOT] __attribute__((aligned(4096)));
  uint32_t first = alloc(2, 2);
  write_pattern(first, 2, 'a');
  struct iovec rv[2] = {{in[0], SLOT}, {in[1], SLOT}};
  cr_assert_eq(upg__swap_read(&sw, first, rv, 2), 0);
  for (size_t i = 0; i < SLOT; i++) cr_assert(in[0][i] == 'a' && in[1][i] == 'a');
  upg__swap_close(&sw);
}

/* Space goes back one discard a long run of free slots, however many
 * slots were released one by one: each discard is a synchronous hole. */
Test(swap, released_slots_give_their_space_back_in_one_discard_a_long_run, .timeout = 20) {
  open_swap();
  count_discards();
  uint32_t first = alloc(1024, 1024);
  write_pattern(first, 1024, 'b');
  for (uint32_t s = first; s < first + 1024; s++) upg__swap_release(&sw, s);
  cr_assert_eq(discards, 0, "released slots are given back together");
  upg__swap_give_back(&sw);
  cr_assert_eq(discards, 1);
  cr_assert_eq(discarded_bytes, 1024ull * SLOT);
  static char in[SLOT] __attribute__((aligned(4096)));
  struct iovec rv = {in, SLOT};
  cr_assert_eq(upg__swap_read(&sw, first + 500, &rv, 1), 0);
  for (size_t i = 0; i < SLOT; i++) cr_assert_eq(in[i], 0, "a given-back slot reads zeros");
  upg__swap_close(&sw);
}

Test(swap, scattered_single_free_slots_keep_their_space_for_reuse, .timeout = 20) {
  open_swap();
  count_discards();
  uint32_t first = alloc(1024, 1024);
  for (uint32_t s = first; s < first + 1024; s += 2) upg__swap_release(&sw, s);
  upg__swap_give_back(&sw);
  cr_assert_eq(discards, 0);
  cr_assert_eq(upg__rt.counters.swap_slots_in_use, 512);
  uint32_t again = alloc(1, 1);
  cr_assert(again < first + 1024 && (again - first) % 2 == 0, "slot %u: a freed one is taken again",
            again);
  upg__swap_close(&sw);
}
