/* stdio.c: stdio wrappers. A FILE's buffer is malloc'd, so it lives in the
 * paged heap, and glibc fills and drains it with internal read(2) and
 * write(2) calls that no wrapper sees. So each stdio call that may reach
 * the kernel pins the stream's buffer for its duration (and, for fread and
 * fwrite, the caller's buffer, which glibc hands to the kernel directly
 * for large transfers).
 *
 * Most calls never reach the kernel: the data is already in the buffer, or
 * fits in it. Those take a fast path with no pin, decided from the FILE's
 * public pointers under the stream's lock. The safety net: a call that
 * leaves the stream in error with errno EFAULT ends the process. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include "preload_api.h"
#include "preload.h"

/* glibc's FILE flags (libio.h), stable since the ABI of 2.1. */
#define STREAM_UNBUFFERED 0x0002
#define STREAM_ERR_SEEN 0x0020
#define STREAM_LINE_BUF 0x0200
#define STREAM_PUTTING 0x0800

/* A formatted line at most this long goes through the fwrite fast path. */
#define FORMAT_BUFFER 1024

extern void _IO_doallocbuf(FILE *fp);
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern FILE *_IO_list_all;
extern _Noreturn void __chk_fail(void);
extern int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *format,
                           va_list ap);

/* ---- fast-path tests ----------------------------------------------------*/

/* Bytes readable from the buffer without a refill. */
static size_t buffered_input(const FILE *fp) {
  if (fp->_mode > 0 || (fp->_flags & STREAM_PUTTING) || fp->_IO_read_ptr >= fp->_IO_read_end)
    return 0;
  return (size_t)(fp->_IO_read_end - fp->_IO_read_ptr);
}

/* Whether `len` bytes fit into a fully buffered stream without a flush. */
static int output_fits(const FILE *fp, size_t len) {
  return fp->_mode <= 0 && (fp->_flags & STREAM_PUTTING) &&
         !(fp->_flags & (STREAM_UNBUFFERED | STREAM_LINE_BUF)) &&
         fp->_IO_write_ptr < fp->_IO_write_end &&
         len < (size_t)(fp->_IO_write_end - fp->_IO_write_ptr);
}

/* ---- the slow path: the stream's buffer pinned --------------------------*/

typedef struct stream_call {
  upg__pin_t pin;
  int had_error;
  int saved_errno;
} stream_call_t;

/* ---- buffers that stay pinned --------------------------------------------
 * Pinning costs system calls, and a stream's buffer reaches the kernel at
 * every refill or flush: the first STICKY_STREAMS buffers to need a pin
 * keep it until their stream is closed, within a small share of the budget.
 * An entry whose stream changed its buffer (or was closed behind the
 * wrappers' back, as pclose does) is re-pinned when next seen. */
#define STICKY_STREAMS 16
#define STICKY_SHARE 16 /* of the budget, at most, in sticky pins */

typedef struct sticky_pin {
  const FILE *fp;
  const char *base;
  size_t len, pages;
} sticky_pin_t;

static sticky_pin_t sticky[STICKY_STREAMS];
static size_t sticky_pages;
static pthread_mutex_t sticky_lock = PTHREAD_MUTEX_INITIALIZER;

static void sticky_drop(sticky_pin_t *e) {
  if (upg_unpin(e->base, e->len) != 0) upg__fatal("cannot unpin a stream's buffer", 0);
  sticky_pages -= e->pages;
  *e = (sticky_pin_t){NULL, NULL, 0, 0};
}

/* 1 when [base, base+len), fp's buffer, is pinned for good. */
static int sticky_pin(const FILE *fp, const char *base, size_t len) {
  size_t unit = upg__paging_unit();
  size_t pages = (((uintptr_t)base & (unit - 1)) + len + unit - 1) / unit;
  sticky_pin_t *free_entry = NULL;
  int pinned = 0;
  pthread_mutex_lock(&sticky_lock);
  for (int i = 0; i < STICKY_STREAMS && !pinned; i++) {
    if (sticky[i].fp == fp && (sticky[i].base != base || sticky[i].len != len))
      sticky_drop(&sticky[i]);
    pinned = sticky[i].fp == fp;
    if (sticky[i].fp == NULL && free_entry == NULL) free_entry = &sticky[i];
  }
  if (!pinned && free_entry != NULL &&
      (sticky_pages + pages) * STICKY_SHARE <= upg__frame_budget() && upg_pin(base, len) == 0) {
    *free_entry = (sticky_pin_t){fp, base, len, pages};
    sticky_pages += pages;
    pinned = 1;
  }
  pthread_mutex_unlock(&sticky_lock);
  return pinned;
}

