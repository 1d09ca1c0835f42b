/* fault_uffd.c: the userfaultfd fault source (UPAGER_FAULT=uffd): opening
 * the userfaultfd, with the features the kernel is asked for and the
 * reasons it may refuse, and the two ways a fault reaches the pager
 * (UPAGER_UFFD_MODE):
 * - sigbus: the kernel raises SIGBUS in the faulting thread
 *   (UFFD_FEATURE_SIGBUS), whose handler resolves the fault there, as the
 *   SIGSEGV source does. The kernel's own accesses to a missing page fail
 *   with EFAULT instead, so system calls' buffers are pinned.
 * - thread: the kernel queues the fault as a message and puts the thread
 *   to sleep; a handler thread reads it, resolves it and wakes the thread.
 *   A system call that touches a missing page waits the same way, so
 *   nothing needs pinning; each fault costs two more context switches.
 * Both know a write from a read: the page-fault error code in the signal's
 * context (x86-64), or the message's flags. The view is view_uffd.c's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"
#include "uffd_abi.h"

/* ---- opening the userfaultfd --------------------------------------------*/

/* Features every mode needs: write protection of anonymous memory (5.7);
 * and the one the sigbus mode adds (4.14). */
#define NEEDED UFFD_FEATURE_PAGEFAULT_FLAG_WP

static uint64_t features_needed(const upg__config_t *cfg) {
  return NEEDED | (cfg->uffd_thread ? 0 : UFFD_FEATURE_SIGBUS);
}

/* A userfaultfd with the API handshake done, asking for `features`;
 * *offered gets what the kernel has. */
static int open_with(uint64_t features, uint64_t *offered) {
  int fd = upg__os_userfaultfd(O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fd;
  struct uffdio_api api = {UFFD_API, features, 0};
  int rc = upg__os_ioctl(fd, UFFDIO_API, &api);
  if (offered != NULL) *offered = api.features;
  if (rc == 0) return fd;
  upg__os_close(fd);
  return rc;
}

/* The kernel tells what it has only in the handshake, which a userfaultfd
 * makes once: one to ask, another to use. */
static int open_uffd(const upg__config_t *cfg, uint64_t *missing) {
  uint64_t offered = 0;
  int fd = open_with(0, &offered);
  if (fd < 0) return fd;
  upg__os_close(fd);
  *missing = features_needed(cfg) & ~offered;
  if (*missing != 0) return -ENOTSUP;
  return open_with(features_needed(cfg), NULL);
}

int upg__fault_uffd_usable(const upg__config_t *cfg) {
  uint64_t missing;
  int fd = open_uffd(cfg, &missing);
  if (fd < 0) return 0;
  upg__os_close(fd);
  return 1;
}

/* Why the kernel said no, for the message: the setting that decides it. */
static int refused(int rc, uint64_t missing) {
  if (rc == -ENOTSUP)
    return upg__fail(UPG_EUFFD,
                     "UPAGER_FAULT=uffd: this kernel's userfaultfd lacks features 0x%llx "
                     "(SIGBUS delivery needs Linux 4.14, write protection 5.7)",
                     (unsigned long long)missing);
  if (rc == -EPERM && geteuid() != 0 &&
      upg__os_read_number("/proc/sys/vm/unprivileged_userfaultfd") == 0)
    return upg__fail(
        UPG_EUFFD, "UPAGER_FAULT=uffd: userfaultfd(2) refused (EPERM): vm.unprivileged_userfaultfd "
                   "is 0, so only root (CAP_SYS_PTRACE) may catch the kernel's faults; set "
                   "vm.unprivileged_userfaultfd=1, or use UPAGER_FAULT=auto or sigsegv");
  if (rc == -EPERM || rc == -ENOSYS)
    return upg__fail(UPG_EUFFD,
                     "UPAGER_FAULT=uffd: userfaultfd(2) refused (%s): a seccomp filter (a "
                     "container's profile) or a kernel without CONFIG_USERFAULTFD forbids it; use "
                     "UPAGER_FAULT=auto or sigsegv",
                     strerror(-rc));
  return upg__fail(UPG_EUFFD, "UPAGER_FAULT=uffd: cannot open a userfaultfd: %s", strerror(-rc));
}

/* ---- a fault, however it came ------------------------------------------*/

/* Only a missing page can be one the program gave back itself. */
static upg__fault_result_t deliver(void *addr, int access, int missing) {
  if (missing && upg__uview_refill_hole(addr)) return UPG__FAULT_HANDLED;
  return upg__fault(addr, access);
}

/* ---- sigbus mode --------------------------------------------------------*/

/* The program's SIGBUS disposition. */
static upg__program_action_t program = UPG__PROGRAM_ACTION_INIT;
static _Atomic int sigbus_installed;

/* libc's sigaction past the preload's wrapper, which is for the program. */
static int (*real_sigaction)(int signo, const struct sigaction *act, struct sigaction *old);

__attribute__((constructor(101))) static void resolve_real(void) {
  if (real_sigaction != NULL) return;
  void *next = dlsym(RTLD_NEXT, "sigaction");
  *(void **)&real_sigaction = next != NULL ? next : (void *)sigaction;
}

static void restore_default(void) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  real_sigaction(SIGBUS, &dfl, NULL);
}

