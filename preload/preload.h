/* preload.h: what the files of libupager_preload.so share: the real libc
 * functions behind the wrappers (real.c) and pinning the buffers that a
 * system call hands to the kernel (pin.c). */
#ifndef UPAGER_PRELOAD_H
#define UPAGER_PRELOAD_H

#include <dirent.h>
#include <mqueue.h>
#include <time.h>
#include <pthread.h>
#include <signal.h>
#include <sigsegv.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#define UPG__EXPORT __attribute__((visibility("default")))

/* ---- real.c: the next definition of each wrapped function ---------------
 * X(name, return type, parameter list) */
#define UPG__REAL_FUNCTIONS(X)                                                             \
  X(read, ssize_t, (int, void *, size_t))                                                  \
  X(write, ssize_t, (int, const void *, size_t))                                           \
  X(pread64, ssize_t, (int, void *, size_t, off_t))                                        \
  X(pwrite64, ssize_t, (int, const void *, size_t, off_t))                                 \
  X(readv, ssize_t, (int, const struct iovec *, int))                                      \
  X(writev, ssize_t, (int, const struct iovec *, int))                                     \
  X(preadv64, ssize_t, (int, const struct iovec *, int, off_t))                            \
  X(pwritev64, ssize_t, (int, const struct iovec *, int, off_t))                           \
  X(recv, ssize_t, (int, void *, size_t, int))                                             \
  X(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *))         \
  X(recvmsg, ssize_t, (int, struct msghdr *, int))                                         \
  X(send, ssize_t, (int, const void *, size_t, int))                                       \
  X(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t)) \
  X(sendmsg, ssize_t, (int, const struct msghdr *, int))                                   \
  X(getdents64, ssize_t, (int, void *, size_t))                                            \
  X(getrandom, ssize_t, (void *, size_t, unsigned))                                        \
  X(open64, int, (const char *, int, ...))                                                 \
  X(openat64, int, (int, const char *, int, ...))                                          \
  X(stat64, int, (const char *, struct stat *))                                            \
  X(lstat64, int, (const char *, struct stat *))                                           \
  X(fstat64, int, (int, struct stat *))                                                    \
  X(fstatat64, int, (int, const char *, struct stat *, int))                               \
  X(access, int, (const char *, int))                                                      \
  X(unlink, int, (const char *))                                                           \
  X(rename, int, (const char *, const char *))                                             \
  X(mkdir, int, (const char *, mode_t))                                                    \
  X(rmdir, int, (const char *))                                                            \
  X(chdir, int, (const char *))                                                            \
  X(readlink, ssize_t, (const char *, char *, size_t))                                     \
  X(opendir, DIR *, (const char *))                                                        \
  X(readdir64, struct dirent64 *, (DIR *))                                                 \
  X(getcwd, char *, (char *, size_t))                                                      \
  X(syscall, long, (long, ...))                                                            \
  X(fopen64, FILE *, (const char *, const char *))                                         \
  X(freopen64, FILE *, (const char *, const char *, FILE *))                               \
  X(fread, size_t, (void *, size_t, size_t, FILE *))                                       \
  X(fread_unlocked, size_t, (void *, size_t, size_t, FILE *))                              \
  X(fwrite, size_t, (const void *, size_t, size_t, FILE *))                                \
  X(fwrite_unlocked, size_t, (const void *, size_t, size_t, FILE *))                       \
  X(fgets, char *, (char *, int, FILE *))                                                  \
  X(fgets_unlocked, char *, (char *, int, FILE *))                                         \
  X(getdelim, ssize_t, (char **, size_t *, int, FILE *))                                   \
  X(fgetc, int, (FILE *))                                                                  \
  X(getc_unlocked, int, (FILE *))                                                          \
  X(__uflow, int, (FILE *))                                                                \
  X(__underflow, int, (FILE *))                                                            \
  X(fputs, int, (const char *, FILE *))                                                    \
  X(fputs_unlocked, int, (const char *, FILE *))                                           \
  X(fputc, int, (int, FILE *))                                                             \
  X(putc_unlocked, int, (int, FILE *))                                                     \
  X(__overflow, int, (FILE *, int))                                                        \
  X(vfprintf, int, (FILE *, const char *, va_list))                                        \
  X(__vfprintf_chk, int, (FILE *, int, const char *, va_list))                             \
  X(__isoc99_vfscanf, int, (FILE *, const char *, va_list))                                \
  X(fflush, int, (FILE *))                                                                 \
  X(fflush_unlocked, int, (FILE *))                                                        \
  X(fclose, int, (FILE *))                                                                 \
  X(fseeko64, int, (FILE *, off_t, int))                                                   \
  X(pthread_sigmask, int, (int, const sigset_t *, sigset_t *))                             \
  X(sigprocmask, int, (int, const sigset_t *, sigset_t *))                                 \
  X(sigaction, int, (int, const struct sigaction *, struct sigaction *))                   \
  X(signal, sighandler_t, (int, sighandler_t))                                             \
  X(sigsegv_install_handler, int, (sigsegv_handler_t))                                     \
  X(sigsegv_deinstall_handler, void, (void))                                               \
  X(posix_spawn, int,                                                                      \
    (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, \
     char *const[], char *const[]))                                                        \
  X(posix_spawnp, int,                                                                     \
    (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, \
     char *const[], char *const[]))                                                        \
  X(system, int, (const char *))                                                           \
  X(popen, FILE *, (const char *, const char *))                                           \
  X(pthread_create, int, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)) \
  X(fdopen, FILE *, (int, const char *))                                                   \
  X(fmemopen, FILE *, (void *, size_t, const char *))                                      \
  X(open_memstream, FILE *, (char **, size_t *))                                           \
  X(fopencookie, FILE *, (void *, const char *, cookie_io_functions_t))                    \
  X(tmpfile64, FILE *, (void))                                                             \
  X(malloc, void *, (size_t))                                                              \
  X(calloc, void *, (size_t, size_t))                                                      \
  X(realloc, void *, (void *, size_t))                                                     \
  X(free, void, (void *))                                                                  \
  X(malloc_usable_size, size_t, (void *))                                                  \
  X(memalign, void *, (size_t, size_t))                                                    \
  X(timer_create, int, (clockid_t, struct sigevent *, timer_t *))                          \
  X(mq_notify, int, (mqd_t, const struct sigevent *))

