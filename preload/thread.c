/* thread.c: pthread_create. A new thread starts with every signal blocked
 * and, before glibc restores its mask, reads the global locale's LC_CTYPE
 * data (__ctype_init), which setlocale() malloc'd: a fault there cannot be
 * handled (SIGSEGV is blocked) and kills the process. So that data stays
 * pinned from before the clone until the thread runs its start routine,
 * which is where a trampoline releases it. */
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "preload_api.h"
#include "preload.h"

typedef struct thread_start {
  void *(*routine)(void *);
  void *arg;
  upg__pin_t locale_pin;
} thread_start_t;

/* Pins the LC_CTYPE data of the global locale, if it lives in the heap. */
static void pin_ctype_data(upg__pin_t *pin) {
  pin->len = 0;
  locale_t global = duplocale(LC_GLOBAL_LOCALE);
  if (global == (locale_t)0) return;
  const void *ctype = global->__locales[LC_CTYPE];
  if (upg__heap_contains(ctype)) upg__pin_whole(pin, ctype, malloc_usable_size((void *)ctype));
  freelocale(global);
}

/* Runs with the thread's signal mask in place. */
static void *trampoline(void *arg) {
  thread_start_t start = *(thread_start_t *)arg;
  free(arg);
  upg__pin_end(&start.locale_pin);
  return start.routine(start.arg);
}

UPG__EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                               void *(*routine)(void *), void *arg) {
  if (atomic_load(&upg__heap_state) != UPG__HEAP_READY)
    return UPG__REAL(pthread_create)(thread, attr, routine, arg);
  thread_start_t *start = malloc(sizeof *start);
  if (start == NULL) return EAGAIN;
  *start = (thread_start_t){routine, arg, {NULL, 0}};
  pin_ctype_data(&start->locale_pin);
  int rc = UPG__REAL(pthread_create)(thread, attr, trampoline, start);
  if (rc != 0) {
    upg__pin_end(&start->locale_pin);
    free(start);
  }
  return rc;
}
