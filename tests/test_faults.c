/* test_faults.c: what happens when things go wrong. An access the runtime
 * does not own reaches the program's own SIGSEGV disposition; a swap store
 * that fails loses no data; when nothing can be evicted the program ends
 * with the cause on stderr; fork() leaves the parent's pages alone; the
 * kernel mapping limit is never crossed. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "helpers.h"
#include "internal.h"

#define PAGE 4096u

/* ---- invalid accesses ---------------------------------------------------*/
/* Addresses no region holds: the first page, never mapped on Linux. */
static volatile char *volatile outside = (char *)16;
static volatile char *volatile outside_too = (char *)24;
Test(faults, an_access_outside_every_region_dies_by_sigsegv, .signal = SIGSEGV, .timeout = 10) {
  start_runtime(64 * PAGE, NULL);
  char *p = upg_map(PAGE, 0);
  p[0] = 1;
  *outside = 1;
}

Test(faults, an_access_after_unmap_dies_by_sigsegv, .signal = SIGSEGV, .timeout = 10) {
  start_runtime(64 * PAGE, NULL);
  char *p = upg_map(4 * PAGE, 0);
  p[0] = 1;
  cr_assert_eq(upg_unmap(p, 4 * PAGE), 0);
  *(volatile char *)p = 1;
}

static volatile int recursion_limit = 1 << 30;

static int recurse(int depth) {
  volatile char frame[1024];
  frame[0] = (char)depth;
  if (depth == recursion_limit) return 0;
  return recurse(depth + 1) + frame[0];
}

Test(faults, a_stack_overflow_still_dies_by_sigsegv, .signal = SIGSEGV, .timeout = 10) {
  start_runtime(64 * PAGE, NULL);
  char *p = upg_map(PAGE, 0);
  p[0] = 1;
  recurse(0);
}

static sigjmp_buf escape;
static void *volatile seen_address;

static void own_handler(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)ctx;
  seen_address = info->si_addr;
  siglongjmp(escape, 1);
}

Test(faults, the_programs_own_handler_gets_the_access_it_does_not_own, .timeout = 10) {
  struct sigaction sa = {0};
  sa.sa_sigaction = own_handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  start_runtime(64 * PAGE, NULL);
  char *p = upg_map(2 * PAGE, 0);
  if (sigsetjmp(escape, 1) == 0) *outside_too = 1;
  cr_assert_eq(seen_address, (void *)24);
  p[PAGE] = 5; /* paging still works after the program's handler ran */
  cr_assert_eq(p[PAGE], 5);
  /* The uffd source never sees a SIGSEGV, nor counts one. */
  int sees_sigsegv = strcmp(upg__rt.source->name, "sigsegv") == 0;
  cr_assert_eq(stats_now().fault_invalid, sees_sigsegv ? 1 : 0);
}

/* A handler set after init goes through upg_sigaction, and paging goes on. */
Test(faults, a_handler_set_with_upg_sigaction_after_init_gets_what_it_does_not_own, .timeout = 10) {
  cr_assert_eq(upg_sigaction(NULL, NULL), UPG_ENOTINIT);
  start_runtime(32 * PAGE, NULL);
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = own_handler;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  cr_assert_eq(upg_sigaction(&sa, &old), 0);
  cr_assert_eq(old.sa_handler, SIG_DFL, "the disposition before the runtime");
  uint64_t *a = upg_map(256 * PAGE, 0);
  for (size_t p = 0; p < 256; p++) a[p * PAGE / 8] = pattern(p, 0, 3);
  for (size_t p = 0; p < 256; p++) cr_assert_eq(a[p * PAGE / 8], pattern(p, 0, 3));
  if (sigsetjmp(escape, 1) == 0) *outside_too = 1;
  cr_assert_eq(seen_address, (void *)24);
  cr_assert_eq(upg_sigaction(NULL, &old), 0);
  cr_assert_eq(old.sa_sigaction, own_handler);
}

/* ---- a swap store that fails ----------------------------------------------*/
/* UPAGER_STORE=faulty: the file store, failing as upg__faulty says. */
static void start_with_failing_writes(int every, size_t budget) {
  upg__faulty.fail_puts = every;
  setenv("UPAGER_STORE", "faulty", 1);
  setenv("UPAGER_COMPRESS", "off", 1); /* the store's own failures (test_compress: the tier's) */
  start_runtime(budget, NULL);
}

Test(faults, every_third_swap_write_failing_loses_no_data, .timeout = 60) {
  start_with_failing_writes(3, 32 * PAGE);
  size_t pages = 512;
  uint64_t *a = upg_map(pages * PAGE, 0);
  for (int round = 1; round <= 3; round++)
    for (size_t p = 0; p < pages; p++)
      for (size_t w = 0; w < PAGE / 8; w += 64) a[p * PAGE / 8 + w] = pattern(p, w, round);
  for (size_t p = 0; p < pages; p++)
    for (size_t w = 0; w < PAGE / 8; w += 64)
      cr_assert_eq(a[p * PAGE / 8 + w], pattern(p, w, 3), "page %zu", p);
  upg_stats_t s = stats_now();
  cr_assert_gt(s.swap_write_errors, 100);
  cr_assert_leq(s.pages_resident_peak, 32);
}