static void sticky_forget(const FILE *fp) {
  pthread_mutex_lock(&sticky_lock);
  for (int i = 0; i < STICKY_STREAMS; i++)
    if (sticky[i].fp == fp) sticky_drop(&sticky[i]);
  pthread_mutex_unlock(&sticky_lock);
}

static void pin_buffer(stream_call_t *c, FILE *fp, int allocate) {
  c->pin.len = 0;
  /* glibc mallocs the buffer at a stream's first operation and fills it at
   * once: allocate it here, so that it can be pinned first. */
  if (fp->_IO_buf_base == NULL && allocate) {
    flockfile(fp);
    if (fp->_IO_buf_base == NULL) _IO_doallocbuf(fp);
    funlockfile(fp);
  }
  const char *base = fp->_IO_buf_base;
  size_t len = (size_t)(fp->_IO_buf_end - fp->_IO_buf_base);
  if (base == NULL || !upg__heap_contains(base) || sticky_pin(fp, base, len)) return;
  upg__pin_whole(&c->pin, base, len);
}

static void stream_enter(stream_call_t *c, FILE *fp) {
  c->had_error = (fp->_flags & STREAM_ERR_SEEN) != 0;
  c->saved_errno = errno;
  errno = 0;
  pin_buffer(c, fp, 1);
}

static void stream_leave(stream_call_t *c, FILE *fp, const char *call) {
  upg__pin_end(&c->pin);
  if (!c->had_error && (fp->_flags & STREAM_ERR_SEEN) && errno == EFAULT)
    upg__efault_fatal(call, fp->_IO_buf_base);
  if (errno == 0) errno = c->saved_errno;
}

/* For a stream that was just closed: only the pin to release. */
static void stream_leave_closed(stream_call_t *c) {
  upg__pin_end(&c->pin);
  if (errno == 0) errno = c->saved_errno;
}

/* Evaluates `call` on fp with its buffer pinned, as `type`. */
#define PINNED(type, fp, name, call) \
  do {                               \
    stream_call_t c_;                \
    stream_enter(&c_, fp);           \
    type r_ = call;                  \
    stream_leave(&c_, fp, name);     \
    return r_;                       \
  } while (0)

/* ---- fread and fwrite: the caller's buffer too --------------------------*/

typedef size_t (*fread_fn)(void *, size_t, size_t, FILE *);
typedef size_t (*fwrite_fn)(const void *, size_t, size_t, FILE *);

/* glibc moves data between the kernel and the caller's buffer directly
 * only for a transfer at least as large as the stream's buffer; anything
 * smaller goes through the stream's buffer, and the caller's needs no pin. */
static size_t user_pin_begin(upg__pin_t *pin, const FILE *fp, const char *p, size_t len) {
  size_t buffer = (size_t)(fp->_IO_buf_end - fp->_IO_buf_base);
  if (len < buffer) {
    pin->len = 0;
    return len;
  }
  return upg__pin_begin(pin, p, len);
}

static size_t read_pinned(void *ptr, size_t bytes, FILE *fp, fread_fn real, const char *name) {
  stream_call_t c;
  size_t done = 0;
  stream_enter(&c, fp);
  while (done < bytes) {
    upg__pin_t pin;
    size_t piece = user_pin_begin(&pin, fp, (char *)ptr + done, bytes - done);
    size_t n = real((char *)ptr + done, 1, piece, fp);
    upg__pin_end(&pin);
    done += n;
    if (n < piece) break;
  }
  stream_leave(&c, fp, name);
  return done;
}

static size_t write_pinned(const void *ptr, size_t bytes, FILE *fp, fwrite_fn real,
                           const char *name) {
  stream_call_t c;
  size_t done = 0;
  stream_enter(&c, fp);
  while (done < bytes) {
    upg__pin_t pin;
    size_t piece = user_pin_begin(&pin, fp, (const char *)ptr + done, bytes - done);
    size_t n = real((const char *)ptr + done, 1, piece, fp);
    upg__pin_end(&pin);
    done += n;
    if (n < piece) break;
  }
  stream_leave(&c, fp, name);
  return done;
}

static size_t do_fread(void *ptr, size_t size, size_t count, FILE *fp, fread_fn real,
                       const char *name) {
  size_t bytes;
  if (__builtin_mul_overflow(size, count, &bytes) || bytes == 0 || buffered_input(fp) >= bytes)
    return real(ptr, size, count, fp);
  return read_pinned(ptr, bytes, fp, real, name) / size;
}

