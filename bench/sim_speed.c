/* sim_speed.c: replay speed of `upager sim`, in references a second on
 * one core, parsing and decompression included: for each policy the trace
 * is opened, read and simulated from scratch, exactly as the command does.
 * A first row that only reads the trace shows what parsing costs alone.
 *
 * A pass lasts tens of milliseconds, so one scheduling hiccup of a shared
 * VM moves it by a quarter: every row is timed over PASSES passes, taken
 * in turn (read only, then each policy, then again), and reported as the
 * median, of CPU time (this thread's, the stable one) and of wall time.
 *
 *   sim_speed TRACE [FRAMES [POLICY...]]   defaults: 32768 fifo lru clock
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_run.h"

#define PASSES 7
#define MAX_ROWS 16

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One row of the table: what it measures and each pass's times. */
typedef struct row {
  const char *name;
  const upg__sim_policy_t *policy; /* NULL for the read-only row */
  unsigned long long refs;
  double hit;
  double wall[PASSES], cpu[PASSES];
} row_t;

static upg__refs_t *open_trace(const char *path) {
  upg__input_t *in;
  upg__refs_t *r;
  if (upg__input_open_file(path, &in) != 0 || upg__refs_open(in, path, NULL, 4096, &r) != 0) {
    fprintf(stderr, "sim_speed: cannot open %s\n", path);
    exit(2);
  }
  return r;
}

/* Reads the whole trace and nothing else; the references read. */
static unsigned long long read_only(upg__refs_t *r) {
  static uint64_t batch[4096];
  unsigned long long total = 0;
  for (long got; (got = upg__refs_next(r, batch, 4096)) > 0;) total += (unsigned long long)got;
  return total;
}

/* One pass of one row, timed from the trace's opening to its closing. */
static void run_pass(const char *path, size_t frames, row_t *row, int pass) {
  double wall = clock_s(CLOCK_MONOTONIC), cpu = clock_s(CLOCK_THREAD_CPUTIME_ID);
  upg__refs_t *r = open_trace(path);
  if (row->policy == NULL) {
    row->refs = read_only(r);
  } else {
    upg__sim_result_t result = {row->policy, frames, 0, 0};
    if (upg__sim_run(r, &result, 1) != 0) {
      fprintf(stderr, "sim_speed: %s\n", upg__refs_error(r));
      exit(1);
    }
    row->refs = (unsigned long long)result.requests;
    row->hit = 100.0 * (double)result.hits / (double)result.requests;
  }
  upg__refs_close(r);
  row->wall[pass] = clock_s(CLOCK_MONOTONIC) - wall;
  row->cpu[pass] = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v) {
  qsort(v, PASSES, sizeof *v, by_value);
  return v[PASSES / 2];
}

static void report(row_t *row, size_t frames) {
  double wall = median(row->wall), cpu = median(row->cpu);
  printf("%-10s %8zu %10llu %7.3f s %7.3f s %9.1f %9.1f %8.2f%%\n", row->name,
         row->policy != NULL ? frames : 0, row->refs, wall, cpu, (double)row->refs / cpu / 1e6,
         (double)row->refs / wall / 1e6, row->hit);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sim_speed TRACE [FRAMES [POLICY...]]\n");
    return 2;
  }
  size_t frames = argc > 2 ? strtoul(argv[2], NULL, 10) : 32768;
  static const char *const defaults[] = {"fifo", "lru", "clock"};
  const char *const *names = argc > 3 ? (const char *const *)argv + 3 : defaults;
  int nrows = 1 + (argc > 3 ? argc - 3 : 3);
  if (nrows > MAX_ROWS) {
    fprintf(stderr, "sim_speed: at most %d policies\n", MAX_ROWS - 1);
    return 2;
  }
  static row_t rows[MAX_ROWS];
  rows[0].name = "read only";
  for (int i = 1; i < nrows; i++) {
    rows[i].name = names[i - 1];
    if ((rows[i].policy = upg__sim_policy_find(names[i - 1])) == NULL) {
      fprintf(stderr, "sim_speed: unknown policy %s\n", names[i - 1]);
      return 2;
    }
  }
  for (int pass = 0; pass < PASSES; pass++)
    for (int i = 0; i < nrows; i++) run_pass(argv[1], frames, &rows[i], pass);

  printf("median of %d passes\n", PASSES);
  printf("%-10s %8s %10s %9s %9s %9s %9s %9s\n", "policy", "frames", "refs", "wall", "cpu",
         "Mref/cpu-s", "Mref/s", "hit");
  for (int i = 0; i < nrows; i++) report(&rows[i], frames);
  return 0;
}
