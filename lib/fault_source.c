/* fault_source.c: the list of fault sources, which UPAGER_FAULT chooses
 * from, their installation, and the program's signal actions handed to
 * the installed one. Every other file reaches a source through
 * upg__rt.source; only this list names them. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "preload_api.h"

extern const upg__fault_source_t upg__fault_sigsegv;
extern const upg__fault_source_t upg__fault_uffd;
extern const upg__fault_source_t upg__fault_uffd_thread;

/* UPAGER_FAULT=auto: a name in the list, never installed: once the options
 * are read it becomes uffd where that can run, else sigsegv. */
static const upg__fault_source_t auto_choice = {.version = UPG__FAULT_SOURCE_VERSION,
                                                .name = "auto"};

/* Every source by its name, the default first. */
static const upg__fault_source_t *const sources[] = {&upg__fault_sigsegv, &upg__fault_uffd,
                                                     &auto_choice};

/* The source last chosen: the program's signal actions go to it. */
static const upg__fault_source_t *_Atomic chosen;

const upg__fault_source_t *upg__fault_source_find(const char *name) {
  for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
    if (strcmp(sources[i]->name, name) == 0) return sources[i];
  return NULL;
}

const char *upg__fault_source_names(void) { return "sigsegv, uffd, auto"; }

/* The uffd source comes as two tables, one a delivery mode: their
 * capabilities differ (a handler thread serves the kernel's own accesses). */
const upg__fault_source_t *upg__fault_source_for(const upg__fault_source_t *s,
                                                 const upg__config_t *cfg) {
  if (s == &auto_choice) s = upg__fault_uffd_usable(cfg) ? &upg__fault_uffd : &upg__fault_sigsegv;
  if (s == &upg__fault_uffd && cfg->uffd_thread) s = &upg__fault_uffd_thread;
  return s;
}

int upg__fault_source_install(const upg__fault_source_t *s, const upg__config_t *cfg) {
  if (s->version != UPG__FAULT_SOURCE_VERSION || s->install == NULL) return -ENOTSUP;
  atomic_store(&chosen, s);
  return s->install(cfg);
}

int upg__fault_kernel_needs_pins(void) {
  const upg__fault_source_t *s = atomic_load(&chosen);
  return s == NULL || (s->caps & UPG__SOURCE_KERNEL_NEEDS_PINS) != 0;
}

struct sigaction *upg__program_action_now(upg__program_action_t *p) {
  return &p->slot[atomic_load(&p->current)];
}

void upg__program_action_change(upg__program_action_t *p, const struct sigaction *act,
                                struct sigaction *old) {
  pthread_mutex_lock(&p->lock);
  int now = atomic_load(&p->current);
  if (old != NULL) *old = p->slot[now];
  if (act != NULL) {
    p->slot[1 - now] = *act;
    atomic_store(&p->current, 1 - now);
  }
  pthread_mutex_unlock(&p->lock);
}

int upg__fault_program_action(int signo, const struct sigaction *act, struct sigaction *old) {
  const upg__fault_source_t *s = atomic_load(&chosen);
  return s != NULL && s->program_action != NULL ? s->program_action(signo, act, old) : -1;
}
