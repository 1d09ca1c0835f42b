/* os.c: Linux implementations of the primitives in os.h, each a system
 * call made directly (see os.h for why not through the C library). */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The kernel's signal set is 64 bits wide on every architecture here. */
#define KERNEL_SIGSET_BYTES 8

#if defined(__x86_64__)
static long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory", "cc");
  return x0;
}
#else
/* Elsewhere the C library's syscall(), with errno kept as it was: a
 * cancellation point on no architecture, but interposed by the preload. */
static long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  int saved = errno;
  long ret = syscall(nr, a, b, c, d, e, f);
  if (ret == -1) ret = -errno;
  errno = saved;
  return ret;
}
#endif

#define SYS0(nr) sys6(nr, 0, 0, 0, 0, 0, 0)
#define SYS1(nr, a) sys6(nr, (long)(a), 0, 0, 0, 0, 0)
#define SYS2(nr, a, b) sys6(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define SYS3(nr, a, b, c) sys6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SYS4(nr, a, b, c, d) sys6(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* The call's result as 0 or a negative errno. */
static int status(long ret) { return ret < 0 ? (int)ret : 0; }

/* A transfer interrupted before it moved anything is made again. */
static long restarting(long nr, long a, long b, long c, long d, long e) {
  long ret;
  while ((ret = sys6(nr, a, b, c, d, e, 0)) == -EINTR) continue;
  return ret;
}

int upg__os_map(void *addr, size_t len, int prot, int flags, int fd, uint64_t offset, void **out) {
  long ret = sys6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)offset);
  if (ret < 0 && ret > -4096) return (int)ret;
  *out = (void *)ret;
  return 0;
}

int upg__os_unmap(void *addr, size_t len) { return status(SYS2(SYS_munmap, addr, len)); }

int upg__os_protect(void *addr, size_t len, int prot) {
  return status(SYS3(SYS_mprotect, addr, len, prot));
}

int upg__os_advise(void *addr, size_t len, int advice) {
  return status(SYS3(SYS_madvise, addr, len, advice));
}

void *upg__os_alloc(size_t bytes) {
  void *p;
  int rc = upg__os_map(NULL, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &p);
  return rc == 0 ? p : NULL;
}

void upg__os_free(void *p, size_t bytes) {
  if (p != NULL) upg__os_unmap(p, bytes);
}

size_t upg__os_page_size(void) {
  static size_t page;
  if (page == 0) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

/* The vDSO's clock: no system call, and it sets errno only on a bad clock. */
uint64_t upg__os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

pid_t upg__os_getpid(void) { return (pid_t)SYS0(SYS_getpid); }

void upg__os_yield(void) { (void)SYS0(SYS_sched_yield); }

void upg__os_wait(const uint32_t *word, uint32_t expected) {
  (void)SYS4(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL);
}

void upg__os_wake_all(const uint32_t *word) {
  (void)SYS3(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX);
}

int upg__os_open(const char *path, int flags, int mode) {
  return (int)restarting(SYS_openat, AT_FDCWD, (long)path, flags, mode, 0);
}

int upg__os_memfd(const char *name) { return (int)SYS2(SYS_memfd_create, name, MFD_CLOEXEC); }

int upg__os_close(int fd) { return status(SYS1(SYS_close, fd)); }

int upg__os_unlink(const char *path) { return status(SYS3(SYS_unlinkat, AT_FDCWD, path, 0)); }

int upg__os_truncate(int fd, uint64_t len) {
  return status(restarting(SYS_ftruncate, fd, (long)len, 0, 0, 0));
}

int upg__os_fcntl(int fd, int cmd, long arg) { return (int)SYS3(SYS_fcntl, fd, cmd, arg); }

long upg__os_preadv(int fd, const struct iovec *iov, int n, uint64_t offset) {
  return restarting(SYS_preadv, fd, (long)iov, n, (long)offset, 0);
}

long upg__os_pwritev(int fd, const struct iovec *iov, int n, uint64_t offset) {
  return restarting(SYS_pwritev, fd, (long)iov, n, (long)offset, 0);
}

long upg__os_write(int fd, const void *from, size_t len) {
  return restarting(SYS_write, fd, (long)from, (long)len, 0, 0);
}

int upg__os_random(void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    long n = restarting(SYS_getrandom, (long)p, (long)len, 0, 0, 0);
    if (n <= 0) return n < 0 ? (int)n : -EIO;
    p += n, len -= (size_t)n;
  }
  return 0;
}

