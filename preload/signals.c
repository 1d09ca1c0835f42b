/* signals.c: keeping SIGSEGV and SIGBUS deliverable. Paging is driven by
 * SIGSEGV (or SIGBUS, for the userfaultfd source in its sigbus mode), and
 * a fault taken while its signal is blocked is not delivered: the kernel
 * kills the process. Programs block "all signals" routinely (liblzma does so in
 * every worker thread it creates, handlers install with a full sa_mask),
 * so the mask-setting calls quietly leave SIGSEGV out. Blocking it never
 * stopped a real fault anyway; only a SIGSEGV sent with kill() is no longer
 * held back. And a SIGSEGV handler the program installs once the runtime
 * runs becomes the disposition for faults outside paged memory, instead of
 * replacing the runtime's handler: the call goes to the fault source
 * (upg__fault_program_action, preload_api.h); so does a handler the
 * program gives libsigsegv, the runtime's own library, directly (gawk). */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "preload_api.h"
#include "preload.h"
#include "upager.h"

/* The signals a fault can come as. */
static int fault_signal(int signo) { return signo == SIGSEGV || signo == SIGBUS; }

static int holds_fault_signal(const sigset_t *set) {
  return sigismember(set, SIGSEGV) == 1 || sigismember(set, SIGBUS) == 1;
}

static const sigset_t *without_sigsegv(const sigset_t *set, sigset_t *copy) {
  if (set == NULL || !holds_fault_signal(set)) return set;
  *copy = *set;
  sigdelset(copy, SIGSEGV);
  sigdelset(copy, SIGBUS);
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
  if (act != NULL && holds_fault_signal(&act->sa_mask)) {
    copy = *act;
    sigdelset(&copy.sa_mask, SIGSEGV);
    sigdelset(&copy.sa_mask, SIGBUS);
    act = &copy;
  }
  if (upg__fault_program_action(signo, act, old) == 0) return 0;
  return UPG__REAL(sigaction)(signo, act, old);
}

/* glibc's signal() reaches the kernel without calling sigaction(). */
UPG__EXPORT sighandler_t signal(int signo, sighandler_t handler) {
  if (!fault_signal(signo)) return UPG__REAL(signal)(signo, handler);
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART; /* BSD semantics, as glibc's signal() */
  return sigaction(signo, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

/* The program's calls: the runtime makes its own past these wrappers
 * (fault_sigsegv.c), and libsigsegv's calls of sigaction pass through, the
 * runtime's handler not installed yet while it installs, nor any more once
 * it uninstalls. */
UPG__EXPORT int sigsegv_install_handler(sigsegv_handler_t handler) {
  if (upg__fault_sigsegv_program_handler(handler) == 0) return 0;
  return UPG__REAL(sigsegv_install_handler)(handler);
}

UPG__EXPORT void sigsegv_deinstall_handler(void) {
  if (upg__fault_sigsegv_program_handler(NULL) != 0) UPG__REAL(sigsegv_deinstall_handler)();
}
