/* sim_mrc.c: `upager sim --mrc MIN:MAX:STEPS`: hit ratios over a range of
 * frame counts. LRU and OPT come from one stack pass each (sim/mrc.h),
 * unless OPT's would be slower than simulating (is_stack); every other
 * policy is simulated at each size, all in one more pass. The trace is
 * held in memory (8 bytes a reference) for the passes. */
#include <errno.h>
#include <stdlib.h>

#include "mrc.h"
#include "sim_cli.h"

static int stack_curve(const upg__sim_policy_t *p, const uint64_t *refs, size_t nrefs,
                       const upg__sim_args_t *a, upg__sim_result_t *row) {
  uint64_t hits[UPG__CLI_MAX_LIST];
  int rc = p == &upg__sim_lru ? upg__mrc_lru(refs, nrefs, a->frames, a->nframes, hits)
                              : upg__mrc_opt(refs, nrefs, a->frames, a->nframes, hits);
  for (size_t f = 0; rc == 0 && f < a->nframes; f++)
    row[f] = (upg__sim_result_t){p, a->frames[f], nrefs, hits[f]};
  return rc;
}

/* LRU's pass costs O(log n) a reference whatever the sizes. OPT's walks up
 * to MAX depths on a miss, while simulating each size costs about
 * STEPS x log2(MAX) heap steps (a few times dearer each) a reference; past
 * that point OPT is simulated at each size instead, still in one pass
 * over the trace. Both give the same numbers (tests/test_sim_policies.c). */
static int is_stack(const upg__sim_policy_t *p, const upg__sim_args_t *a) {
  if (p == &upg__sim_lru) return 1;
  if (p != &upg__sim_opt) return 0;
  size_t max = a->frames[a->nframes - 1], log2_max = 1;
  while (((size_t)1 << log2_max) < max) log2_max++;
  return max <= 4 * a->nframes * log2_max;
}

int upg__cli_sim_mrc(const upg__sim_args_t *a, upg__refs_t *reader, upg__sim_result_t **out,
                     size_t *n) {
  uint64_t *refs;
  size_t nrefs;
  int rc = upg__refs_load(reader, &refs, &nrefs);
  if (rc != 0) return rc;
  size_t total = a->npolicies * a->nframes, nsim = 0;
  upg__sim_result_t *results = calloc(total, sizeof *results);
  upg__sim_result_t *sims = calloc(total, sizeof *sims);
  rc = results == NULL || sims == NULL ? -ENOMEM : 0;
  for (size_t p = 0; rc == 0 && p < a->npolicies; p++) {
    if (is_stack(a->policies[p], a)) {
      rc = stack_curve(a->policies[p], refs, nrefs, a, results + p * a->nframes);
      continue;
    }
    for (size_t f = 0; f < a->nframes; f++)
      sims[nsim++] = (upg__sim_result_t){a->policies[p], a->frames[f], 0, 0};
  }
  if (rc == 0) rc = upg__sim_run_array(refs, nrefs, sims, nsim);
  /* Put the simulated rows back in the order the policies were asked for. */
  for (size_t p = 0, k = 0; rc == 0 && p < a->npolicies; p++)
    for (size_t f = 0; f < a->nframes && !is_stack(a->policies[p], a); f++)
      results[p * a->nframes + f] = sims[k++];
  free(sims), free(refs);
  if (rc != 0) {
    free(results);
    return rc;
  }
  *out = results, *n = total;
  return 0;
}
