/* sim_helpers.h: what the simulator tests share: replaying a reference
 * string held in memory through one policy, and a reader over a string. */
#ifndef UPAGER_TEST_SIM_HELPERS_H
#define UPAGER_TEST_SIM_HELPERS_H

#include <criterion/criterion.h>
#include <string.h>

#include "sim_run.h"
#include "trace_read.h"

#define LEN(a) (sizeof(a) / sizeof(a[0]))

static inline uint64_t sim_hits(const upg__sim_policy_t *p, size_t frames, const uint64_t *refs,
                                size_t n) {
  upg__sim_result_t r = {p, frames, 0, 0};
  cr_assert_eq(upg__sim_run_array(refs, n, &r, 1), 0, "%s at %zu frames", p->name, frames);
  cr_assert_eq(r.requests, n);
  return r.hits;
}

static inline uint64_t sim_misses(const upg__sim_policy_t *p, size_t frames, const uint64_t *refs,
                                  size_t n) {
  return n - sim_hits(p, frames, refs, n);
}

/* A reader over `text` (not copied: it must outlive the reader). */
static inline upg__refs_t *reader_over(const char *name, const void *data, size_t len, int zstd,
                                       const upg__trace_format_t *format) {
  upg__input_t *in;
  upg__refs_t *r;
  cr_assert_eq(upg__input_open_memory(data, len, zstd, &in), 0);
  cr_assert_eq(upg__refs_open(in, name, format, 4096, &r), 0);
  return r;
}

#endif