/* EINTR is no failure: the wrappers ask again. */
Test(faults, a_store_answering_eintr_loses_no_data_and_fails_no_write, .timeout = 60) {
  upg__faulty.eintr_every = 3;
  start_with_failing_writes(0, 32 * PAGE);
  size_t pages = 512;
  uint64_t *a = upg_map(pages * PAGE, 0);
  for (int round = 1; round <= 2; round++)
    for (size_t p = 0; p < pages; p++) a[p * PAGE / 8] = pattern(p, 0, round);
  for (size_t p = 0; p < pages; p++) cr_assert_eq(a[p * PAGE / 8], pattern(p, 0, 2), "page %zu", p);
  cr_assert_eq(stats_now().swap_write_errors, 0);
}

Test(faults, with_every_write_failing_clean_pages_still_make_room, .timeout = 60) {
  start_with_failing_writes(1, 16 * PAGE);
  char *p = upg_map(1024 * PAGE, 0);
  for (size_t i = 0; i < 8; i++) memset(p + i * PAGE, (int)i + 1, PAGE); /* dirty, stuck */
  volatile char sink = 0;
  for (size_t i = 8; i < 1024; i++) sink += p[i * PAGE]; /* clean zero pages come and go */
  (void)sink;
  for (size_t i = 0; i < 8; i++) cr_assert_eq(p[i * PAGE + 100], (char)(i + 1));
  cr_assert_gt(stats_now().swap_write_errors, 0);
}

/* Each discard punches a hole in the swap file, a synchronous discard on
 * ext4: unmapping used to cost one a page. */
Test(faults, unmapping_a_region_in_swap_gives_its_space_back_in_few_discards, .timeout = 60) {
  start_with_failing_writes(0, 64 * PAGE);
  size_t pages = 4096;
  char *p = upg_map(pages * PAGE, 0);
  for (size_t i = 0; i < pages; i++) p[i * PAGE] = 1;
  cr_assert_gt(stats_now().swap_slots_in_use, pages / 2);
  upg__faulty.give_backs = 0;
  cr_assert_eq(upg_unmap(p, pages * PAGE), 0);
  int discards = upg__faulty.give_backs; /* the file store's one hole a run: test_swap */
  cr_assert_eq(stats_now().swap_slots_in_use, 0);
  cr_assert_leq(discards, 4, "%d discards for %zu pages", discards, pages);
}

/* Maps 64 pages and writes each once: under a 16-page budget most go out. */
static char *map_and_fill(void) {
  char *p = upg_map(64 * PAGE, 0);
  for (size_t i = 0; i < 64; i++) p[i * PAGE] = 1;
  return p;
}

static void fill_with_failing_writes(void) {
  start_with_failing_writes(1, 16 * PAGE);
  (void)map_and_fill();
}

/* Pages go out to swap, then every read of them fails. */
static void read_back_with_failing_reads(void) {
  start_with_failing_writes(0, 16 * PAGE);
  char *p = map_and_fill();
  upg__faulty.fail_gets = 1;
  volatile char sink = 0;
  for (size_t i = 0; i < 64; i++) sink += p[i * PAGE];
  (void)sink;
}

Test(faults, when_no_page_can_be_evicted_the_program_ends_naming_the_cause, .timeout = 30) {
  assert_ends_naming(fill_with_failing_writes, "No space left on device");
}

Test(faults, a_swap_read_that_fails_ends_the_program_naming_the_cause, .timeout = 30) {
  assert_ends_naming(read_back_with_failing_reads, "Input/output error");
}

static char small_fs[64];

static void fill_a_full_filesystem(void) {
  upg_options_t opt = {0};
  opt.budget = 16 * PAGE;
  opt.swap_dir = small_fs;
  if (upg_init(&opt) != 0) _exit(4);
  char *p = upg_map(1024 * PAGE, 0);
  for (size_t i = 0; i < 1024; i++) p[i * PAGE] = (char)i;
}

/* A real filesystem running out of space: a 256 KiB tmpfs (needs root to
 * mount; skipped elsewhere). */
Test(faults, a_swap_file_on_a_full_filesystem_ends_the_program_with_the_cause, .timeout = 30) {
  strcpy(small_fs, "/tmp/upager-small-XXXXXX");
  cr_assert_not_null(mkdtemp(small_fs));
  if (mount("upager-test", small_fs, "tmpfs", 0, "size=256k") != 0) {
    rmdir(small_fs);
    cr_skip_test("cannot mount a small tmpfs: %s", strerror(errno));
  }
  char err[4096];
  int status = run_child(fill_a_full_filesystem, err, sizeof err);
  umount(small_fs);
  rmdir(small_fs);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x: %s", status, err);
  cr_assert_not_null(strstr(err, "No space left on device"), "stderr: %s", err);
}

/* ---- fork -----------------------------------------------------------------*/
static char *forked_region;

