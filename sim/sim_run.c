/* sim_run.c: the replay loop. References come in batches; each policy
 * instance takes the whole batch before the next, so its state stays in
 * cache, and the dispatch costs one indirect call a batch for policies
 * with access_batch, one a reference for the others. */
#include "sim_run.h"

#include <errno.h>
#include <stdlib.h>

#define BATCH 4096

typedef struct instance {
  const upg__sim_policy_t *policy;
  void *state;
} instance_t;

static void destroy_all(instance_t *inst, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (inst[i].state != NULL) inst[i].policy->destroy(inst[i].state);
  free(inst);
}

static int create_all(const uint64_t *refs, size_t nrefs, upg__sim_result_t *results, size_t n,
                      instance_t **out) {
  instance_t *inst = calloc(n ? n : 1, sizeof *inst);
  if (inst == NULL) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (results[i].frames == 0 || results[i].frames >= UINT32_MAX / 2) {
      destroy_all(inst, n);
      return -ERANGE;
    }
    upg__sim_setup_t setup = {results[i].policy, results[i].frames, refs, nrefs};
    inst[i].policy = results[i].policy;
    results[i].requests = results[i].hits = 0;
    int rc = results[i].policy->create(&setup, &inst[i].state);
    if (rc != 0) {
      inst[i].state = NULL;
      destroy_all(inst, n);
      return rc;
    }
  }
  *out = inst;
  return 0;
}

/* The hits of one instance over a batch, or a negative errno. */
static long access_all(const instance_t *inst, const uint64_t *batch, size_t len) {
  if (inst->policy->access_batch != NULL)
    return inst->policy->access_batch(inst->state, batch, len);
  int (*access)(void *, uint64_t) = inst->policy->access; /* loaded once, not after each call */
  void *state = inst->state;
  long hits = 0;
  for (size_t j = 0; j < len; j++) {
    int rc = access(state, batch[j]);
    if (rc < 0) return rc;
    hits += rc;
  }
  return hits;
}

static int feed(instance_t *inst, upg__sim_result_t *results, size_t n, const uint64_t *batch,
                size_t len) {
  for (size_t i = 0; i < n; i++) {
    long hits = access_all(&inst[i], batch, len);
    if (hits < 0) return (int)hits;
    results[i].hits += (uint64_t)hits;
    results[i].requests += len;
  }
  return 0;
}

int upg__sim_run_array(const uint64_t *refs, size_t nrefs, upg__sim_result_t *results, size_t n) {
  instance_t *inst;
  int rc = create_all(refs, nrefs, results, n, &inst);
  if (rc != 0) return rc;
  for (size_t done = 0; rc == 0 && done < nrefs; done += BATCH)
    rc = feed(inst, results, n, refs + done, nrefs - done < BATCH ? nrefs - done : BATCH);
  destroy_all(inst, n);
  return rc;
}

static int any_offline(const upg__sim_result_t *results, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (results[i].policy->offline) return 1;
  return 0;
}

int upg__sim_run(upg__refs_t *reader, upg__sim_result_t *results, size_t n) {
  if (any_offline(results, n)) {
    uint64_t *refs;
    size_t nrefs;
    int rc = upg__refs_load(reader, &refs, &nrefs);
    if (rc != 0) return rc;
    rc = upg__sim_run_array(refs, nrefs, results, n);
    free(refs);
    return rc;
  }
  instance_t *inst;
  int rc = create_all(NULL, 0, results, n, &inst);
  if (rc != 0) return rc;
  uint64_t batch[BATCH];
  long got;
  while (rc == 0 && (got = upg__refs_next(reader, batch, BATCH)) != 0)
    rc = got < 0 ? (int)got : feed(inst, results, n, batch, (size_t)got);
  destroy_all(inst, n);
  return rc;
}
