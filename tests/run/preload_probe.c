/* preload_probe.c: checks of the preload library from inside a program run
 * by `upager run --budget 1M`. Each mode exercises one promise, on heap
 * buffers that are first pushed out of memory (and checked to be out, with
 * the runtime's upg_page_info), and exits 0 only if it held:
 *
 *   alloc    the malloc family serves paged memory with the right alignments
 *   io       read, write, pread, pwrite, readv, writev, stat, open, getrandom
 *            on evicted heap buffers work
 *   stdio    fwrite, fread, fprintf, fgets, getline with evicted FILE buffers,
 *            and transfers 16 times the budget
 *   sigmask  a thread that blocks every signal can still fault pages in
 *   spawn    system, popen and posix_spawnp with evicted heap strings
 *   fork     fork() with streams open (glibc's fork walks them in the child)
 *            returns in the child, which allocates from glibc's malloc,
 *            writes a file through a stream of its own and exits 0, while
 *            the parent's blocks stay intact; a child that resizes a block
 *            of the parent's heap stops with status 125 and a message, and
 *            one that reads one dies by SIGSEGV with a message
 *   segv     a SIGSEGV handler the program installs once the heap runs (as
 *            GNU grep's stack-overflow handler does) leaves paging working
 *            and gets the faults outside paged memory, through sigaction()
 *            and signal() alike
 *   libsigsegv  so does a handler the program gives GNU libsigsegv itself,
 *            the runtime's own library (as gawk does)
 *   efault   a raw syscall() into an evicted buffer: the safety net must end
 *            the process (this mode is expected to die by SIGABRT)
 *   sigev    a SIGEV_THREAD timer's function, which glibc runs on a thread of
 *            its helper's with every signal blocked, reads, writes and
 *            allocates heap blocks that the main thread keeps pushing out */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sigsegv.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upager.h"

#define BUDGET ((size_t)1 << 20) /* what the test passes to upager run */
#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "preload_probe: %s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                          \
    }                                                                                   \
  } while (0)

static int (*page_info)(const void *, upg_page_info_t *);
static char tmpdir[] = "/tmp/preload_probe.XXXXXX";

/* Not inlined: p may point at bytes not yet written, and gcc would warn
 * that page_info, which only looks up the address, reads them. */
__attribute__((noinline)) static int in_paged_memory(const void *p) {
  upg_page_info_t info = {0};
  return page_info(p, &info) == 0;
}

static int resident(const void *p) {
  upg_page_info_t info = {0};
  return page_info(p, &info) == 0 && info.present;
}

/* Touches twice the budget of fresh memory, which pushes out everything
 * touched before it. */
static void push_out(const void *buf) {
  size_t len = 2 * BUDGET;
  char *flood = malloc(len);
  for (size_t i = 0; i < len; i += 512) flood[i] = (char)i;
  CHECK(!resident(buf));
  free(flood);
  CHECK(!resident(buf));
}

static char *heap_path(const char *name) {
  char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
  sprintf(path, "%s/%s", tmpdir, name);
  return path;
}

static void fill(unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) p[i] = (unsigned char)(i * 31 + seed + i / 4096);
}

static int same(const unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != (unsigned char)(i * 31 + seed + i / 4096)) return 0;
  return 1;
}

static int probe_alloc(void) {
  void *p;
  CHECK(in_paged_memory(p = malloc(10)));
  free(p);
  CHECK(in_paged_memory(p = calloc(10, 10)) && ((char *)p)[99] == 0);
  CHECK(in_paged_memory(p = realloc(p, 100000)) && ((char *)p)[99] == 0);
  CHECK(in_paged_memory(p = reallocarray(p, 10, 10)));
  volatile size_t huge = SIZE_MAX / 2; /* an overflow the compiler cannot see */
  CHECK(reallocarray(p, huge, 4) == NULL && errno == ENOMEM);
  free(p);
  CHECK(posix_memalign(&p, 4096, 100) == 0 && in_paged_memory(p) && (uintptr_t)p % 4096 == 0);
  free(p);
  CHECK(posix_memalign(&p, 24, 100) == EINVAL);
  CHECK((p = aligned_alloc(64, 128)) != NULL && in_paged_memory(p) && (uintptr_t)p % 64 == 0);
  free(p);
  CHECK((p = memalign(256, 10)) != NULL && in_paged_memory(p) && (uintptr_t)p % 256 == 0);
  free(p);
  CHECK((p = valloc(10)) != NULL && in_paged_memory(p) && (uintptr_t)p % 4096 == 0);
  free(p);
  CHECK((p = pvalloc(10)) != NULL && in_paged_memory(p) && malloc_usable_size(p) >= 4096);
  free(p);
  CHECK(malloc_usable_size(p = malloc(1000)) >= 1000);
  free(p);
  free(NULL);
  return 0;
}