/* A SIGBUS that is not paging goes where the program said: by default the
 * access repeats under SIG_DFL, and the kernel ends the program there. */
static void pass_on(siginfo_t *info, void *context) {
  struct sigaction previous = *upg__program_action_now(&program);
  if (!(previous.sa_flags & SA_SIGINFO) &&
      (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN)) {
    atomic_store(&sigbus_installed, 0);
    restore_default();
    return;
  }
  if (previous.sa_flags & SA_RESETHAND) restore_default();
  if (previous.sa_flags & SA_SIGINFO) previous.sa_sigaction(SIGBUS, info, context);
  else previous.sa_handler(SIGBUS);
}

/* The page-fault error code of x86-64: bit 0 the page was present (so the
 * fault is write protection), bit 1 the access was a write. */
static void access_of(const void *context, int *access, int *missing) {
#if defined(__x86_64__)
  long err = ((const ucontext_t *)context)->uc_mcontext.gregs[REG_ERR];
  *access = err & 2 ? UPG__ACCESS_WRITE : UPG__ACCESS_READ;
  *missing = !(err & 1);
#else
  (void)context;
  *access = UPG__ACCESS_UNKNOWN;
  *missing = 0;
#endif
}

/* errno is the interrupted code's: given back as found (fault_sigsegv.c). */
static void on_sigbus(int signo, siginfo_t *info, void *context) {
  (void)signo;
  int saved_errno = errno, access, missing;
  access_of(context, &access, &missing);
  if (info->si_code != BUS_ADRERR ||
      deliver(info->si_addr, access, missing) != UPG__FAULT_HANDLED) {
    UPG__COUNT(fault_invalid, 1);
    pass_on(info, context);
  }
  errno = saved_errno;
}

/* Every signal blocked while the handler runs, for fault_sigsegv.c's
 * reasons: a program's handler must not run in the middle of a fault. */
static int sigbus_start(void) {
  resolve_real();
  real_sigaction(SIGBUS, NULL, upg__program_action_now(&program));
  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_sigaction = on_sigbus;
  act.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigfillset(&act.sa_mask);
  if (real_sigaction(SIGBUS, &act, NULL) != 0) return -errno;
  int rc = upg__os_block_all_in_handler(SIGBUS);
  if (rc != 0) {
    real_sigaction(SIGBUS, upg__program_action_now(&program), NULL);
    return rc;
  }
  atomic_store(&sigbus_installed, 1);
  return 0;
}

static void sigbus_stop(void) {
  atomic_store(&sigbus_installed, 0);
  real_sigaction(SIGBUS, upg__program_action_now(&program), NULL);
}

static int program_action(int signo, const struct sigaction *act, struct sigaction *old) {
  if (signo != SIGBUS || !atomic_load(&sigbus_installed)) return -1;
  upg__program_action_change(&program, act, old);
  return 0;
}

/* ---- thread mode --------------------------------------------------------*/

static struct {
  pthread_t thread;
  int running;
  int stop_fd; /* an eventfd: readable once the thread must stop */
  pid_t pid;   /* the process it runs in: a child of fork() has none */
} server = {.stop_fd = -1};

/* Wakes the threads waiting on the page, whatever became of their fault:
 * a fault the pager found resolved already (another thread's load) placed
 * nothing that would wake them. */
static void wake(void *addr) {
  size_t page = upg__os_page_size();
  struct uffdio_range range = {(uintptr_t)addr & ~(uintptr_t)(page - 1), page};
  (void)upg__os_ioctl(upg__uffd.fd, UFFDIO_WAKE, &range);
}

