/* sim_run.h: replaying one trace through many (policy, frames) pairs in a
 * single pass, so that standard input can be simulated and a trace is
 * parsed once however many results are asked for. */
#ifndef UPAGER_SIM_RUN_H
#define UPAGER_SIM_RUN_H

#include <stdint.h>

#include "sim_policy.h"
#include "trace_read.h"

typedef struct upg__sim_result {
  const upg__sim_policy_t *policy;
  size_t frames;
  uint64_t requests, hits;
} upg__sim_result_t;

/* Runs each result's policy with its frame count over the references in
 * refs[0, nrefs), filling in requests and hits. 0 or a negative errno:
 * -ERANGE for a frame count of 0 or of 2^31 or more. */
int upg__sim_run_array(const uint64_t *refs, size_t nrefs, upg__sim_result_t *results, size_t n);
/* The same over a reader, streaming unless a policy is offline (then the
 * whole trace is loaded first). Malformed input is -EINVAL with the
 * reader's message in upg__refs_error. */
int upg__sim_run(upg__refs_t *reader, upg__sim_result_t *results, size_t n);

#endif
