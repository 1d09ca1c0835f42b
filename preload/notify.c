/* notify.c: SIGEV_THREAD notifications (timer_create, mq_notify) under the
 * preload. glibc runs such a notification's function on a thread that a
 * helper thread of its own creates, and both have every signal blocked,
 * SIGSEGV included: a function that touches a closed page of the paged
 * heap would be killed by the kernel, which cannot deliver the fault. So
 * the wrappers hand glibc a trampoline that lets SIGSEGV through before it
 * calls the program's function. (The helper's own allocations are served
 * by glibc's malloc: alloc.c serves no paged block to a thread that blocks
 * SIGSEGV.) */
#define _GNU_SOURCE
#include <mqueue.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "preload.h"
#include "preload_api.h"

/* The program's function and value, in glibc's (never paged) memory: kept
 * for the life of the process, since glibc may still run a notification
 * after timer_delete returns. */
typedef struct notification {
  void (*function)(union sigval);
  union sigval value;
} notification_t;

static void trampoline(union sigval value) {
  notification_t *n = value.sival_ptr;
  sigset_t segv;
  sigemptyset(&segv);
  sigaddset(&segv, SIGSEGV);
  pthread_sigmask(SIG_UNBLOCK, &segv, NULL);
  n->function(n->value);
}

/* A copy of ev whose function is the trampoline, or ev itself when it asks
 * for no thread. NULL when the copy cannot be made. */
static const struct sigevent *through_trampoline(const struct sigevent *ev, struct sigevent *copy) {
  if (ev == NULL || ev->sigev_notify != SIGEV_THREAD) return ev;
  notification_t *n = UPG__REAL(malloc)(sizeof *n);
  if (n == NULL) return NULL;
  *n = (notification_t){ev->sigev_notify_function, ev->sigev_value};
  *copy = *ev;
  copy->sigev_notify_function = trampoline;
  copy->sigev_value.sival_ptr = n;
  return copy;
}

/* glibc's record of the timer is read by its helper thread, which blocks
 * every signal: it is kept outside the paged heap. */
UPG__EXPORT int timer_create(clockid_t clock, struct sigevent *ev, timer_t *timer) {
  struct sigevent copy;
  const struct sigevent *use = through_trampoline(ev, &copy);
  if (ev != NULL && use == NULL) return -1; /* errno ENOMEM, from malloc */
  upg__glibc_keeps++;
  int rc = UPG__REAL(timer_create)(clock, (struct sigevent *)use, timer);
  upg__glibc_keeps--;
  return rc;
}

UPG__EXPORT int mq_notify(mqd_t queue, const struct sigevent *ev) {
  struct sigevent copy;
  const struct sigevent *use = through_trampoline(ev, &copy);
  if (ev != NULL && use == NULL) return -1;
  upg__glibc_keeps++;
  int rc = UPG__REAL(mq_notify)(queue, use);
  upg__glibc_keeps--;
  return rc;
}
