/* fuzz_policies.c: a differential libFuzzer target for the policies and
 * the stack passes (build with -DUPAGER_FUZZ=ON and clang). The input is a
 * frame count (first byte) and a reference string (one page a byte, from a
 * small alphabet so that pages repeat). What must hold for any string:
 * every policy hits at most as often as OPT; the LRU and OPT stack passes
 * equal simulation at every size; LRU and OPT never lose hits when given
 * more frames (they are stack algorithms; FIFO may, and is not checked);
 * each policy's hits stay within the requests. tests/test_fuzz_corpus.c
 * replays tests/fuzz_policies_corpus/ through it in every build. */
#include <stdint.h>
#include <stdlib.h>

#include "mrc.h"
#include "sim_run.h"

#define MAX_FRAMES 16

static void check(int ok) {
  if (!ok) abort();
}

static uint64_t hits(const upg__sim_policy_t *p, size_t frames, const uint64_t *refs, size_t n) {
  upg__sim_result_t r = {p, frames, 0, 0};
  check(upg__sim_run_array(refs, n, &r, 1) == 0);
  check(r.requests == n && r.hits <= n);
  return r.hits;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > 4097) return 0;
  size_t n = size - 1, max = 1 + data[0] % MAX_FRAMES;
  uint64_t *refs = malloc(n * sizeof *refs);
  if (refs == NULL) return 0;
  for (size_t i = 0; i < n; i++) refs[i] = data[1 + i] % 32;
  size_t sizes[MAX_FRAMES];
  uint64_t lru_pass[MAX_FRAMES], opt_pass[MAX_FRAMES];
  for (size_t k = 0; k < max; k++) sizes[k] = k + 1;
  check(upg__mrc_lru(refs, n, sizes, max, lru_pass) == 0);
  check(upg__mrc_opt(refs, n, sizes, max, opt_pass) == 0);
  for (size_t k = 0; k < max; k++) {
    uint64_t opt = hits(&upg__sim_opt, sizes[k], refs, n),
             lru = hits(&upg__sim_lru, sizes[k], refs, n);
    check(opt == opt_pass[k] && lru == lru_pass[k]);
    if (k > 0) check(opt >= opt_pass[k - 1] && lru >= lru_pass[k - 1]);
    for (size_t i = 0; i < upg__sim_policy_count(); i++)
      check(hits(upg__sim_policy_at(i), sizes[k], refs, n) <= opt);
  }
  free(refs);
  return 0;
}