static int probe_io(void) {
  size_t len = 3 * BUDGET; /* bigger than the budget: moved in pieces */
  unsigned char *out = malloc(len), *in = malloc(len);
  fill(out, len, 1);
  char *path = heap_path("io");
  push_out(path);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  push_out(out);
  CHECK(write(fd, out, len) == (ssize_t)len);
  push_out(in);
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, in + got, len - got, (off_t)got);
    CHECK(n > 0);
    got += (size_t)n;
  }
  CHECK(same(in, len, 1));

  struct iovec *iov = malloc(2 * sizeof *iov);
  iov[0] = (struct iovec){out, 5000};
  iov[1] = (struct iovec){out + 5000, 7000};
  push_out(out);
  CHECK(pwritev(fd, iov, 2, 0) == 12000);
  memset(in, 0, 12000);
  iov[0].iov_base = in, iov[1].iov_base = in + 5000;
  push_out(in);
  CHECK(lseek(fd, 0, SEEK_SET) == 0 && readv(fd, iov, 2) == 12000 && same(in, 12000, 1));

  struct stat *st = malloc(sizeof *st);
  push_out(st);
  CHECK(stat(path, st) == 0 && st->st_size == (off_t)len);
  push_out(st);
  CHECK(fstat(fd, st) == 0 && st->st_size == (off_t)len);
  unsigned char *random = calloc(1, 64);
  push_out(random);
  CHECK(getrandom(random, 64, 0) == 64);
  close(fd);
  push_out(path);
  CHECK(unlink(path) == 0);
  return 0;
}

static int probe_stdio(void) {
  size_t len = 16 * BUDGET;
  unsigned char *out = malloc(len), *in = malloc(len);
  fill(out, len, 2);
  char *path = heap_path("stdio");
  FILE *f = fopen(path, "w+");
  CHECK(f != NULL);
  CHECK(fwrite(out, 1, len, f) == len);
  for (int i = 0; i < 20000; i++) {
    if (i % 1000 == 0) push_out(f); /* the FILE and its buffer */
    CHECK(fprintf(f, "line %d %s\n", i, i % 2 ? "odd" : "even") > 0);
  }
  CHECK(fflush(f) == 0);
  rewind(f);
  push_out(in);
  CHECK(fread(in, 1, len, f) == len);
  CHECK(same(in, len, 2));
  char *line = NULL, *fixed = malloc(64);
  size_t cap = 0;
  int count = 0;
  while (getline(&line, &cap, f) > 0) {
    char expect[64];
    snprintf(expect, sizeof expect, "line %d %s\n", count, count % 2 ? "odd" : "even");
    CHECK(strcmp(line, expect) == 0);
    if (++count % 1000 == 0) push_out(f);
    if (count == 10000) break;
  }
  push_out(fixed);
  while (fgets(fixed, 64, f) != NULL) count++;
  CHECK(count == 20000);
  CHECK(fclose(f) == 0);
  unlink(path);
  return 0;
}

static void *touch_blocked(void *buf) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  push_out(buf);
  return (void *)(intptr_t)(((volatile char *)buf)[100] == 42);
}

