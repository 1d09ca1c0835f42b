/* test_uffd.c: the userfaultfd fault source (UPAGER_FAULT=uffd): the
 * access it reports with each fault, the reference bit kept without
 * protections, memory the program gives back itself, the kernel's own
 * accesses in each delivery mode, and the errors it gives where the kernel
 * refuses userfaultfd, naming the setting. Each test sets its own options:
 * the behaviour under the other source is test_source's. */
#define _GNU_SOURCE
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "internal.h"

#define PAGE 4096
#define BUDGET_PAGES 64

static int uffd_runs_here(void) {
  upg__config_t cfg = {0};
  return upg__fault_uffd_usable(&cfg);
}

static int start_uffd(const char *mode, size_t budget) {
  upg_options_t opt = {0};
  opt.budget = budget;
  opt.fault = "uffd";
  opt.uffd_mode = mode;
  return upg_init(&opt);
}

static void start_or_skip(const char *mode) {
  if (!uffd_runs_here()) cr_skip("userfaultfd cannot run here: %s", "not permitted or too old");
  int rc = start_uffd(mode, BUDGET_PAGES * PAGE);
  cr_assert_eq(rc, 0, "upg_init: %s (%s)", upg_strerror(rc), upg_last_error());
}

/* One page a load: each fault is its own. */
static char *random_region(size_t pages) {
  char *p = upg_map(pages * PAGE, 0);
  cr_assert_not_null(p);
  cr_assert_eq(upg_advise(p, pages * PAGE, UPG_ADV_RANDOM), 0);
  return p;
}

static void writes_are_told_from_reads(const char *mode) {
  start_or_skip(mode);
  char *p = random_region(8);
  p[0] = 1; /* a write to an absent page */
  cr_assert(info_of(p).modified);
  cr_assert_eq(info_of(p).prot, UPG_PROT_RW);
  volatile char sink = p[PAGE]; /* a read */
  (void)sink;
  cr_assert_not(info_of(p + PAGE).modified);
  cr_assert_eq(info_of(p + PAGE).prot, UPG_PROT_READ);
  p[PAGE] = 2; /* a write to a page the read opened: write-protected */
  cr_assert(info_of(p + PAGE).modified);
  upg_stats_t s = stats_now();
  cr_assert_eq(s.fault_access_known, 1);
  cr_assert_eq(s.fault_zero, 2);
  cr_assert_eq(s.fault_write, 1, "only the write to the read page is a write fault");
  cr_assert_eq(p[0], 1);
  cr_assert_eq(p[PAGE], 2);
}

Test(uffd, sigbus_mode_tells_a_write_from_a_read, .timeout = 20) {
  writes_are_told_from_reads("sigbus");
}
Test(uffd, thread_mode_tells_a_write_from_a_read, .timeout = 20) {
  writes_are_told_from_reads("thread");
}

/* The hand closes a page it passes (the source's close, as frames.c calls
 * it); the next touch is a minor fault that sets the bit again, and the
 * page keeps what it held. */
static void closed_page_comes_back(const char *mode) {
  start_or_skip(mode);
  char *p = random_region(8);
  memset(p + 2 * PAGE, 0x5a, PAGE);
  p[3 * PAGE] = 7;
  volatile char sink = p[4 * PAGE]; /* open read-only */
  (void)sink;
  upg__lock();
  upg__region_t *r = upg__region_find(p);
  for (size_t page = 2; page <= 4; page++) {
    atomic_fetch_and(&r->pte[page].word, ~UPG__REFERENCED);
    cr_assert_eq(upg__rt.source->close(r, page, 1), 0);
  }
  upg__unlock();
  cr_assert_eq(info_of(p + 2 * PAGE).prot, UPG_PROT_NONE);
  uint64_t minor = stats_now().fault_minor;
  for (size_t i = 0; i < PAGE; i += 512) cr_assert_eq((unsigned char)p[2 * PAGE + i], 0x5a);
  cr_assert_eq(p[3 * PAGE], 7);
  cr_assert_eq(p[4 * PAGE], 0);
  cr_assert_eq(stats_now().fault_minor, minor + 3);
  upg_page_info_t info = info_of(p + 2 * PAGE);
  cr_assert(info.present && info.referenced && info.modified);
  cr_assert_eq(info.prot, UPG_PROT_RW, "a dirty page reopens writable");
  cr_assert_eq(info_of(p + 4 * PAGE).prot, UPG_PROT_READ, "a clean one read-only");
  p[4 * PAGE] = 9; /* and a write to it is seen */
  cr_assert(info_of(p + 4 * PAGE).modified);
}

