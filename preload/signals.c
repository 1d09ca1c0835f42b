/* signals.c: keeping SIGSEGV deliverable. Paging is driven by SIGSEGV, and
 * a fault taken while SIGSEGV is blocked is not delivered: the kernel kills
 * the process. Programs block "all signals" routinely (liblzma does so in
 * every worker thread it creates, handlers install with a full sa_mask),
 * so the mask-setting calls quietly leave SIGSEGV out. Blocking it never
 * stopped a real fault anyway; only a SIGSEGV sent with kill() is no longer
 * held back. */
#define _GNU_SOURCE
#include <signal.h>

#include "preload.h"

static const sigset_t *without_sigsegv(const sigset_t *set, sigset_t *copy) {
  if (set == NULL || !sigismember(set, SIGSEGV)) return set;
  *copy = *set;
  sigdelset(copy, SIGSEGV);
  return copy;
}

UPG__EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
  sigset_t copy;
  if (how == SIG_UNBLOCK) return UPG__REAL(pthread_sigmask)(how, set, old);
  return UPG__REAL(pthread_sigmask)(how, without_sigsegv(set, &copy), old);
}

UPG__EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
  sigset_t copy;
  if (how == SIG_UNBLOCK) return UPG__REAL(sigprocmask)(how, set, old);
  return UPG__REAL(sigprocmask)(how, without_sigsegv(set, &copy), old);
}

/* A handler's sa_mask is blocked while it runs, and handlers touch the heap. */
UPG__EXPORT int sigaction(int signo, const struct sigaction *act, struct sigaction *old) {
  struct sigaction copy;
  if (act != NULL && sigismember(&act->sa_mask, SIGSEGV)) {
    copy = *act;
    sigdelset(&copy.sa_mask, SIGSEGV);
    act = &copy;
  }
  return UPG__REAL(sigaction)(signo, act, old);
}
