/* sim_cli.h: what the `sim` and `trace` subcommands' files share: the
 * parsed command line of `upager sim`, list and number parsing, opening a
 * trace with a clear message, and the result printers. */
#ifndef UPAGER_CLI_SIM_CLI_H
#define UPAGER_CLI_SIM_CLI_H

#include <stdio.h>

#include "sim_run.h"
#include "trace_read.h"

#define UPG__CLI_MAX_LIST 256 /* policies or frame counts on one command line */

typedef struct upg__sim_args {
  const upg__sim_policy_t *policies[UPG__CLI_MAX_LIST];
  size_t npolicies;
  size_t frames[UPG__CLI_MAX_LIST];
  size_t nframes;
  const upg__trace_format_t *format; /* NULL: detect */
  size_t page_size;
  int csv;
  int mrc;            /* --mrc given: frames holds its points */
  const char *plot;   /* --plot FILE or NULL */
  size_t tlb_entries; /* --tlb N, 0 when not given */
  unsigned levels;
  int large_pages;
  double tier_ratio; /* --tier RATIO[:SHARE], 0 when not given */
  double tier_share; /* of the budget, 0..1 */
  const char *trace;
} upg__sim_args_t;

/* A positive decimal number no larger than max; 0 or -1. */
int upg__cli_parse_count(const char *text, size_t max, size_t *out);
/* Opens `path` for reading as `format` (NULL to detect); prints why not. */
int upg__cli_open_trace(const char *path, const upg__trace_format_t *format, size_t page_size,
                        upg__refs_t **out);
/* Prints a reader's failure; returns the exit status (2 for bad input). */
int upg__cli_trace_failed(const char *cmd, upg__refs_t *reader, int rc);

void upg__cli_print_results(FILE *out, const upg__sim_result_t *results, size_t n, int csv);
/* The gnuplot terminal for a chart file by its extension, or NULL. */
const char *upg__cli_plot_terminal(const char *path);
/* Renders hit ratio against frames for every policy; 0 or -1 (printed). */
int upg__cli_plot(const char *path, const char *title, const upg__sim_result_t *results, size_t n);
/* `upager sim --mrc`: the points in args->frames. */
int upg__cli_sim_mrc(const upg__sim_args_t *args, upg__refs_t *reader, upg__sim_result_t **results,
                     size_t *n);
/* `upager sim --tier`. */
int upg__cli_sim_tier(const upg__sim_args_t *args, upg__refs_t *reader);
/* `upager sim --tlb`. */
int upg__cli_sim_tlb(const upg__sim_args_t *args, upg__refs_t *reader);

int upg__cmd_sim(int argc, char **argv);
int upg__cmd_trace(int argc, char **argv);

#endif