Test(uffd, sigbus_mode_a_closed_page_reopens_on_its_next_touch, .timeout = 20) {
  closed_page_comes_back("sigbus");
}
Test(uffd, thread_mode_a_closed_page_reopens_on_its_next_touch, .timeout = 20) {
  closed_page_comes_back("thread");
}

Test(uffd, pages_written_and_evicted_come_back_intact, .timeout = 60) {
  start_or_skip("sigbus");
  size_t pages = 4 * BUDGET_PAGES;
  uint64_t *p = upg_map(pages * PAGE, 0);
  long maps_before = maps_inside(NULL, SIZE_MAX);
  for (size_t page = 0; page < pages; page++)
    for (size_t i = 0; i < PAGE / 8; i += 64) p[page * PAGE / 8 + i] = pattern(page, i, 1);
  for (size_t page = 0; page < pages; page++)
    for (size_t i = 0; i < PAGE / 8; i += 64)
      cr_assert_eq(p[page * PAGE / 8 + i], pattern(page, i, 1));
  upg_stats_t s = stats_now();
  cr_assert_geq(s.evict_dirty, pages - BUDGET_PAGES);
  cr_assert_leq(s.pages_resident_peak, BUDGET_PAGES);
  cr_assert_eq(maps_inside(NULL, SIZE_MAX), maps_before, "paging made no kernel mapping");
}

/* madvise(MADV_DONTNEED) on private memory makes it read as zeros; the
 * program's own call on paged memory must not leave a page that faults
 * forever. */
Test(uffd, a_page_the_program_gave_back_reads_as_zeros, .timeout = 20) {
  start_or_skip("sigbus");
  char *p = random_region(4);
  p[0] = 3;
  cr_assert_eq(madvise(p, PAGE, MADV_DONTNEED), 0);
  cr_assert_eq(p[0], 0);
  p[0] = 4;
  cr_assert_eq(p[0], 4);
}

/* A page the program gave back, closed with written neighbours as the
 * budget evicts them all: the closing copies around the hole, and the
 * neighbours keep their bytes. */
static void a_hole_closed_with_its_neighbours_reads_as_zeros(const char *mode) {
  start_or_skip(mode);
  char *p = random_region(8);
  for (int i = 0; i < 8; i++) p[i * PAGE + 5] = (char)(i + 1);
  cr_assert_eq(madvise(p + 3 * PAGE, PAGE, MADV_DONTNEED), 0);
  char *other = random_region(4 * BUDGET_PAGES);
  for (size_t i = 0; i < 4 * BUDGET_PAGES; i++) other[i * PAGE] = 1;
  for (int i = 0; i < 8; i++) cr_assert_eq(p[i * PAGE + 5], i == 3 ? 0 : i + 1, "page %d", i);
  cr_assert_gt(stats_now().evict_dirty, 0);
}

Test(uffd, sigbus_mode_a_hole_closed_with_its_neighbours_reads_as_zeros, .timeout = 20) {
  a_hole_closed_with_its_neighbours_reads_as_zeros("sigbus");
}

Test(uffd, thread_mode_a_hole_closed_with_its_neighbours_reads_as_zeros, .timeout = 20) {
  a_hole_closed_with_its_neighbours_reads_as_zeros("thread");
}