static size_t do_fwrite(const void *ptr, size_t size, size_t count, FILE *fp, fwrite_fn real,
                        const char *name) {
  size_t bytes;
  if (__builtin_mul_overflow(size, count, &bytes) || bytes == 0 || output_fits(fp, bytes))
    return real(ptr, size, count, fp);
  return write_pinned(ptr, bytes, fp, real, name) / size;
}

UPG__EXPORT size_t(fread)(void *ptr, size_t size, size_t count, FILE *fp) {
  flockfile(fp);
  size_t n = do_fread(ptr, size, count, fp, UPG__REAL(fread_unlocked), "fread");
  funlockfile(fp);
  return n;
}

UPG__EXPORT size_t(fread_unlocked)(void *ptr, size_t size, size_t count, FILE *fp) {
  return do_fread(ptr, size, count, fp, UPG__REAL(fread_unlocked), "fread_unlocked");
}

UPG__EXPORT size_t(fwrite)(const void *ptr, size_t size, size_t count, FILE *fp) {
  flockfile(fp);
  size_t n = do_fwrite(ptr, size, count, fp, UPG__REAL(fwrite_unlocked), "fwrite");
  funlockfile(fp);
  return n;
}

UPG__EXPORT size_t(fwrite_unlocked)(const void *ptr, size_t size, size_t count, FILE *fp) {
  return do_fwrite(ptr, size, count, fp, UPG__REAL(fwrite_unlocked), "fwrite_unlocked");
}

/* ---- line and character input -------------------------------------------*/

static int line_buffered(const FILE *fp, int delim, size_t max) {
  size_t have = buffered_input(fp);
  if (have > max) have = max;
  return have > 0 && (have == max || memchr(fp->_IO_read_ptr, delim, have) != NULL);
}

static char *do_fgets(char *s, int n, FILE *fp) {
  if (n > 1 && line_buffered(fp, '\n', (size_t)n - 1)) return UPG__REAL(fgets_unlocked)(s, n, fp);
  PINNED(char *, fp, "fgets", UPG__REAL(fgets_unlocked)(s, n, fp));
}

UPG__EXPORT char *(fgets)(char *s, int n, FILE *fp) {
  flockfile(fp);
  char *r = do_fgets(s, n, fp);
  funlockfile(fp);
  return r;
}

UPG__EXPORT char *(fgets_unlocked)(char *s, int n, FILE *fp) { return do_fgets(s, n, fp); }

UPG__EXPORT char *__fgets_chk(char *s, size_t size, int n, FILE *fp) {
  if (n > 0 && (size_t)n > size) __chk_fail();
  return fgets(s, n, fp);
}

static ssize_t do_getdelim(char **line, size_t *cap, int delim, FILE *fp) {
  if (line_buffered(fp, delim, SIZE_MAX)) return UPG__REAL(getdelim)(line, cap, delim, fp);
  PINNED(ssize_t, fp, "getdelim", UPG__REAL(getdelim)(line, cap, delim, fp));
}

UPG__EXPORT ssize_t(getdelim)(char **line, size_t *cap, int delim, FILE *fp) {
  flockfile(fp);
  ssize_t n = do_getdelim(line, cap, delim, fp);
  funlockfile(fp);
  return n;
}

UPG__EXPORT ssize_t __getdelim(char **line, size_t *cap, int delim, FILE *fp) {
  return getdelim(line, cap, delim, fp);
}

UPG__EXPORT ssize_t(getline)(char **line, size_t *cap, FILE *fp) {
  return getdelim(line, cap, '\n', fp);
}

static int do_getc(FILE *fp) {
  if (buffered_input(fp) > 0) return UPG__REAL(getc_unlocked)(fp);
  PINNED(int, fp, "getc", UPG__REAL(getc_unlocked)(fp));
}

UPG__EXPORT int(fgetc)(FILE *fp) {
  flockfile(fp);
  int c = do_getc(fp);
  funlockfile(fp);
  return c;
}

UPG__EXPORT int(getc)(FILE *fp) { return fgetc(fp); }
UPG__EXPORT int(getchar)(void) { return fgetc(stdin); }
UPG__EXPORT int(fgetc_unlocked)(FILE *fp) { return do_getc(fp); }
UPG__EXPORT int(getc_unlocked)(FILE *fp) { return do_getc(fp); }
UPG__EXPORT int(getchar_unlocked)(void) { return do_getc(stdin); }

/* getc_unlocked and putc_unlocked are macros that call these when the
 * buffer is empty or full. */