static void child_touches_parent_region(void) { forked_region[0] = 9; }

static void child_starts_its_own_runtime(void) {
  start_runtime(16 * PAGE, NULL);
  char *p = upg_map(256 * PAGE, 0);
  for (size_t i = 0; i < 256; i++) p[i * PAGE] = (char)i;
  for (size_t i = 0; i < 256; i++)
    if (p[i * PAGE] != (char)i) _exit(3);
  _exit(0);
}

Test(faults, fork_child_sees_no_paged_memory_and_parent_pages_stay_intact, .timeout = 60) {
  start_runtime(32 * PAGE, NULL);
  size_t pages = 256;
  uint64_t *a = upg_map(pages * PAGE, 0);
  forked_region = (char *)a;
  for (size_t p = 0; p < pages; p++) a[p * PAGE / 8] = pattern(p, 0, 1);
  char err[1024];
  int status = run_child(child_touches_parent_region, err, sizeof err);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x", status);
  status = run_child(child_starts_its_own_runtime, err, sizeof err);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x %s", status, err);
  for (size_t p = 0; p < pages; p++) cr_assert_eq(a[p * PAGE / 8], pattern(p, 0, 1));
}

/* A child that starts a runtime of its own, untraced, and ends it. */
static void child_runs_untraced(void) {
  start_runtime(16 * PAGE, NULL);
  char *p = upg_map(64 * PAGE, 0);
  for (size_t i = 0; i < 64; i++) p[i * PAGE] = (char)i;
  upg_shutdown();
  _exit(0);
}

/* The child's copy of the trace's descriptor shares the parent's file
 * offset: what the child records, or writes of the parent's buffered
 * records, would land in the parent's trace. */
Test(faults, a_fork_child_leaves_the_parents_trace_alone, .timeout = 60) {
  char path[] = "/tmp/upager-test-trace-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  upg_options_t opt = {.budget = 32 * PAGE, .trace = path};
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  char *p = upg_map(16 * PAGE, 0);
  for (size_t i = 0; i < 16; i++) p[i * PAGE] = 1;
  char err[1024];
  int status = run_child(child_runs_untraced, err, sizeof err);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x %s", status, err);
  upg_stats_t s = stats_now();
  uint64_t faults = s.fault_zero + s.fault_minor + s.fault_write + s.fault_major;
  upg_shutdown();
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  unlink(path);
  cr_assert_eq((uint64_t)st.st_size,
               sizeof(upg_trace_header_t) + faults * sizeof(upg_trace_record_t),
               "%lld bytes for %llu faults", (long long)st.st_size, (unsigned long long)faults);
}

/* An atfork child handler registered before the runtime's runs first, in a
 * child whose views are gone: its access must be an invalid one, not a
 * fault the copied tables resolve forever. */
static _Atomic int touch_in_child_hook;
static void child_hook_touches_region(void) {
  if (atomic_load(&touch_in_child_hook)) forked_region[PAGE] = 5;
}

static void child_forks_again(void) { _exit(0); }

Test(faults, a_fault_in_a_fork_hook_before_the_runtimes_is_not_taken_for_paging, .timeout = 30) {
  pthread_atfork(NULL, NULL, child_hook_touches_region);
  start_runtime(32 * PAGE, NULL);
  forked_region = upg_map(64 * PAGE, 0);
  memset(forked_region, 1, 64 * PAGE); /* resident and open in the parent */
  atomic_store(&touch_in_child_hook, 1);
  char err[1024];
  int status = run_child(child_forks_again, err, sizeof err);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x", status);
  atomic_store(&touch_in_child_hook, 0);
  cr_assert_eq(forked_region[PAGE], 1, "the parent's page changed");
}

/* ---- kernel mappings ------------------------------------------------------*/
Test(faults, scattered_resident_pages_stay_under_the_mapping_limit, .timeout = 60) {
  upg_options_t opt = {0};
  opt.budget = 4 << 20; /* 1024 frames: every other page open would need ~2048 maps */
  opt.max_maps = 256;
  cr_assert_eq(upg_init(&opt), 0);
  if (!(upg__rt.source->caps & UPG__SOURCE_COUNTS_MAPS))
    cr_skip("the %s source opens and closes pages without a kernel mapping each",
            upg__rt.source->name);
  size_t pages = 4096;
  char *p = upg_map(pages * PAGE, 0);
  long worst = 0;
  for (int round = 1; round <= 2; round++) {
    for (size_t i = 0; i < pages; i += 2) {
      p[i * PAGE] = (char)(i + round);
      if (i % 256 == 0) {
        long now = maps_inside(p, pages * PAGE);
        if (now > worst) worst = now;
      }
    }
  }
  for (size_t i = 0; i < pages; i += 2) cr_assert_eq(p[i * PAGE], (char)(i + 2));
  upg_stats_t s = stats_now();
  cr_assert_leq(s.maps_peak, 256);
  cr_assert_gt(s.maps_demotions, 0);
  cr_assert_leq(worst, 256, "the kernel listed %ld mappings", worst);
}