/* A pipe to read from, holding one page of a known byte. */
static int pipe_holding(int byte) {
  int fds[2];
  char page[PAGE];
  cr_assert_eq(pipe(fds), 0);
  memset(page, byte, sizeof page);
  cr_assert_eq(write(fds[1], page, sizeof page), PAGE);
  close(fds[1]);
  return fds[0];
}

Test(uffd, thread_mode_a_read_into_a_missing_page_succeeds_without_a_pin, .timeout = 20) {
  start_or_skip("thread");
  char *p = random_region(4);
  int fd = pipe_holding(0x33);
  cr_assert_eq(read(fd, p + PAGE, PAGE), PAGE, "read(2): %s", strerror(errno));
  close(fd);
  cr_assert_eq((unsigned char)p[PAGE + 100], 0x33);
  cr_assert(info_of(p + PAGE).modified, "the kernel's write made the page dirty");
  cr_assert_eq(info_of(p + PAGE).pinned, 0);
}

Test(uffd, sigbus_mode_a_read_into_a_missing_page_fails_as_under_sigsegv, .timeout = 20) {
  start_or_skip("sigbus");
  char *p = random_region(4);
  int fd = pipe_holding(0x33);
  errno = 0;
  cr_assert_eq(read(fd, p + PAGE, PAGE), -1);
  cr_assert_eq(*(volatile int *)&errno, EFAULT);
  close(fd);
}

/* ---- where userfaultfd is refused ---------------------------------------*/

/* A seccomp filter, as a container's profile has, answering EPERM to
 * userfaultfd(2) and letting every other call through. */
static void forbid_userfaultfd(void) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof code / sizeof code[0], code};
  cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
  cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

Test(uffd, under_a_seccomp_filter_init_fails_naming_seccomp, .timeout = 20) {
  forbid_userfaultfd();
  int rc = start_uffd("sigbus", BUDGET_PAGES * PAGE);
  cr_assert_eq(rc, UPG_EUFFD, "upg_init: %s", upg_err_name(rc));
  cr_assert_not_null(strstr(upg_last_error(), "seccomp"), "%s", upg_last_error());
}

Test(uffd, under_a_seccomp_filter_auto_falls_back_to_sigsegv, .timeout = 20) {
  forbid_userfaultfd();
  upg_options_t opt = {0};
  opt.budget = BUDGET_PAGES * PAGE;
  opt.fault = "auto";
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  char *p = upg_map(4 * PAGE, 0);
  p[0] = 1;
  cr_assert_eq(stats_now().fault_access_known, 0, "sigsegv, which cannot tell");
}

Test(uffd, unprivileged_without_the_sysctl_init_fails_naming_it, .timeout = 20) {
  if (geteuid() != 0) cr_skip("needs root to become another user");
  if (upg__os_read_number("/proc/sys/vm/unprivileged_userfaultfd") != 0)
    cr_skip("vm.unprivileged_userfaultfd is not 0 here");
  cr_assert_eq(setgid(65534), 0);
  cr_assert_eq(setuid(65534), 0);
  int rc = start_uffd("thread", BUDGET_PAGES * PAGE);
  cr_assert_eq(rc, UPG_EUFFD, "upg_init: %s", upg_err_name(rc));
  cr_assert_not_null(strstr(upg_last_error(), "vm.unprivileged_userfaultfd"), "%s",
                     upg_last_error());
}

Test(uffd, a_bad_mode_fails_init_naming_the_variable, .timeout = 20) {
  setenv("UPAGER_UFFD_MODE", "signal", 1);
  upg_options_t opt = {0};
  opt.fault = "uffd";
  cr_assert_eq(upg_init(&opt), UPG_EOPTION);
  cr_assert_not_null(strstr(upg_last_error(), "UPAGER_UFFD_MODE"), "%s", upg_last_error());
}