static void serve_message(const struct uffd_msg *msg) {
  if (msg->event != UFFD_EVENT_PAGEFAULT) return;
  void *addr = (void *)(uintptr_t)msg->arg.pagefault.address;
  uint64_t flags = msg->arg.pagefault.flags;
  int access = flags & UFFD_PAGEFAULT_FLAG_WRITE ? UPG__ACCESS_WRITE : UPG__ACCESS_READ;
  /* Nothing else could ever resolve it: the faulting thread would wait
   * forever. Only memory the runtime registered faults here. */
  if (deliver(addr, access, !(flags & UFFD_PAGEFAULT_FLAG_WP)) != UPG__FAULT_HANDLED)
    upg__fatal("a userfaultfd fault outside every paged region", -EFAULT);
  wake(addr);
}

#define MESSAGES_AT_ONCE 16

static void *serve(void *arg) {
  (void)arg;
  struct uffd_msg msgs[MESSAGES_AT_ONCE];
  for (;;) {
    upg__os_poll2(upg__uffd.fd, server.stop_fd);
    uint64_t stop;
    if (upg__os_read(server.stop_fd, &stop, sizeof stop) > 0) return NULL;
    long n = upg__os_read(upg__uffd.fd, msgs, sizeof msgs);
    for (long i = 0; i < n / (long)sizeof msgs[0]; i++) serve_message(&msgs[i]);
  }
}

/* The thread takes no signal: a program's handler must never run on it. */
static int server_start(void) {
  server.stop_fd = upg__os_eventfd();
  if (server.stop_fd < 0) return server.stop_fd;
  sigset_t saved;
  upg__os_block_signals(&saved);
  int rc = -pthread_create(&server.thread, NULL, serve, NULL);
  upg__os_set_signal_mask(&saved);
  if (rc != 0) {
    upg__os_close(server.stop_fd);
    return rc;
  }
  server.running = 1;
  server.pid = upg__os_getpid();
  return 0;
}

static void server_stop(void) {
  if (!server.running) return;
  if (server.pid == upg__os_getpid()) {
    uint64_t one = 1;
    upg__os_write(server.stop_fd, &one, sizeof one);
    pthread_join(server.thread, NULL);
  }
  upg__os_close(server.stop_fd);
  server.running = 0;
}

/* ---- the source ---------------------------------------------------------*/

static int install(const upg__config_t *cfg) {
  uint64_t missing = 0;
  int fd = open_uffd(cfg, &missing);
  if (fd < 0) return refused(fd, missing);
  upg__uffd.fd = fd;
  upg__uffd.pidfd = upg__os_pidfd_open(upg__os_getpid()); /* without: one madvise a range */
  int rc = upg__uview_setup(cfg);
  if (rc == 0) {
    rc = cfg->uffd_thread ? server_start() : sigbus_start();
    if (rc != 0) upg__uview_teardown();
  }
  if (rc == 0) return 0;
  if (upg__uffd.pidfd >= 0) upg__os_close(upg__uffd.pidfd);
  upg__os_close(fd);
  upg__uffd.fd = upg__uffd.pidfd = -1;
  return rc;
}

static void uninstall(void) {
  if (server.running) server_stop();
  else sigbus_stop();
  upg__uview_teardown();
  if (upg__uffd.pidfd >= 0) upg__os_close(upg__uffd.pidfd);
  upg__os_close(upg__uffd.fd);
  upg__uffd.fd = upg__uffd.pidfd = -1;
}

#define UFFD_TABLE(source_caps)                                                              \
  .version = UPG__FAULT_SOURCE_VERSION, .name = "uffd", .caps = (source_caps),               \
  .trace_id = UPG_TRACE_SOURCE_UFFD, .install = install, .uninstall = uninstall,             \
  .view_create = upg__uview_create, .view_added = upg__uview_added,                          \
  .view_destroy = upg__uview_destroy, .view_forget = upg__uview_forget,                      \
  .view_unmap = upg__uview_unmap, .open = upg__uview_open, .close = upg__uview_close,        \
  .frame_iov = upg__uview_frame_iov, .publish = upg__uview_publish, .free = upg__uview_free, \
  .reusing = upg__uview_reusing

const upg__fault_source_t upg__fault_uffd = {
    UFFD_TABLE(UPG__SOURCE_KNOWS_ACCESS | UPG__SOURCE_KERNEL_NEEDS_PINS |
               UPG__SOURCE_FREES_AT_ONCE | UPG__SOURCE_FILLS_GROWTH),
    .program_action = program_action,
};

const upg__fault_source_t upg__fault_uffd_thread = {
    UFFD_TABLE(UPG__SOURCE_KNOWS_ACCESS | UPG__SOURCE_FREES_AT_ONCE | UPG__SOURCE_FILLS_GROWTH)};
