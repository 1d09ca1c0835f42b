/* test_swap.c: swap slots: runs of consecutive slots, reuse before growth,
 * the file's bounded growth, and data written to a slot read back. */
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

Test(swap, a_written_run_reads_back_and_a_released_slot_reads_zeros, .timeout = 10) {
  open_swap();
  static char out[2][SLOT] __attribute__((aligned(4096))), in[2][SLOT] __attribute__((aligned(4096)));
  memset(out[0], 'a', SLOT);
  memset(out[1], 'b', SLOT);
  uint32_t first = alloc(2, 2);
  struct iovec wv[2] = {{out[0], SLOT}, {out[1], SLOT}}, rv[2] = {{in[0], SLOT}, {in[1], SLOT}};
  upg__io_run_t run = {first, wv, 2, -1};
  upg__swap_write_runs(&sw, &run, 1);
  cr_assert_eq(run.rc, 0);
  cr_assert_eq(upg__swap_read(&sw, first, rv, 2), 0);
  cr_assert_eq(memcmp(in, out, sizeof in), 0);
  upg__swap_release(&sw, first);
  cr_assert_eq(upg__swap_read(&sw, first, rv, 1), 0);
  for (size_t i = 0; i < SLOT; i++) cr_assert_eq(in[0][i], 0);
  upg__swap_close(&sw);
}
