/* real.c: the real functions behind the preload's wrappers, found with
 * dlsym(RTLD_NEXT) once, so a wrapper (even one the fault handler reaches,
 * such as pread for swap I/O) is an indirect call and nothing more. */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "preload.h"

upg__real_t upg__real;

void upg__real_resolve(void) {
#define UPG__RESOLVE_(name, ret, params) \
  if (upg__real.name == NULL) *(void **)&upg__real.name = dlsym(RTLD_NEXT, #name);
  UPG__REAL_FUNCTIONS(UPG__RESOLVE_)
#undef UPG__RESOLVE_
}