/* Waits until fd is ready for `events`: 0, -ETIMEDOUT, or the error. */
static int wait_ready(int fd, short events, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = events};
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
  long rc;
  while ((rc = SYS4(SYS_ppoll, &p, 1, &ts, NULL)) == -EINTR) continue;
  if (rc < 0) return (int)rc;
  if (rc == 0) return -ETIMEDOUT;
  return 0;
}

/* Non-blocking from the start, so that a connect to a node that does not
 * answer ends at the timeout, not at the kernel's minutes. */
int upg__os_tcp_connect(uint32_t ip, uint16_t port, int timeout_ms) {
  int fd = (int)SYS3(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fd;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(ip)}};
  int one = 1, rc = (int)SYS3(SYS_connect, fd, &sa, sizeof sa);
  if (rc == -EINPROGRESS && (rc = wait_ready(fd, POLLOUT, timeout_ms)) == 0) {
    int err = 0;
    socklen_t len = sizeof err;
    rc = (int)sys6(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, (long)&err, (long)&len, 0);
    if (rc == 0) rc = -err;
  }
  if (rc == 0)
    rc = status(sys6(SYS_setsockopt, fd, IPPROTO_TCP, TCP_NODELAY, (long)&one, sizeof one, 0));
  if (rc != 0) {
    upg__os_close(fd);
    return rc;
  }
  return fd;
}

int upg__os_sendv_all(int fd, const struct iovec *iov, int n, int timeout_ms) {
  struct iovec rest[64];
  while (n > 0) {
    int k = n < 64 ? n : 64;
    memcpy(rest, iov, (size_t)k * sizeof *iov);
    struct iovec *v = rest;
    int left = k;
    while (left > 0) {
      struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)left};
      long sent = SYS3(SYS_sendmsg, fd, &msg, MSG_NOSIGNAL);
      if (sent == -EAGAIN) {
        int rc = wait_ready(fd, POLLOUT, timeout_ms);
        if (rc != 0) return rc;
        continue;
      }
      if (sent == -EINTR) continue;
      if (sent < 0) return (int)sent;
      while (left > 0 && (size_t)sent >= v->iov_len) sent -= (long)v->iov_len, v++, left--;
      if (left > 0) v->iov_base = (char *)v->iov_base + sent, v->iov_len -= (size_t)sent;
    }
    iov += k, n -= k;
  }
  return 0;
}

long upg__os_recv_now(int fd, void *buf, size_t len) {
  long got;
  while ((got = sys6(SYS_recvfrom, fd, (long)buf, (long)len, MSG_DONTWAIT, 0, 0)) == -EINTR)
    continue;
  return got;
}

long upg__os_recv(int fd, void *buf, size_t len, int timeout_ms) {
  for (;;) {
    long got = sys6(SYS_recvfrom, fd, (long)buf, (long)len, MSG_DONTWAIT, 0, 0);
    if (got != -EAGAIN && got != -EINTR) return got;
    if (got == -EAGAIN) {
      int rc = wait_ready(fd, POLLIN, timeout_ms);
      if (rc != 0) return rc;
    }
  }
}

void upg__os_sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  (void)SYS2(SYS_nanosleep, &ts, NULL);
}

int upg__os_punch_hole(int fd, uint64_t offset, uint64_t len) {
  return status(restarting(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                           (long)offset, (long)len, 0));
}

int upg__os_pwrite_all(int fd, const void *from, size_t len, uint64_t offset) {
  const char *p = from;
  while (len > 0) {
    long k = restarting(SYS_pwrite64, fd, (long)p, (long)len, (long)offset, 0);
    if (k <= 0) return k < 0 ? (int)k : -EIO;
    p += k;
    len -= (size_t)k;
    offset += (uint64_t)k;
  }
  return 0;
}

int upg__os_prefault_write(void *addr, uint64_t len) {
  return upg__os_advise(addr, len, MADV_POPULATE_WRITE);
}

