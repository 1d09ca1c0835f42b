/* fault_scaling.c: fault throughput with one thread and with two, each
 * faulting on its own pages. Every access is a major fault (a random page
 * of a region four times the budget, readahead off), so the figure shows
 * whether faults wait for each other's I/O: with no lock held across I/O,
 * two threads overlap their reads.
 *
 *   fault_scaling [budget [faults_per_thread]]      defaults: 64M 20000
 *
 * Target (issue 5): two threads at least 1.6x one thread's throughput. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "upager.h"

#define PAGE 4096u

typedef struct job {
  volatile char *base;
  size_t pages; /* this thread's half */
  size_t faults;
  uint64_t seed;
} job_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *touch_random(void *arg) {
  job_t *job = arg;
  uint64_t x = job->seed;
  volatile char sink = 0;
  for (size_t i = 0; i < job->faults; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    sink += job->base[(x % job->pages) * PAGE];
  }
  (void)sink;
  return NULL;
}

/* Faults per second with `threads` threads, each on its own half. */
static double run(volatile char *region, size_t pages, int threads, size_t faults) {
  pthread_t tid[2];
  job_t jobs[2];
  upg_stats_t before, after;
  upg_stats(&before);
  double t0 = now_s();
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job_t){region + (size_t)t * (pages / 2) * PAGE, pages / 2, faults, 88172645463325252ull + (uint64_t)(16 * threads + t)};
    pthread_create(&tid[t], NULL, touch_random, &jobs[t]);
  }
  for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  double seconds = now_s() - t0;
  upg_stats(&after);
  uint64_t majors = after.fault_major - before.fault_major;
  printf("  %d thread%s: %8llu major faults in %6.2f s: %8.0f faults/s (%llu minor, %llu waited)\n",
         threads, threads > 1 ? "s" : " ", (unsigned long long)majors, seconds,
         (double)majors / seconds, (unsigned long long)(after.fault_minor - before.fault_minor),
         (unsigned long long)(after.fault_wait - before.fault_wait));
  return (double)majors / seconds;
}

int main(int argc, char **argv) {
  size_t budget = argc > 1 ? strtoull(argv[1], NULL, 0) << 20 : (size_t)64 << 20;
  size_t faults = argc > 2 ? strtoull(argv[2], NULL, 0) : 20000;
  upg_options_t opt = {.budget = budget};
  int rc = upg_init(&opt);
  if (rc != 0) {
    fprintf(stderr, "upg_init: %s (%s)\n", upg_strerror(rc), upg_last_error());
    return 1;
  }
  size_t pages = 4 * budget / PAGE;
  volatile char *region = upg_map(pages * PAGE, 0);
  if (region == NULL) {
    fprintf(stderr, "upg_map: %s\n", upg_strerror(-errno));
    return 1;
  }
  for (size_t p = 0; p < pages; p++) region[p * PAGE] = (char)p; /* all in swap, mostly */
  upg_advise((void *)region, pages * PAGE, UPG_ADV_RANDOM);
  printf("fault_scaling: %zu MiB budget, %zu MiB region, random reads, readahead off\n",
         budget >> 20, pages * PAGE >> 20);
  double one = run(region, pages, 1, faults);
  double two = run(region, pages, 2, faults);
  printf("  two threads / one thread: %.2fx\n", two / one);
  upg_shutdown();
  return 0;
}
