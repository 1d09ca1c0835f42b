/* fault_sigsegv.c: the SIGSEGV fault source, through GNU libsigsegv: its
 * table, with the view kept by memory protection (view_mprotect.c), and
 * the signal handling. libsigsegv passes no context, so a fault's access
 * is unknown: a write to a page opened read-only faults again.
 *
 * libsigsegv calls the handler twice for a fault it is not told is handled:
 * first with serious=0 (so a stack-overflow handler may look at it), then
 * with serious=1, after which it resets SIGSEGV to SIG_DFL. So paged memory
 * is claimed at the first call; an access the runtime does not own is
 * passed on at the second, to the disposition the program had before the
 * runtime started: re-raised by default, or handed to its own handler. A
 * handler the program installs later (GNU grep's stack-overflow handler,
 * say) would replace the runtime's and take every paging fault for a crash,
 * so the preload hands it here instead (upg__fault_program_action),
 * and so it does with a handler the program gives libsigsegv itself, as
 * gawk does, which libsigsegv, one handler a process, would let replace
 * the runtime's (upg__fault_sigsegv_program_handler).
 *
 * The source calls libc's sigaction and libsigsegv's handler calls by the
 * addresses the dynamic linker finds after this object, not by name: in
 * the preload, which links this library in, the names are the preload's
 * own wrappers, meant for the program's calls alone. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sigsegv.h>
#include <string.h>

#include "internal.h"
#include "preload_api.h"

/* The program's SIGSEGV disposition. */
static upg__program_action_t program = UPG__PROGRAM_ACTION_INIT;
static _Atomic int installed;
static _Atomic(sigsegv_handler_t) program_handler;

static struct {
  int (*sigaction)(int signo, const struct sigaction *act, struct sigaction *old);
  int (*install_handler)(sigsegv_handler_t handler);
  void (*deinstall_handler)(void);
} real;

/* The next definition after this object, or, where there is none (a
 * program that links libsigsegv statically), the one linked here. */
static void *next_or(const char *name, void *linked) {
  void *f = dlsym(RTLD_NEXT, name);
  return f != NULL ? f : linked;
}

/* At load, before any heap call can start the runtime: dlsym may allocate
 * on its way, and under the preload malloc is the paged heap. */
__attribute__((constructor(101))) static void resolve_real(void) {
  if (real.sigaction != NULL) return;
  *(void **)&real.install_handler = next_or("sigsegv_install_handler",
                                            (void *)sigsegv_install_handler);
  *(void **)&real.deinstall_handler = next_or("sigsegv_deinstall_handler",
                                              (void *)sigsegv_deinstall_handler);
  *(void **)&real.sigaction = next_or("sigaction", (void *)sigaction);
}

/* The runtime lets go of SIGSEGV. */
static void restore_default(void) {
  atomic_store(&installed, 0);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  real.sigaction(SIGSEGV, &dfl, NULL);
}

/* With SIG_DFL back in place the access repeats and the kernel ends the
 * program by SIGSEGV at the right instruction, core dump and all. The
 * program's own handler gets a siginfo with the address but no context,
 * which libsigsegv does not pass on. */
static void pass_on(void *addr) {
  struct sigaction previous = *upg__program_action_now(&program);
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

static int claim(void *addr, int serious) {
  if (upg__fault(addr, UPG__ACCESS_UNKNOWN) == UPG__FAULT_HANDLED) return 1;
  sigsegv_handler_t theirs = atomic_load(&program_handler);
  if (theirs != NULL && theirs(addr, serious)) return 1;
  if (!serious) return 0;
  UPG__COUNT(fault_invalid, 1);
  upg__lock();
  upg__trace_fault(NULL, (uintptr_t)addr >> upg__rt.page_shift, UPG_TRACE_INVALID);
  upg__unlock();
  upg__trace_flush();
  pass_on(addr);
  return 1;
}

/* The interrupted code may be between a system call and its look at
 * errno (GNU sort clears errno, calls strcoll, and takes a change for a
 * failed comparison), so the handler gives errno back as it found it,
 * whatever it calls. */
static int on_sigsegv(void *addr, int serious) {
  int saved_errno = errno;
  int handled = claim(addr, serious);
  errno = saved_errno;
  return handled;
}

/* While the handler runs every signal is blocked, by the kernel as it
 * enters the handler: a program's handler for another signal (a timer's,
 * say) that ran in the middle of a fault could touch a closed page with
 * SIGSEGV blocked and die, or pin a buffer and wait forever for the lock
 * its own thread holds. Such a signal stays pending until the handler
 * returns. libsigsegv blocks only the common ones. */
static int sigsegv_install(const upg__config_t *cfg) {
  (void)cfg;
  resolve_real();
  upg__mview_reset();
  real.sigaction(SIGSEGV, NULL, upg__program_action_now(&program));
  if (real.install_handler(on_sigsegv) != 0) return -ENOSYS;
  int rc = upg__os_block_all_in_handler(SIGSEGV);
  if (rc != 0) {
    real.deinstall_handler();
    return rc;
  }
  atomic_store(&installed, 1);
  return 0;
}

static void sigsegv_uninstall(void) {
  atomic_store(&installed, 0);
  real.deinstall_handler();
  real.sigaction(SIGSEGV, upg__program_action_now(&program), NULL);
}

static int program_action(int signo, const struct sigaction *act, struct sigaction *old) {
  if (signo != SIGSEGV || !atomic_load(&installed)) return -1;
  upg__program_action_change(&program, act, old);
  return 0;
}

int upg__fault_sigsegv_program_handler(int (*handler)(void *addr, int serious)) {
  atomic_store(&program_handler, handler);
  return atomic_load(&installed) ? 0 : -1;
}

const upg__fault_source_t upg__fault_sigsegv = {
    .version = UPG__FAULT_SOURCE_VERSION,
    .name = "sigsegv",
    .caps = UPG__SOURCE_KERNEL_NEEDS_PINS | UPG__SOURCE_COUNTS_MAPS,
    .trace_id = 1,
    .install = sigsegv_install,
    .uninstall = sigsegv_uninstall,
    .view_create = upg__mview_create,
    .view_added = upg__mview_added,
    .view_destroy = upg__mview_destroy,
    .view_forget = upg__mview_forget,
    .view_unmap = upg__mview_unmap,
    .open = upg__mview_open,
    .close = upg__mview_close,
    .frame_iov = upg__mview_frame_iov,
    .publish = upg__mview_publish,
    .free = upg__mview_free,
    .evicting = upg__mview_evicting,
    .unpinned = upg__mview_unpinned,
    .program_action = program_action,
};
