/* fault_sigsegv.c: the SIGSEGV fault source, through GNU libsigsegv.
 *
 * libsigsegv calls the handler twice for a fault it is not told is handled:
 * first with serious=0 (so a stack-overflow handler may look at it), then
 * with serious=1, after which it resets SIGSEGV to SIG_DFL. So paged memory
 * is claimed at the first call; an access the runtime does not own is
 * passed on at the second, to the disposition the program had before the
 * runtime started: re-raised by default, or handed to its own handler. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sigsegv.h>
#include <string.h>

#include "internal.h"

static struct sigaction previous;

static void restore_default(void) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &dfl, NULL);
}

/* With SIG_DFL back in place the access repeats and the kernel ends the
 * program by SIGSEGV at the right instruction, core dump and all. The
 * program's own handler gets a siginfo with the address but no context,
 * which libsigsegv does not pass on. */
static void pass_on(void *addr) {
  if (!(previous.sa_flags & SA_SIGINFO) &&
      (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN)) {
    restore_default();
    return;
  }
  if (previous.sa_flags & SA_RESETHAND) restore_default();
  if (previous.sa_flags & SA_SIGINFO) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGSEGV;
    info.si_code = SEGV_MAPERR;
    info.si_addr = addr;
    previous.sa_sigaction(SIGSEGV, &info, NULL);
  } else {
    previous.sa_handler(SIGSEGV);
  }
}

static int on_sigsegv(void *addr, int serious) {
  if (upg__fault(addr) == UPG__FAULT_HANDLED) return 1;
  if (!serious) return 0;
  UPG__COUNT(fault_invalid, 1);
  upg__lock();
  upg__trace_fault(NULL, (uintptr_t)addr >> upg__rt.page_shift, UPG_TRACE_INVALID);
  upg__unlock();
  pass_on(addr);
  return 1;
}

static int sigsegv_install(void) {
  sigaction(SIGSEGV, NULL, &previous);
  return sigsegv_install_handler(on_sigsegv) == 0 ? 0 : -ENOSYS;
}

static void sigsegv_uninstall(void) {
  sigsegv_deinstall_handler();
  sigaction(SIGSEGV, &previous, NULL);
}

const upg__fault_source_t upg__fault_sigsegv = {"sigsegv", sigsegv_install, sigsegv_uninstall};
