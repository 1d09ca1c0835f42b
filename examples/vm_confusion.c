/* vm_confusion.c: the "virtual memory confusion" story. A program reserves
 * 10 GiB and writes across all of it; `top` shows a huge VIRT and one would
 * expect the machine to need 10 GiB. It does not: the kernel's own counters
 * in /proc/self/status, printed at each checkpoint, and the memory the
 * kernel allocated to the runtime's memfds (its frames) show the paged data
 * held at the budget while every word written is read back intact.
 * Until the first eviction the frames are the view's anonymous memory
 * (RssAnon); from then on they are the memfd's, and RssShmem can show up to
 * twice that: a frame being filled or drained is mapped in both of the
 * runtime's views, and RssShmem counts each mapping.
 *
 *   vm_confusion [budget [reserve [stride]]]      defaults: 16M 10G 1M
 *
 * One word every `stride` bytes is written, then all are read back: with
 * the defaults that is 10,240 pages touched, about 40 MiB of swap written. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "example_util.h"
#include "upager.h"

/* The process's memory as the kernel counts it, in KiB. */
typedef struct vm_status {
  uint64_t vm_size, vm_rss, rss_anon, rss_shmem;
} vm_status_t;

static uint64_t status_field(const char *text, const char *name) {
  const char *line = strstr(text, name);
  unsigned long long kib = 0;
  if (line != NULL) sscanf(line + strlen(name), " %llu", &kib);
  return kib;
}

static vm_status_t read_vm_status(void) {
  static char text[8192];
  vm_status_t s = {0};
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return s;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  s.vm_size = status_field(text, "\nVmSize:");
  s.vm_rss = status_field(text, "\nVmRSS:");
  s.rss_anon = status_field(text, "\nRssAnon:");
  s.rss_shmem = status_field(text, "\nRssShmem:");
  return s;
}

/* KiB of memory the kernel holds for the runtime's memfds: the frames,
 * counted once whichever view maps them. */
static uint64_t memfd_kib(void) {
  uint64_t kib = 0;
  char path[64], target[256];
  for (int fd = 0; fd < 1024; fd++) {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    struct stat st;
    if (n <= 0) continue;
    target[n] = '\0';
    if (strncmp(target, "/memfd:upager", 13) == 0 && fstat(fd, &st) == 0)
      kib += (uint64_t)st.st_blocks / 2;
  }
  return kib;
}

static uint64_t peak_frames_kib;

static void checkpoint(const char *what) {
  vm_status_t s = read_vm_status();
  upg_stats_t st = UPG_STATS_INIT;
  uint64_t resident = 0;
  if (upg_stats(&st) == 0) resident = st.pages_resident * st.page_size;
  uint64_t frames = memfd_kib();
  if (frames > peak_frames_kib) peak_frames_kib = frames;
  printf("  %-26s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", what, s.vm_size / 1024.0,
         s.vm_rss / 1024.0, s.rss_anon / 1024.0, s.rss_shmem / 1024.0, frames / 1024.0,
         example_mib(resident));
}

/* What word i holds: distinct for every word, never the zero an untouched
 * or lost page would read as. */
static uint64_t pattern(uint64_t i) { return (i + 1) * 0x9e3779b97f4a7c15ull; }

static void write_pass(char *base, uint64_t words, size_t stride) {
  for (int quarter = 1; quarter <= 4; quarter++) {
    for (uint64_t i = words * (quarter - 1) / 4; i < words * quarter / 4; i++)
      *(uint64_t *)(base + i * stride) = pattern(i);
    char what[64];
    snprintf(what, sizeof what, "written %d%% of the range", quarter * 25);
    checkpoint(what);
  }
}

static uint64_t read_pass(const char *base, uint64_t words, size_t stride) {
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < words; i++)
    wrong += *(const uint64_t *)(base + i * stride) != pattern(i);
  checkpoint("read back every word");
  return wrong;
}

int main(int argc, char **argv) {
  if (argc > 4 || (argc > 1 && strcmp(argv[1], "-h") == 0)) {
    fprintf(stderr, "usage: %s [budget [reserve [stride]]]   (sizes like 16M, 10G)\n", argv[0]);
    return 2;
  }
  size_t budget = argc > 1 ? example_parse_size(argv[1], "budget") : (size_t)16 << 20;
  size_t reserve = argc > 2 ? example_parse_size(argv[2], "reserve") : (size_t)10 << 30;
  size_t stride = argc > 3 ? example_parse_size(argv[3], "stride") : (size_t)1 << 20;
  if (stride < sizeof(uint64_t) || stride % sizeof(uint64_t) != 0 || stride > reserve) {
    fprintf(stderr, "stride must be a multiple of 8 bytes, at most the reservation\n");
    return 2;
  }
  uint64_t words = reserve / stride;

  printf("vm_confusion: reserve %.1f GiB, write one word every %.0f KiB (%" PRIu64 " words),\n"
         "              read them all back, with a budget of %.0f MiB. Sizes in MiB, from\n"
         "              /proc/self/status and /proc/self/fd; the last column is the\n"
         "              runtime's own count. VmSize counts the reservation (twice: the\n"
         "              runtime maps it once for the program and once for itself);\n"
         "              memfd is the paged data as the kernel holds it, RssShmem the same\n"
         "              pages counted once a view that maps them; RssAnon is the program\n"
         "              and the runtime's tables, and the paged data itself until\n"
         "              the first eviction moves it onto the memfd.\n\n",
         reserve / (double)(1 << 30), stride / 1024.0, words, example_mib(budget));
  printf("  %-26s %9s %9s %9s %9s %9s %9s\n", "checkpoint", "VmSize", "VmRSS", "RssAnon",
         "RssShmem", "memfd", "resident");
  checkpoint("start");
  upg_options_t opt = {.budget = budget};
  example_check(upg_init(&opt), "upg_init");
  char *base = example_map(reserve);
  checkpoint("reserved, nothing touched");
  double t0 = example_now_s();
  write_pass(base, words, stride);
  uint64_t wrong = read_pass(base, words, stride);
  double seconds = example_now_s() - t0;
  example_check(upg_unmap(base, reserve), "upg_unmap");
  checkpoint("unmapped");

  int ok = wrong == 0 && peak_frames_kib * 1024 <= budget;
  printf("\n%" PRIu64 " of %" PRIu64 " words wrong; paged data peaked at %.1f MiB resident"
         " (memfd) against a %.0f MiB budget, in %.2f s: %s\n",
         wrong, words, peak_frames_kib / 1024.0, example_mib(budget), seconds,
         ok ? "OK" : "FAILED");
  printf("The runtime's report follows on stderr.\n");
  fflush(stdout);
  upg_stats_print(stderr);
  upg_shutdown();
  return ok ? 0 : 1;
}
