/* os.h: the operating-system primitives the runtime is built on, and the
 * only way the runtime makes a system call.
 *
 * Each one is the system call itself, made with the processor's system-call
 * instruction, not through the C library, because the runtime runs inside a
 * signal handler in threads it does not own:
 * - it never touches errno, so a fault leaves the program's errno as it was;
 * - it is never a cancellation point, so pthread_cancel cannot unwind a
 *   thread while it holds the runtime lock;
 * - it is never a wrapper that the preload interposes (libupager_preload.so
 *   exports read, write, preadv, syscall... and links the runtime in).
 * Every call returns 0 (or a count) or a negative errno. Memory from
 * upg__os_alloc is never paged by the runtime, which is where all of the
 * runtime's own tables live. */
#ifndef UPAGER_OS_H
#define UPAGER_OS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Zeroed, lazily backed memory: untouched pages cost no RAM. NULL on failure. */
void *upg__os_alloc(size_t bytes);
void upg__os_free(void *p, size_t bytes);

/* mmap, munmap, mprotect and madvise; upg__os_map stores the address in *out. */
int upg__os_map(void *addr, size_t len, int prot, int flags, int fd, uint64_t offset, void **out);
int upg__os_unmap(void *addr, size_t len);
int upg__os_protect(void *addr, size_t len, int prot);
int upg__os_advise(void *addr, size_t len, int advice);

size_t upg__os_page_size(void);
uint64_t upg__os_now_ns(void);
pid_t upg__os_getpid(void);
void upg__os_yield(void);

/* Sleeps while *word == expected (or until woken); wakes all sleepers. */
void upg__os_wait(const uint32_t *word, uint32_t expected);
void upg__os_wake_all(const uint32_t *word);

/* Files: open(2) relative to the working directory, a memfd, and the rest.
 * The transfers return the bytes moved; an interrupted one is retried. */
int upg__os_open(const char *path, int flags, int mode);
int upg__os_memfd(const char *name);
int upg__os_close(int fd);
int upg__os_unlink(const char *path);
int upg__os_truncate(int fd, uint64_t len);
int upg__os_fcntl(int fd, int cmd, long arg);
long upg__os_preadv(int fd, const struct iovec *iov, int n, uint64_t offset);
long upg__os_pwritev(int fd, const struct iovec *iov, int n, uint64_t offset);
long upg__os_write(int fd, const void *from, size_t len);
/* Fills buf with random bytes from the kernel. */
int upg__os_random(void *buf, size_t len);

/* Sockets, for the network stores: a TCP connection to an IPv4 address
 * (host byte order), made within timeout_ms; sends and receives that wait
 * at most timeout_ms for the peer, answering -ETIMEDOUT after; a send
 * never raises SIGPIPE. upg__os_recv returns the bytes read, 0 at the
 * peer's end. */
int upg__os_tcp_connect(uint32_t ip, uint16_t port, int timeout_ms);
int upg__os_sendv_all(int fd, const struct iovec *iov, int n, int timeout_ms);
long upg__os_recv(int fd, void *buf, size_t len, int timeout_ms);
/* One receive that does not wait: -EAGAIN when nothing has arrived. */
long upg__os_recv_now(int fd, void *buf, size_t len);
/* Sleeps ns nanoseconds (a signal may end it early). */
void upg__os_sleep_ns(uint64_t ns);

/* Frees [offset, offset+len) of fd's file, which reads back as zeros. */
int upg__os_punch_hole(int fd, uint64_t offset, uint64_t len);

/* Writes all of [from, from+len) to fd at offset: from may be paged
 * memory, which the kernel reads without a fault. */
int upg__os_pwrite_all(int fd, const void *from, size_t len, uint64_t offset);

/* Maps [addr, addr+len) of a writable view, written, in one call;
 * fails before Linux 5.14, and the pages then fault in one by one. */
int upg__os_prefault_write(void *addr, uint64_t len);

/* The userfaultfd source's calls (fault_uffd.c, view_uffd.c). */
int upg__os_userfaultfd(int flags);
/* ioctl(2): 0 (or the call's non-negative result) or a negative errno. */
int upg__os_ioctl(int fd, unsigned long request, void *arg);
int upg__os_pidfd_open(pid_t pid);
/* madvise over n scattered ranges of the calling process in one call;
 * returns the bytes advised, or a negative errno (-EINVAL before 6.13,
 * which takes no pidfd of self, -ENOSYS before 5.10). */
long upg__os_process_madvise(int pidfd, const struct iovec *iov, int n, int advice);
int upg__os_eventfd(void);
/* Reads up to len bytes; -EAGAIN from a non-blocking fd with nothing. */
long upg__os_read(int fd, void *to, size_t len);
/* Sleeps until one of two fds is readable; 0 or a negative errno. */
int upg__os_poll2(int fd_a, int fd_b);
/* Reads a small decimal number from a file (/proc/sys/...), or -1. */
long upg__os_read_number(const char *path);

/* vm.max_map_count, or 65530 when it cannot be read. */
size_t upg__os_max_map_count(void);

/* The calling thread's signal mask: blocks every signal the C library lets
 * a program block (not its own internal ones, which setuid and
 * cancellation need), SIGSEGV included, which the preload's
 * pthread_sigmask would leave out; *saved gets the mask before, when not
 * NULL. upg__os_set_signal_mask puts a saved mask back. */
void upg__os_block_signals(sigset_t *saved);
void upg__os_set_signal_mask(const sigset_t *mask);
/* The calling thread's signal mask, as the kernel holds it. */
void upg__os_signal_mask(sigset_t *out);

/* Widens the mask the kernel blocks while signo's installed handler runs
 * to every signal upg__os_block_signals blocks, keeping the handler, its
 * flags and its restorer. */
int upg__os_block_all_in_handler(int signo);

/* Writes what fd takes now of [from, from+len), without waiting for room:
 * 0 when all went, -EAGAIN when some of it would have had to wait and was
 * dropped. A regular file never waits. */
int upg__os_write_nowait(int fd, const void *from, size_t len);

/* Writes a message to stderr, waiting for room: for a last word before
 * the process ends. */
void upg__os_write_stderr(const char *msg);
/* Writes a warning to stderr without waiting: it is dropped when stderr is
 * a full pipe (a paused `| less`), which must not stop the program. */
void upg__os_warn(const char *msg);

#endif