long upg__os_read_number(const char *path) {
  char buf[32];
  int fd = upg__os_open(path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  long n = restarting(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0);
  upg__os_close(fd);
  long parsed = -1;
  for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
    parsed = (parsed < 0 ? 0 : parsed * 10) + (buf[i] - '0');
  return parsed;
}

size_t upg__os_max_map_count(void) {
  long count = upg__os_read_number("/proc/sys/vm/max_map_count");
  return count > 0 ? (size_t)count : 65530;
}

int upg__os_userfaultfd(int flags) { return (int)SYS1(SYS_userfaultfd, flags); }

int upg__os_ioctl(int fd, unsigned long request, void *arg) {
  return (int)SYS3(SYS_ioctl, fd, request, arg);
}

int upg__os_pidfd_open(pid_t pid) { return (int)SYS2(SYS_pidfd_open, pid, 0); }

long upg__os_process_madvise(int pidfd, const struct iovec *iov, int n, int advice) {
  return sys6(SYS_process_madvise, pidfd, (long)iov, n, advice, 0, 0);
}

int upg__os_eventfd(void) { return (int)SYS2(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK); }

long upg__os_read(int fd, void *to, size_t len) {
  return restarting(SYS_read, fd, (long)to, (long)len, 0, 0);
}

int upg__os_poll2(int fd_a, int fd_b) {
  struct pollfd fds[2] = {{fd_a, POLLIN, 0}, {fd_b, POLLIN, 0}};
  long ret = restarting(SYS_ppoll, (long)fds, 2, 0, 0, 0);
  return ret < 0 ? (int)ret : 0;
}

/* The C library's full set leaves out its own internal signals. */
static void every_signal(sigset_t *set) { sigfillset(set); }

void upg__os_block_signals(sigset_t *saved) {
  sigset_t all;
  every_signal(&all);
  (void)SYS4(SYS_rt_sigprocmask, SIG_BLOCK, &all, saved, KERNEL_SIGSET_BYTES);
}

void upg__os_signal_mask(sigset_t *out) {
  sigemptyset(out);
  (void)SYS4(SYS_rt_sigprocmask, SIG_BLOCK, NULL, out, KERNEL_SIGSET_BYTES);
}

void upg__os_set_signal_mask(const sigset_t *mask) {
  (void)SYS4(SYS_rt_sigprocmask, SIG_SETMASK, mask, NULL, KERNEL_SIGSET_BYTES);
}

/* The kernel's struct sigaction, which the C library's does not match. */
struct kernel_sigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

int upg__os_block_all_in_handler(int signo) {
  struct kernel_sigaction action;
  sigset_t all;
  int rc = status(SYS4(SYS_rt_sigaction, signo, NULL, &action, KERNEL_SIGSET_BYTES));
  if (rc != 0) return rc;
  every_signal(&all);
  memcpy(&action.mask, &all, sizeof action.mask);
  return status(SYS4(SYS_rt_sigaction, signo, &action, NULL, KERNEL_SIGSET_BYTES));
}

static int write_whole(int fd, const char *p, size_t len) {
  while (len > 0) {
    long n = upg__os_write(fd, p, len);
    if (n <= 0) return n < 0 ? (int)n : -EIO;
    p += n, len -= (size_t)n;
  }
  return 0;
}

/* A socket takes MSG_DONTWAIT; a pipe or a terminal is opened anew, non
 * blocking, through /proc, so that the program's own description of it
 * keeps its flags. */
int upg__os_write_nowait(int fd, const void *from, size_t len) {
  struct stat st;
  if (SYS2(SYS_fstat, fd, &st) != 0) return -EBADF;
  if (S_ISSOCK(st.st_mode)) {
    long n = sys6(SYS_sendto, fd, (long)from, (long)len, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
    return n == (long)len ? 0 : n < 0 ? (int)n : -EAGAIN;
  }
  if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) return write_whole(fd, from, len);
  char path[32] = "/proc/self/fd/", digits[12];
  int n = 0, at = (int)strlen(path);
  unsigned v = (unsigned)fd;
  do digits[n++] = (char)('0' + v % 10), v /= 10;
  while (v > 0);
  while (n > 0) path[at++] = digits[--n];
  path[at] = '\0';
  int nowait = upg__os_open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0);
  if (nowait < 0) return -EAGAIN;
  int rc = write_whole(nowait, from, len);
  upg__os_close(nowait);
  return rc;
}

void upg__os_write_stderr(const char *msg) { (void)write_whole(STDERR_FILENO, msg, strlen(msg)); }

void upg__os_warn(const char *msg) { (void)upg__os_write_nowait(STDERR_FILENO, msg, strlen(msg)); }
