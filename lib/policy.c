/* policy.c: the table of replacement policies the runtime can run. */
#include <pthread.h>
#include <string.h>

#include "policy.h"

static const upg__policy_ops_t *const policies[] = {&upg__policy_clock, &upg__policy_fifo};
#define NPOLICIES (sizeof policies / sizeof policies[0])

const upg__policy_ops_t *upg__policy_find(const char *name) {
  for (size_t i = 0; i < NPOLICIES; i++)
    if (strcmp(policies[i]->name, name) == 0) return policies[i];
  return NULL;
}

/* Built from the table once, so that a policy added to it is named in the
 * error messages without a second list to keep in step. */
static char names[256];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void build_names(void) {
  for (size_t i = 0; i < NPOLICIES; i++) {
    if (i > 0) strncat(names, ", ", sizeof names - strlen(names) - 1);
    strncat(names, policies[i]->name, sizeof names - strlen(names) - 1);
  }
}

const char *upg__policy_names(void) {
  pthread_once(&names_once, build_names);
  return names;
}
