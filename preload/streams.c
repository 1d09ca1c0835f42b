/* streams.c: FILE objects live outside the paged heap. glibc's fork()
 * walks every open stream to reset its lock (fresetlockfiles) in the child
 * before any atfork handler runs, and the child does not inherit the paged
 * heap (MADV_DONTFORK): a FILE there made fork() fault in the child on
 * memory that is not mapped. So whatever glibc allocates inside a call that
 * creates a stream comes from glibc's own malloc (alloc.c), and free()
 * sends it back there. A stream's buffer, allocated at its first I/O, stays
 * in the paged heap: fork does not touch it. fopen and popen set the flag
 * in their own wrappers (stdio.c, spawn.c). */
#define _GNU_SOURCE
#include <stdio.h>

#include "preload.h"

_Thread_local int upg__glibc_keeps __attribute__((tls_model("initial-exec")));

#define STREAM_CALL(call) \
  do {                    \
    upg__glibc_keeps++;   \
    FILE *fp_ = (call);   \
    upg__glibc_keeps--;   \
    return fp_;           \
  } while (0)

UPG__EXPORT FILE *fdopen(int fd, const char *mode) { STREAM_CALL(UPG__REAL(fdopen)(fd, mode)); }

UPG__EXPORT FILE *fmemopen(void *buf, size_t size, const char *mode) {
  STREAM_CALL(UPG__REAL(fmemopen)(buf, size, mode));
}

UPG__EXPORT FILE *open_memstream(char **buf, size_t *size) {
  STREAM_CALL(UPG__REAL(open_memstream)(buf, size));
}

UPG__EXPORT FILE *fopencookie(void *cookie, const char *mode, cookie_io_functions_t io) {
  STREAM_CALL(UPG__REAL(fopencookie)(cookie, mode, io));
}

UPG__EXPORT FILE *tmpfile64(void) { STREAM_CALL(UPG__REAL(tmpfile64)()); }

UPG__EXPORT FILE *tmpfile(void) { return tmpfile64(); }