UPG__EXPORT int __uflow(FILE *fp) { PINNED(int, fp, "getc", UPG__REAL(__uflow)(fp)); }
UPG__EXPORT int __underflow(FILE *fp) { PINNED(int, fp, "getc", UPG__REAL(__underflow)(fp)); }
UPG__EXPORT int __overflow(FILE *fp, int ch) {
  PINNED(int, fp, "putc", UPG__REAL(__overflow)(fp, ch));
}

UPG__EXPORT int __isoc99_vfscanf(FILE *fp, const char *format, va_list ap) {
  PINNED(int, fp, "fscanf", UPG__REAL(__isoc99_vfscanf)(fp, format, ap));
}

UPG__EXPORT int __isoc99_fscanf(FILE *fp, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  int n = __isoc99_vfscanf(fp, format, ap);
  va_end(ap);
  return n;
}

UPG__EXPORT int __isoc99_scanf(const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  int n = __isoc99_vfscanf(stdin, format, ap);
  va_end(ap);
  return n;
}

UPG__EXPORT int __isoc99_vscanf(const char *format, va_list ap) {
  return __isoc99_vfscanf(stdin, format, ap);
}

/* ---- line and character output ------------------------------------------*/

static int do_putc(int ch, FILE *fp) {
  if (output_fits(fp, 1)) return UPG__REAL(putc_unlocked)(ch, fp);
  PINNED(int, fp, "putc", UPG__REAL(putc_unlocked)(ch, fp));
}

UPG__EXPORT int(fputc)(int ch, FILE *fp) {
  flockfile(fp);
  int r = do_putc(ch, fp);
  funlockfile(fp);
  return r;
}

UPG__EXPORT int(putc)(int ch, FILE *fp) { return fputc(ch, fp); }
UPG__EXPORT int(putchar)(int ch) { return fputc(ch, stdout); }
UPG__EXPORT int(fputc_unlocked)(int ch, FILE *fp) { return do_putc(ch, fp); }
UPG__EXPORT int(putc_unlocked)(int ch, FILE *fp) { return do_putc(ch, fp); }
UPG__EXPORT int(putchar_unlocked)(int ch) { return do_putc(ch, stdout); }

static int do_fputs(const char *s, FILE *fp) {
  size_t len = strlen(s);
  if (len == 0) return 1;
  return do_fwrite(s, 1, len, fp, UPG__REAL(fwrite_unlocked), "fputs") == len ? 1 : EOF;
}

UPG__EXPORT int(fputs)(const char *s, FILE *fp) {
  flockfile(fp);
  int r = do_fputs(s, fp);
  funlockfile(fp);
  return r;
}

UPG__EXPORT int(fputs_unlocked)(const char *s, FILE *fp) { return do_fputs(s, fp); }

UPG__EXPORT int(puts)(const char *s) {
  flockfile(stdout);
  int r = do_fputs(s, stdout) == EOF ? EOF : do_putc('\n', stdout);
  funlockfile(stdout);
  return r == EOF ? EOF : 1;
}

/* ---- formatted output ---------------------------------------------------
 * Formatted into a stack buffer first, so that the usual short line takes
 * the fwrite fast path; a longer one is printed again with the stream's
 * buffer pinned (formatting has no side effects but %n, which both passes
 * compute alike). */

static int print_formatted(FILE *fp, int flag, const char *format, va_list ap) {
  char line[FORMAT_BUFFER];
  va_list again;
  va_copy(again, ap);
  int len = flag < 0 ? vsnprintf(line, sizeof line, format, ap)
                     : __vsnprintf_chk(line, sizeof line, flag, sizeof line, format, ap);
  int r;
  if (len >= 0 && (size_t)len < sizeof line) {
    flockfile(fp);
    r = do_fwrite(line, 1, (size_t)len, fp, UPG__REAL(fwrite_unlocked), "printf") == (size_t)len
            ? len
            : -1;
    funlockfile(fp);
  } else {
    stream_call_t c;
    stream_enter(&c, fp);
    r = flag < 0 ? UPG__REAL(vfprintf)(fp, format, again)
                 : UPG__REAL(__vfprintf_chk)(fp, flag, format, again);
    stream_leave(&c, fp, "printf");
  }
  va_end(again);
  return r;
}

UPG__EXPORT int vfprintf(FILE *fp, const char *format, va_list ap) {
  return print_formatted(fp, -1, format, ap);
}

UPG__EXPORT int vprintf(const char *format, va_list ap) {
  return print_formatted(stdout, -1, format, ap);
}