static int probe_sigmask(void) {
  char *buf = malloc(4096);
  buf[100] = 42;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits this mask */
  pthread_t t;
  void *ok;
  CHECK(pthread_create(&t, NULL, touch_blocked, buf) == 0);
  pthread_join(t, &ok);
  push_out(buf);
  CHECK(buf[100] == 42 && ok != NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return 0;
}

/* ---- sigev ---------------------------------------------------------------*/
#define SIGEV_BLOCKS 64
#define SIGEV_BLOCK_BYTES (64 << 10) /* 4 MiB in all, four budgets */
#define SIGEV_CALLS 150
static unsigned char *sigev_blocks[SIGEV_BLOCKS];
static atomic_int sigev_calls, sigev_wrong;

static timer_t sigev_timer;

/* glibc makes a thread an expiry, whether the last one has ended or not:
 * past the calls the probe needs, each returns at once and disarms. */
static void on_expiry(union sigval value) {
  int call = atomic_fetch_add(&sigev_calls, 1);
  if (call >= SIGEV_CALLS) {
    struct itimerspec stop = {{0, 0}, {0, 0}};
    timer_settime(sigev_timer, 0, &stop, NULL);
    return;
  }
  unsigned i = (unsigned)call % SIGEV_BLOCKS;
  if (!same(sigev_blocks[i], SIGEV_BLOCK_BYTES, i)) atomic_fetch_add(&sigev_wrong, 1);
  fill(sigev_blocks[i], SIGEV_BLOCK_BYTES, i); /* the same bytes, written */
  char *scratch = malloc(1000);
  scratch[999] = (char)value.sival_int;
  free(scratch);
}

static int probe_sigev(void) {
  for (unsigned i = 0; i < SIGEV_BLOCKS; i++) {
    sigev_blocks[i] = malloc(SIGEV_BLOCK_BYTES);
    fill(sigev_blocks[i], SIGEV_BLOCK_BYTES, i);
  }
  struct sigevent ev = {0};
  ev.sigev_notify = SIGEV_THREAD;
  ev.sigev_notify_function = on_expiry;
  ev.sigev_value.sival_int = 7;
  CHECK(timer_create(CLOCK_MONOTONIC, &ev, &sigev_timer) == 0);
  struct itimerspec every = {{0, 5000000}, {0, 5000000}};
  CHECK(timer_settime(sigev_timer, 0, &every, NULL) == 0);
  for (int round = 0; round < 400 && atomic_load(&sigev_calls) < 100; round++) {
    char *flood = malloc(2 * BUDGET); /* the blocks the function reads go out */
    for (size_t i = 0; i < 2 * BUDGET; i += 512) flood[i] = (char)i;
    free(flood);
    struct timespec pause = {0, 5000000};
    nanosleep(&pause, NULL);
  }
  struct itimerspec stop = {{0, 0}, {0, 0}};
  timer_settime(sigev_timer, 0, &stop, NULL);
  timer_delete(sigev_timer);
  struct timespec settle = {0, 50000000}; /* a notification may still be running */
  nanosleep(&settle, NULL);
  CHECK(atomic_load(&sigev_calls) >= 100);
  CHECK(atomic_load(&sigev_wrong) == 0);
  for (unsigned i = 0; i < SIGEV_BLOCKS; i++) CHECK(same(sigev_blocks[i], SIGEV_BLOCK_BYTES, i));
  return 0;
}

extern char **environ;

static int probe_spawn(void) {
  char *value = malloc(64);
  strcpy(value, "paged-value");
  CHECK(setenv("PROBE_VAR", value, 1) == 0); /* environ and the string: heap */
  char *command = strdup("test \"$PROBE_VAR\" = paged-value");
  push_out(command);
  push_out(environ);
  CHECK(system(command) == 0);
  char *echo = strdup("echo hello from popen");
  push_out(echo);
  FILE *p = popen(echo, "r");
  char *line = malloc(64);
  CHECK(p != NULL && fgets(line, 64, p) != NULL && strcmp(line, "hello from popen\n") == 0);
  CHECK(pclose(p) == 0);
  char **argv = malloc(4 * sizeof *argv);
  argv[0] = strdup("sh"), argv[1] = strdup("-c"), argv[2] = strdup("exit 3"), argv[3] = NULL;
  push_out(argv[2]);
  pid_t pid;
  int status;
  CHECK(posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) == 0);
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 3);
  return 0;
}

static int child_status(pid_t child) {
  int status;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status));
  return WEXITSTATUS(status);
}

static int probe_fork(void) {
  char *mine = malloc(100);
  strcpy(mine, "parent data");
  char log_path[64], child_path[64];
  snprintf(log_path, sizeof log_path, "%s/log", tmpdir);
  snprintf(child_path, sizeof child_path, "%s/child", tmpdir);
  FILE *log = fopen(log_path, "w"); /* a FILE that glibc's fork resets in the child */
  CHECK(log != NULL && !in_paged_memory(log) && fputs("before fork\n", log) >= 0);
  CHECK(fflush(log) == 0);
  push_out(mine);
  pid_t child = fork();
  if (child == 0) {
    char *line = malloc(64);
    if (line == NULL || in_paged_memory(line)) _exit(3);
    snprintf(line, 64, "child %d\n", 42);
    FILE *out = fopen(child_path, "w");
    if (out == NULL || fputs(line, out) < 0 || fclose(out) != 0) _exit(4);
    free(line);
    free(mine); /* the parent's block: gone here, and ignored */
    _exit(0);
  }
  CHECK(child_status(child) == 0);
  FILE *in = fopen(child_path, "r");
  char got[64] = {0};
  CHECK(in != NULL && fgets(got, sizeof got, in) != NULL && strcmp(got, "child 42\n") == 0);
  fclose(in);
  child = fork();
  if (child == 0) _exit(realloc(mine, 200) != NULL ? 0 : 1); /* must stop at 125 */
  CHECK(child_status(child) == 125);
  int fds[2];
  CHECK(pipe(fds) == 0);
  child = fork();
  if (child == 0) { /* reads the parent's block: says so, and dies by SIGSEGV */
    dup2(fds[1], STDERR_FILENO);
    _exit(*(volatile char *)mine);
  }
  close(fds[1]);
  char said[256] = {0};
  CHECK(read(fds[0], said, sizeof said - 1) > 0 &&
        strstr(said, "child of fork() used a block") != NULL);
  close(fds[0]);
  int status;
  CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
  CHECK(strcmp(mine, "parent data") == 0);
  CHECK(fclose(log) == 0);
  free(malloc(1000));
  return 0;
}

