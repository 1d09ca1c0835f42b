/* sim_speed.c: replay speed of `upager sim`, in references a second on
 * one core, parsing and decompression included: for each policy the trace
 * is opened, read and simulated from scratch, exactly as the command does.
 * A first pass that only reads the trace shows what parsing costs alone.
 *
 *   sim_speed TRACE [FRAMES [POLICY...]]   defaults: 32768 fifo lru clock
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_run.h"

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall and CPU time: on a shared machine the CPU time of this one thread
 * is the fair measure of "one core"; both are printed. */
typedef struct stopwatch {
  double wall, cpu;
} stopwatch_t;

static stopwatch_t start(void) {
  return (stopwatch_t){clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_THREAD_CPUTIME_ID)};
}

static upg__refs_t *open_trace(const char *path) {
  upg__input_t *in;
  upg__refs_t *r;
  if (upg__input_open_file(path, &in) != 0 || upg__refs_open(in, path, NULL, 4096, &r) != 0) {
    fprintf(stderr, "sim_speed: cannot open %s\n", path);
    exit(2);
  }
  return r;
}

static void report(const char *what, size_t frames, unsigned long long refs, stopwatch_t since,
                   double hit) {
  double wall = clock_s(CLOCK_MONOTONIC) - since.wall,
         cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - since.cpu;
  printf("%-10s %8zu %10llu %7.3f s %7.3f s %9.1f %9.1f %8.2f%%\n", what, frames, refs, wall, cpu,
         (double)refs / cpu / 1e6, (double)refs / wall / 1e6, hit);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sim_speed TRACE [FRAMES [POLICY...]]\n");
    return 2;
  }
  size_t frames = argc > 2 ? strtoul(argv[2], NULL, 10) : 32768;
  static const char *const defaults[] = {"fifo", "lru", "clock"};
  const char *const *names = argc > 3 ? (const char *const *)argv + 3 : defaults;
  int npolicies = argc > 3 ? argc - 3 : 3;

  printf("%-10s %8s %10s %9s %9s %9s %9s %9s\n", "policy", "frames", "refs", "wall", "cpu",
         "Mref/cpu-s", "Mref/s", "hit");
  static uint64_t batch[4096];
  upg__refs_t *r = open_trace(argv[1]);
  unsigned long long total = 0;
  stopwatch_t t0 = start();
  for (long got; (got = upg__refs_next(r, batch, 4096)) > 0;) total += (unsigned long long)got;
  report("read only", 0, total, t0, 0);
  upg__refs_close(r);

  for (int p = 0; p < npolicies; p++) {
    upg__sim_result_t result = {upg__sim_policy_find(names[p]), frames, 0, 0};
    if (result.policy == NULL) {
      fprintf(stderr, "sim_speed: unknown policy %s\n", names[p]);
      return 2;
    }
    r = open_trace(argv[1]);
    t0 = start();
    if (upg__sim_run(r, &result, 1) != 0) {
      fprintf(stderr, "sim_speed: %s\n", upg__refs_error(r));
      return 1;
    }
    report(names[p], frames, (unsigned long long)result.requests, t0,
           100.0 * (double)result.hits / (double)result.requests);
    upg__refs_close(r);
  }
  return 0;
}