UPG__EXPORT int __vfprintf_chk(FILE *fp, int flag, const char *format, va_list ap) {
  return print_formatted(fp, flag, format, ap);
}

UPG__EXPORT int __vprintf_chk(int flag, const char *format, va_list ap) {
  return print_formatted(stdout, flag, format, ap);
}

#define PRINT_VARIADIC(name, params, fp, flag)     \
  UPG__EXPORT int name params {                    \
    va_list ap;                                    \
    va_start(ap, format);                          \
    int r = print_formatted(fp, flag, format, ap); \
    va_end(ap);                                    \
    return r;                                      \
  }
PRINT_VARIADIC(printf, (const char *format, ...), stdout, -1)
PRINT_VARIADIC(fprintf, (FILE * fp, const char *format, ...), fp, -1)
PRINT_VARIADIC(__printf_chk, (int flag, const char *format, ...), stdout, flag)
PRINT_VARIADIC(__fprintf_chk, (FILE * fp, int flag, const char *format, ...), fp, flag)
#undef PRINT_VARIADIC

/* ---- flushing, seeking and closing ---------------------------------------*/

static int flush_one(FILE *fp, int (*real)(FILE *)) {
  stream_call_t c;
  c.had_error = (fp->_flags & STREAM_ERR_SEEN) != 0;
  c.saved_errno = errno;
  errno = 0;
  pin_buffer(&c, fp, 0);
  int r = real(fp);
  stream_leave(&c, fp, "fflush");
  return r;
}

void upg__stdio_flush_all(void) {
  _IO_list_lock();
  for (FILE *fp = _IO_list_all; fp != NULL; fp = fp->_chain)
    if (fp->_IO_buf_base != NULL) (void)flush_one(fp, UPG__REAL(fflush));
  _IO_list_unlock();
}

UPG__EXPORT int(fflush)(FILE *fp) {
  if (fp == NULL) {
    upg__stdio_flush_all();
    return 0;
  }
  return flush_one(fp, UPG__REAL(fflush));
}

UPG__EXPORT int(fflush_unlocked)(FILE *fp) {
  if (fp == NULL) return fflush(NULL);
  return flush_one(fp, UPG__REAL(fflush_unlocked));
}

UPG__EXPORT int fseeko64(FILE *fp, off_t offset, int whence) {
  PINNED(int, fp, "fseek", UPG__REAL(fseeko64)(fp, offset, whence));
}

UPG__EXPORT int fseeko(FILE *fp, off_t offset, int whence) { return fseeko64(fp, offset, whence); }
UPG__EXPORT int fseek(FILE *fp, long offset, int whence) { return fseeko64(fp, offset, whence); }

UPG__EXPORT void rewind(FILE *fp) {
  (void)fseeko64(fp, 0, SEEK_SET);
  clearerr(fp);
}

UPG__EXPORT int fclose(FILE *fp) {
  stream_call_t c;
  c.saved_errno = errno;
  errno = 0;
  pin_buffer(&c, fp, 0);
  int r = UPG__REAL(fclose)(fp);
  sticky_forget(fp);
  if (r != 0 && errno == EFAULT && c.pin.len != 0) upg__efault_fatal("fclose", c.pin.addr);
  stream_leave_closed(&c);
  return r;
}

/* fopen() reads the mode and opens the path with internal calls. */
UPG__EXPORT FILE *fopen64(const char *path, const char *mode) {
  upg__pin_t pin;
  upg__pin_string(&pin, path);
  upg__glibc_keeps++; /* the FILE stays outside the heap (streams.c) */
  FILE *fp = UPG__REAL(fopen64)(path, mode);
  upg__glibc_keeps--;
  upg__pin_end(&pin);
  if (fp == NULL) upg__efault_check(-1, "fopen", path);
  return fp;
}

UPG__EXPORT FILE *fopen(const char *path, const char *mode) { return fopen64(path, mode); }

UPG__EXPORT FILE *freopen64(const char *path, const char *mode, FILE *fp) {
  stream_call_t c;
  upg__pin_t pin;
  c.saved_errno = errno;
  errno = 0;
  pin_buffer(&c, fp, 0);
  upg__pin_string(&pin, path);
  FILE *r = UPG__REAL(freopen64)(path, mode, fp);
  sticky_forget(fp);
  upg__pin_end(&pin);
  stream_leave_closed(&c);
  return r;
}

UPG__EXPORT FILE *freopen(const char *path, const char *mode, FILE *fp) {
  return freopen64(path, mode, fp);
}