typedef struct upg__real {
#define UPG__REAL_FIELD_(name, ret, params) ret(*name) params;
  UPG__REAL_FUNCTIONS(UPG__REAL_FIELD_)
#undef UPG__REAL_FIELD_
} upg__real_t;

extern upg__real_t upg__real;
/* Fills the table. Run from the library's constructor, before the heap
 * exists, so the fault handler never resolves a symbol. */
void upg__real_resolve(void);
#define UPG__REAL(name)                                         \
  (__builtin_expect(upg__real.name != NULL, 1) ? upg__real.name \
                                               : (upg__real_resolve(), upg__real.name))

/* ---- streams.c: what glibc keeps for itself, outside the paged heap -----
 * Set while this thread is inside a call whose allocations glibc keeps and
 * reads where a fault cannot be taken: a FILE (fork walks every stream in
 * the child, which has no paged heap), a SIGEV_THREAD timer (its helper
 * thread reads it with every signal blocked, notify.c). What glibc
 * allocates then comes from glibc's own malloc (alloc.c). */
extern _Thread_local int upg__glibc_keeps __attribute__((tls_model("initial-exec")));

/* ---- pin.c: buffers made resident and pinned for one call -----------------*/
typedef struct upg__pin {
  const char *addr;
  size_t len; /* 0: nothing pinned */
} upg__pin_t;

/* Pins the start of [addr, addr+len) if it lies in the paged heap and
 * returns how much of it the call may use: all of it, or a piece no larger
 * than the pin limit. Memory outside the heap needs no pin: returns len. */
size_t upg__pin_begin(upg__pin_t *pin, const void *addr, size_t len)
    __attribute__((access(none, 2))); /* the memory itself is not read */
/* Pins all of [addr, addr+len) or ends the process with a message. */
void upg__pin_whole(upg__pin_t *pin, const void *addr, size_t len) __attribute__((access(none, 2)));
/* Pins a NUL-terminated string that the kernel will read. */
void upg__pin_string(upg__pin_t *pin, const char *s);
/* Releases the pin; keeps errno. */
void upg__pin_end(upg__pin_t *pin);

/* The safety net: a call that failed with EFAULT on paged memory ends the
 * process with a message naming the call, rather than letting a program
 * carry on after a lost read or write. */
void upg__efault_check(long rc, const char *call, const void *addr);
_Noreturn void upg__efault_fatal(const char *call, const void *addr);

/* ---- lifecycle.c --------------------------------------------------------*/
/* Called once, by the thread that started the heap. */
void upg__preload_heap_started(void);

/* ---- stdio.c ------------------------------------------------------------*/
/* Writes out every stream's buffer with the buffer pinned. */
void upg__stdio_flush_all(void);

#endif
