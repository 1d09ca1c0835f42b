/* sim_output.c: how `upager sim` shows its results: a table, the CSV
 * whose header scripts rely on, and a gnuplot chart. */
#include <stdio.h>
#include <string.h>

#include "sim_cli.h"

static double hit_percent(const upg__sim_result_t *r) {
  return r->requests ? 100.0 * (double)r->hits / (double)r->requests : 0.0;
}

void upg__cli_print_results(FILE *out, const upg__sim_result_t *results, size_t n, int csv) {
  if (csv) fprintf(out, "policy,frames,requests,hits,misses,hit_ratio\n");
  else
    fprintf(out, "%-8s %10s %12s %12s %12s %9s %10s\n", "policy", "frames", "requests", "hits",
            "misses", "hit ratio", "miss ratio");
  for (size_t i = 0; i < n; i++) {
    const upg__sim_result_t *r = &results[i];
    unsigned long long req = r->requests, hits = r->hits, misses = r->requests - r->hits;
    if (csv)
      fprintf(out, "%s,%zu,%llu,%llu,%llu,%.2f\n", r->policy->name, r->frames, req, hits, misses,
              hit_percent(r));
    else
      fprintf(out, "%-8s %10zu %12llu %12llu %12llu %8.2f%% %9.2f%%\n", r->policy->name, r->frames,
              req, hits, misses, hit_percent(r), 100.0 - hit_percent(r));
  }
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

const char *upg__cli_plot_terminal(const char *path) {
  return ends_with(path, ".svg")   ? "svg size 900,560 dynamic"
         : ends_with(path, ".png") ? "pngcairo size 900,560"
                                   : NULL;
}

/* A gnuplot single-quoted string, where '' stands for one quote. */
static void put_quoted(FILE *gp, const char *s) {
  fputc('\'', gp);
  for (; *s; s++) {
    if (*s == '\n') continue;
    if (*s == '\'') fputc('\'', gp);
    fputc(*s, gp);
  }
  fputc('\'', gp);
}

/* Gnuplot reads the data inline, one datablock a policy, so no temporary
 * file is needed; results arrive grouped by policy. */
int upg__cli_plot(const char *path, const char *title, const upg__sim_result_t *results, size_t n) {
  const char *terminal = upg__cli_plot_terminal(path);
  if (terminal == NULL) return -1; /* the command line was checked */
  FILE *gp = popen("gnuplot", "w");
  if (gp == NULL) {
    perror("upager sim: cannot run gnuplot");
    return -1;
  }
  fprintf(gp, "set terminal %s\nset output ", terminal);
  put_quoted(gp, path);
  fprintf(gp, "\nset title ");
  put_quoted(gp, title);
  fprintf(gp, " noenhanced\n");
  fprintf(gp, "set xlabel 'frames'\nset ylabel 'hit ratio (%%)'\nset key bottom right\nset grid\n");
  size_t groups = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == 0 || results[i].policy != results[i - 1].policy)
      fprintf(gp, "%s$d%zu << EOD\n", i ? "EOD\n" : "", groups++);
    fprintf(gp, "%zu %.4f\n", results[i].frames, hit_percent(&results[i]));
  }
  fprintf(gp, "EOD\nplot ");
  for (size_t g = 0, i = 0; i < n; i++)
    if (i == 0 || results[i].policy != results[i - 1].policy) {
      fprintf(gp, "%s$d%zu with linespoints title '%s'", g ? ", " : "", g, results[i].policy->name);
      g++;
    }
  fprintf(gp, "\n");
  int status = pclose(gp);
  if (status != 0) {
    fprintf(stderr, "upager sim: gnuplot failed (status %d) drawing %s\n", status, path);
    return -1;
  }
  return 0;
}
