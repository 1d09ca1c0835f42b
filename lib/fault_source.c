/* fault_source.c: the list of fault sources, which UPAGER_FAULT chooses
 * from, their installation, and the program's signal actions handed to
 * the installed one. Every other file reaches a source through
 * upg__rt.source; only this list names them. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "preload_api.h"

extern const upg__fault_source_t upg__fault_sigsegv;

/* Every source, the default first. */
static const upg__fault_source_t *const sources[] = {&upg__fault_sigsegv};

/* The source last chosen: the program's signal actions go to it. */
static const upg__fault_source_t *_Atomic chosen;

const upg__fault_source_t *upg__fault_source_find(const char *name) {
  for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
    if (strcmp(sources[i]->name, name) == 0) return sources[i];
  return NULL;
}

const char *upg__fault_source_names(void) { return "sigsegv"; }

int upg__fault_source_install(const upg__fault_source_t *s, const upg__config_t *cfg) {
  if (s->version != UPG__FAULT_SOURCE_VERSION) return -ENOTSUP;
  atomic_store(&chosen, s);
  return s->install(cfg);
}

int upg__fault_kernel_needs_pins(void) {
  const upg__fault_source_t *s = atomic_load(&chosen);
  return s == NULL || (s->caps & UPG__SOURCE_KERNEL_NEEDS_PINS) != 0;
}

int upg__fault_program_action(int signo, const struct sigaction *act, struct sigaction *old) {
  const upg__fault_source_t *s = atomic_load(&chosen);
  return s != NULL && s->program_action != NULL ? s->program_action(signo, act, old) : -1;
}
