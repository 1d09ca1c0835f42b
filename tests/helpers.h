/* helpers.h: what the runtime tests share: starting a runtime with a given
 * budget, the process's memory as /proc reports it, and a page pattern
 * that detects any lost or misplaced write. */
#ifndef UPAGER_TEST_HELPERS_H
#define UPAGER_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "upager.h"

static inline void start_runtime(size_t budget, const char *policy) {
  upg_options_t opt = {0};
  opt.budget = budget;
  opt.policy = policy;
  int rc = upg_init(&opt);
  cr_assert_eq(rc, 0, "upg_init: %s (%s)", upg_strerror(rc), upg_last_error());
}

/* The page's state as upg_page_info reports it; the call must succeed. */
static inline upg_page_info_t info_of(const void *p) {
  upg_page_info_t info;
  cr_assert_eq(upg_page_info(p, &info), 0);
  return info;
}

static inline upg_stats_t stats_now(void) {
  upg_stats_t s = UPG_STATS_INIT;
  cr_assert_eq(upg_stats(&s), 0);
  return s;
}

/* Waits until the runtime's own threads are quiet (no eviction batch, no
 * swap write, no background load or heap memory made for three 20 ms
 * intervals in a row), so a test can attribute what happens next to its
 * own calls, or count what the threads did for the calls before. */
static inline void settle(void) {
  const struct timespec pause = {0, 20 * 1000 * 1000};
  upg_stats_t last = stats_now();
  for (int quiet = 0, i = 0; quiet < 3 && i < 200; i++) {
    nanosleep(&pause, NULL);
    upg_stats_t now = stats_now();
    int same = now.evict_batches == last.evict_batches &&
               now.swap_bytes_written == last.swap_bytes_written &&
               now.readahead_async == last.readahead_async &&
               now.fresh_populated == last.fresh_populated;
    quiet = same ? quiet + 1 : 0;
    last = now;
  }
}

/* Sum of a /proc/self/status field, in KiB ("VmRSS", "RssShmem"...). */
static inline long proc_status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') sscanf(line + n + 1, "%ld", &kib);
  if (f) fclose(f);
  return kib;
}

/* Resident KiB of the mappings inside [start, start+len), from smaps: what
 * the kernel says the program's view of a region holds. */
static inline long smaps_rss_kib(const void *start, size_t len) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  long total = 0;
  int inside = 0;
  uintptr_t lo = (uintptr_t)start, hi = lo + len;
  while (f && fgets(line, sizeof line, f)) {
    uintptr_t a, b;
    long kib;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2) inside = a >= lo && b <= hi;
    else if (inside && sscanf(line, "Rss: %ld kB", &kib) == 1) total += kib;
  }
  if (f) fclose(f);
  return total;
}

/* Kernel mappings (lines of /proc/self/maps) inside [start, start+len). */
static inline long maps_inside(const void *start, size_t len) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  long count = 0;
  uintptr_t lo = (uintptr_t)start, hi = lo + len;
  while (f && fgets(line, sizeof line, f)) {
    uintptr_t a, b;
    if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a >= lo && b <= hi) count++;
  }
  if (f) fclose(f);
  return count;
}

/* Bytes of memory the runtime's frames hold, as the kernel allocated them:
 * its memfds, and the anonymous pages of views not yet moved onto them
 * (before the first eviction), which are the only mappings the runtime
 * makes MADV_DONTFORK ("dc" in smaps) that hold anonymous pages. */
static inline long long frame_bytes(void) {
  long long total = 0;
  char path[64], target[256], line[512];
  for (int fd = 0; fd < 1024; fd++) {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    struct stat st;
    if (strncmp(target, "/memfd:upager", 13) == 0 && fstat(fd, &st) == 0)
      total += (long long)st.st_blocks * 512;
  }
  FILE *f = fopen("/proc/self/smaps", "r");
  long anon = 0, kib;
  while (f && fgets(line, sizeof line, f)) {
    if (sscanf(line, "Anonymous: %ld kB", &kib) == 1) anon = kib;
    else if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " dc") != NULL)
      total += anon * 1024LL;
  }
  if (f) fclose(f);
  return total;
}

/* The word every page holds at offset i after the writer's `round`. */
static inline uint64_t pattern(size_t page, size_t i, uint64_t round) {
  uint64_t x = (page * 0x9E3779B97F4A7C15ull) ^ (i * 0xBF58476D1CE4E5B9ull) ^ (round << 56);
  return x ^ (x >> 31);
}

/* Runs `body` in a child with its stderr captured into `err`; returns the
 * child's wait status. */
static inline int run_child(void (*body)(void), char *err, size_t errlen) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    body();
    _exit(0);
  }
  close(fds[1]);
  size_t got = 0;
  ssize_t n;
  while (got < errlen - 1 && (n = read(fds[0], err + got, errlen - 1 - got)) > 0) got += (size_t)n;
  err[got] = '\0';
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  return status;
}

/* `body` must end its process with the runtime's fatal message naming
 * `cause`: an access the runtime cannot serve never goes on with a wrong
 * page. */
static inline void assert_ends_naming(void (*body)(void), const char *cause) {
  char err[8192];
  int status = run_child(body, err, sizeof err);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x, stderr: %s", status,
            err);
  cr_assert_not_null(strstr(err, cause), "stderr: %s", err);
  cr_assert_not_null(strstr(err, "upager: fatal"), "stderr: %s", err);
}

#endif