static sigjmp_buf segv_return;
static void *volatile segv_addr;
static volatile int *volatile nowhere = (volatile int *)16; /* in no region */

static void own_segv(int signo, siginfo_t *info, void *context) {
  (void)signo, (void)context;
  segv_addr = info->si_addr;
  siglongjmp(segv_return, 1);
}

static void own_plain_segv(int signo) {
  (void)signo;
  siglongjmp(segv_return, 2);
}

/* Pages 16 times the budget through the heap and checks it all. */
static int page_through_heap(void) {
  size_t words = 16 * BUDGET / sizeof(uint64_t);
  uint64_t *v = malloc(words * sizeof *v);
  CHECK(v != NULL);
  for (size_t i = 0; i < words; i++) v[i] = i * 2654435761u;
  size_t wrong = 0;
  for (size_t i = 0; i < words; i++) wrong += v[i] != i * 2654435761u;
  CHECK(wrong == 0);
  free(v);
  return 0;
}

/* Pages through the heap, then touches an address no region owns and
 * expects the program's own handler to catch it. */
static int fault_through(void *handler) {
  CHECK(page_through_heap() == 0);
  int how = sigsetjmp(segv_return, 1);
  if (how == 0) *nowhere = 1;
  CHECK(how == (handler == (void *)own_segv ? 1 : 2));
  return 0;
}

static int probe_segv(void) {
  struct sigaction sa, now;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = own_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
  CHECK(sigaction(SIGSEGV, NULL, &now) == 0 && now.sa_sigaction == own_segv);
  CHECK(fault_through((void *)own_segv) == 0 && segv_addr == (void *)16);
  CHECK(signal(SIGSEGV, own_plain_segv) != SIG_ERR);
  CHECK(sigaction(SIGSEGV, NULL, &now) == 0 && now.sa_handler == own_plain_segv);
  CHECK(fault_through((void *)own_plain_segv) == 0);
  return 0;
}

static char *volatile own_page;
static void *volatile handed;

/* Opens the program's own closed page, and only that. */
static int own_libsigsegv_handler(void *addr, int serious) {
  (void)serious;
  char *page = own_page;
  if ((char *)addr < page || (char *)addr >= page + 4096) return 0;
  handed = addr;
  return mprotect(page, 4096, PROT_READ | PROT_WRITE) == 0;
}

static int probe_libsigsegv(void) {
  own_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(own_page != MAP_FAILED);
  CHECK(sigsegv_install_handler(own_libsigsegv_handler) == 0);
  CHECK(page_through_heap() == 0);
  own_page[10] = 7;
  CHECK(handed == own_page + 10 && own_page[10] == 7);
  sigsegv_deinstall_handler();
  CHECK(page_through_heap() == 0);
  return 0;
}

/* syscall() cannot be pinned for: the read hits a protected page. */
static int probe_efault(void) {
  char *buf = malloc(8192);
  int fd = open("/dev/zero", O_RDONLY);
  push_out(buf);
  long n = syscall(SYS_read, fd, buf, 8192);
  fprintf(stderr, "preload_probe: raw read returned %ld (errno %d) and the process lives on\n", n,
          errno);
  return 1;
}

int main(int argc, char **argv) {
  *(void **)&page_info = dlsym(RTLD_DEFAULT, "upg_page_info");
  if (argc != 2 || page_info == NULL) {
    fprintf(stderr, "usage: upager run --budget 1M -- preload_probe MODE\n");
    return 2;
  }
  CHECK(mkdtemp(tmpdir) != NULL);
  int rc = strcmp(argv[1], "alloc") == 0        ? probe_alloc()
           : strcmp(argv[1], "io") == 0         ? probe_io()
           : strcmp(argv[1], "stdio") == 0      ? probe_stdio()
           : strcmp(argv[1], "sigmask") == 0    ? probe_sigmask()
           : strcmp(argv[1], "spawn") == 0      ? probe_spawn()
           : strcmp(argv[1], "fork") == 0       ? probe_fork()
           : strcmp(argv[1], "segv") == 0       ? probe_segv()
           : strcmp(argv[1], "libsigsegv") == 0 ? probe_libsigsegv()
           : strcmp(argv[1], "efault") == 0     ? probe_efault()
           : strcmp(argv[1], "sigev") == 0      ? probe_sigev()
                                                : 2;
  rmdir(tmpdir);
  if (rc == 0) printf("preload_probe %s: ok\n", argv[1]);
  return rc;
}
