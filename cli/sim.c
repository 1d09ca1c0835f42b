/* sim.c: `upager sim`: the command line of the trace-driven simulator, and
 * the plain replay (every policy at every --frames count, one pass). The
 * --mrc and --tlb modes live in sim_mrc.c and sim_tlb.c. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim_cli.h"

static int usage(FILE *out) {
  fprintf(out, "usage: upager sim [--policy P[,P...]] [--frames N[,N...]] [--format text|arc|upt]\n"
               "                  [--page-size S] [--csv] [--mrc MIN:MAX:STEPS]\n"
               "                  [--plot FILE.svg|FILE.png] TRACE|-\n"
               "       upager sim --tlb N [--levels L] [--large-pages] [--format F] TRACE|-\n"
               "       upager sim --tier RATIO[:SHARE] --frames N[,N...] [--format F] TRACE|-\n\n"
               "Replays a page-reference trace through replacement policies and reports hits\n"
               "and misses. TRACE ending in .zst is decompressed. Formats: text (a page number\n"
               "or a 0x address a line), arc (the ARC paper's traces, detected by .lis), upt\n"
               "(the runtime's UPAGER_TRACE output, detected by its magic). --tier models the\n"
               "compressed tier: the references frames, the pool (SHARE percent of the budget,\n"
               "default 50, holding pages at RATIO:1) and the disk would serve, under LRU.\n\n"
               "Policies:\n");
  for (size_t i = 0; i < upg__sim_policy_count(); i++)
    fprintf(out, "  %-6s %s\n", upg__sim_policy_at(i)->name, upg__sim_policy_at(i)->summary);
  return out == stdout ? 0 : 2;
}

/* Prints a usage error; returns the exit status 2. */
__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "upager sim: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return 2;
}

int upg__cli_parse_count(const char *text, size_t max, size_t *out) {
  char *end;
  if (*text < '0' || *text > '9') return -1;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v == 0 || v > max) return -1;
  *out = (size_t)v;
  return 0;
}

/* Splits a comma-separated list in place; the number of items or -1. */
static int split(char *list, char **items) {
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
       tok = strtok_r(NULL, ",", &save)) {
    if (n == UPG__CLI_MAX_LIST) return -1;
    items[n++] = tok;
  }
  return n;
}

static int parse_policies(char *list, upg__sim_args_t *a) {
  char *items[UPG__CLI_MAX_LIST];
  int n = split(list, items);
  if (n <= 0) return bad("--policy needs a list of policies");
  for (int i = 0; i < n; i++) {
    a->policies[i] = upg__sim_policy_find(items[i]);
    if (a->policies[i] == NULL) {
      fprintf(stderr, "upager sim: unknown policy '%s'; known:", items[i]);
      for (size_t k = 0; k < upg__sim_policy_count(); k++)
        fprintf(stderr, " %s", upg__sim_policy_at(k)->name);
      fprintf(stderr, "\n");
      return 2;
    }
  }
  a->npolicies = (size_t)n;
  return 0;
}

#define MAX_FRAMES ((size_t)1 << 30)

static int parse_frames(char *list, upg__sim_args_t *a) {
  char *items[UPG__CLI_MAX_LIST];
  int n = split(list, items);
  if (n <= 0) return bad("--frames needs a list of frame counts");
  for (int i = 0; i < n; i++)
    if (upg__cli_parse_count(items[i], MAX_FRAMES, &a->frames[i]) != 0)
      return bad("frames must be between 1 and 2^30, not '%s'", items[i]);
  a->nframes = (size_t)n;
  return 0;
}

/* The k-th of `steps` frame counts spread evenly from lo to hi, rounded. */
static size_t spread(size_t lo, size_t hi, size_t steps, size_t k) {
  if (steps == 1) return lo;
  return lo + (size_t)((double)(hi - lo) * (double)k / (double)(steps - 1) + 0.5);
}

/* MIN:MAX:STEPS: STEPS frame counts spread evenly from MIN to MAX. */
static int parse_mrc(char *spec, upg__sim_args_t *a) {
  char *items[3], *save = NULL;
  size_t v[3];
  int n = 0;
  for (char *tok = strtok_r(spec, ":", &save); tok != NULL && n < 3;
       tok = strtok_r(NULL, ":", &save))
    items[n++] = tok;
  if (n != 3 || upg__cli_parse_count(items[0], MAX_FRAMES, &v[0]) != 0 ||
      upg__cli_parse_count(items[1], MAX_FRAMES, &v[1]) != 0 ||
      upg__cli_parse_count(items[2], UPG__CLI_MAX_LIST, &v[2]) != 0 || v[0] > v[1])
    return bad("--mrc wants MIN:MAX:STEPS with 1 <= MIN <= MAX <= 2^30 and 1 <= STEPS <= 256");
  a->nframes = 0;
  for (size_t k = 0; k < v[2]; k++) {
    size_t f = spread(v[0], v[1], v[2], k);
    if (a->nframes == 0 || a->frames[a->nframes - 1] != f) a->frames[a->nframes++] = f;
  }
  a->mrc = 1;
  return 0;
}

/* RATIO[:SHARE]: a ratio of at least 1, a share of 1 to 90 percent. */
static int parse_tier(const char *spec, upg__sim_args_t *a) {
  char *end;
  a->tier_ratio = strtod(spec, &end);
  a->tier_share = 0.5;
  if (*end == ':') a->tier_share = strtod(end + 1, &end) / 100;
  if (*end != '\0' || !(a->tier_ratio >= 1 && a->tier_ratio <= 64) ||
      !(a->tier_share >= 0.01 && a->tier_share <= 0.9))
    return bad("--tier wants RATIO[:SHARE], a ratio from 1 to 64 and a share of 1 to 90 percent");
  return 0;
}

static int parse_args(int argc, char **argv, upg__sim_args_t *a) {
  enum {
    O_POLICY = 256,
    O_FRAMES,
    O_FORMAT,
    O_PAGE_SIZE,
    O_CSV,
    O_MRC,
    O_PLOT,
    O_TLB,
    O_LEVELS,
    O_LARGE,
    O_TIER,
    O_HELP
  };
  static const struct option options[] = {{"policy", required_argument, NULL, O_POLICY},
                                          {"frames", required_argument, NULL, O_FRAMES},
                                          {"format", required_argument, NULL, O_FORMAT},
                                          {"page-size", required_argument, NULL, O_PAGE_SIZE},
                                          {"csv", no_argument, NULL, O_CSV},
                                          {"mrc", required_argument, NULL, O_MRC},
                                          {"plot", required_argument, NULL, O_PLOT},
                                          {"tlb", required_argument, NULL, O_TLB},
                                          {"levels", required_argument, NULL, O_LEVELS},
                                          {"large-pages", no_argument, NULL, O_LARGE},
                                          {"tier", required_argument, NULL, O_TIER},
                                          {"help", no_argument, NULL, O_HELP},
                                          {NULL, 0, NULL, 0}};
  int opt, rc = 0;
  size_t n = 0;
  optind = 1;
  while (rc == 0 && (opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
      case O_POLICY: rc = parse_policies(optarg, a); break;
      case O_FRAMES:
        rc = a->mrc ? bad("--frames and --mrc exclude each other") : parse_frames(optarg, a);
        break;
      case O_FORMAT:
        if ((a->format = upg__trace_format_find(optarg)) == NULL)
          rc = bad("unknown format '%s' (text, arc or upt)", optarg);
        break;
      case O_PAGE_SIZE:
        if (upg__cli_parse_count(optarg, (size_t)1 << 40, &n) != 0 || (n & (n - 1)) != 0)
          rc = bad("--page-size must be a power of two, not '%s'", optarg);
        a->page_size = n;
        break;
      case O_CSV: a->csv = 1; break;
      case O_MRC:
        rc = a->nframes ? bad("--frames and --mrc exclude each other") : parse_mrc(optarg, a);
        break;
      case O_PLOT:
        a->plot = optarg;
        if (upg__cli_plot_terminal(optarg) == NULL)
          rc = bad("--plot wants a file ending in .svg or .png, not '%s'", optarg);
        break;
      case O_TLB:
        if (upg__cli_parse_count(optarg, MAX_FRAMES, &a->tlb_entries) != 0)
          rc = bad("--tlb wants a number of entries from 1 to 2^30, not '%s'", optarg);
        break;
      case O_LEVELS:
        if (upg__cli_parse_count(optarg, 5, &n) != 0 || n < 2)
          rc = bad("--levels must be 2 to 5, not '%s'", optarg);
        a->levels = (unsigned)n;
        break;
      case O_LARGE: a->large_pages = 1; break;
      case O_TIER: rc = parse_tier(optarg, a); break;
      case O_HELP: return usage(stdout) == 0 ? -1 : 2;
      default: return usage(stderr);
    }
  }
  if (rc != 0) return rc;
  if (optind != argc - 1) return usage(stderr);
  a->trace = argv[optind];
  if (a->tlb_entries == 0 && a->nframes == 0)
    return bad("--frames is required unless --mrc or --tlb is given");
  if (a->plot != NULL && a->tlb_entries != 0) return bad("--plot draws policies, not --tlb");
  if (a->npolicies == 0)
    for (; a->npolicies < upg__sim_policy_count(); a->npolicies++)
      a->policies[a->npolicies] = upg__sim_policy_at(a->npolicies);
  return 0;
}

int upg__cli_open_trace(const char *path, const upg__trace_format_t *format, size_t page_size,
                        upg__refs_t **out) {
  upg__input_t *in;
  int rc = upg__input_open_file(path, &in);
  if (rc == 0) rc = upg__refs_open(in, path, format, page_size, out);
  if (rc != 0) fprintf(stderr, "upager: cannot open %s: %s\n", path, strerror(-rc));
  return rc;
}

int upg__cli_trace_failed(const char *cmd, upg__refs_t *reader, int rc) {
  if (rc == -EINVAL || *upg__refs_error(reader) != '\0') {
    fprintf(stderr, "upager %s: %s\n", cmd, upg__refs_error(reader));
    return 2;
  }
  if (rc == -E2BIG)
    fprintf(stderr, "upager %s: OPT and --mrc take traces of under 2^32 references\n", cmd);
  else fprintf(stderr, "upager %s: %s\n", cmd, strerror(-rc));
  return 1;
}

/* The plain replay: every policy at every frame count. */
static int replay(const upg__sim_args_t *a, upg__refs_t *reader, upg__sim_result_t **out,
                  size_t *n) {
  upg__sim_result_t *results = calloc(a->npolicies * a->nframes, sizeof *results);
  if (results == NULL) return -ENOMEM;
  for (size_t p = 0; p < a->npolicies; p++)
    for (size_t f = 0; f < a->nframes; f++)
      results[p * a->nframes + f] = (upg__sim_result_t){a->policies[p], a->frames[f], 0, 0};
  *n = a->npolicies * a->nframes;
  *out = results;
  int rc = upg__sim_run(reader, results, *n);
  if (rc != 0) free(results);
  return rc;
}

static int simulate(const upg__sim_args_t *a, upg__refs_t *reader) {
  upg__sim_result_t *results;
  size_t n;
  int rc = a->mrc ? upg__cli_sim_mrc(a, reader, &results, &n) : replay(a, reader, &results, &n);
  if (rc != 0) return upg__cli_trace_failed("sim", reader, rc);
  if (n > 0 && results[0].requests == 0) {
    free(results);
    return bad("%s: empty trace (no references)", a->trace);
  }
  const upg__trace_format_t *format = upg__refs_format(reader);
  if (!a->csv) {
    printf("%s: %s trace, %llu references\n", a->trace, format->name,
           (unsigned long long)results[0].requests);
    if (format->citation != NULL) printf("trace format and traces: %s\n", format->citation);
  }
  upg__cli_print_results(stdout, results, n, a->csv);
  char title[512];
  snprintf(title, sizeof title, "%s%s%s", a->trace, format->citation ? " - traces of " : "",
           format->citation ? format->citation : "");
  int status = 0;
  if (a->plot != NULL && upg__cli_plot(a->plot, title, results, n) != 0) status = 1;
  free(results);
  return status;
}

int upg__cmd_sim(int argc, char **argv) {
  upg__sim_args_t args = {.page_size = 4096, .levels = 4};
  int rc = parse_args(argc, argv, &args);
  if (rc != 0) return rc < 0 ? 0 : rc;
  upg__refs_t *reader;
  if (upg__cli_open_trace(args.trace, args.format, args.page_size, &reader) != 0) return 2;
  rc = args.tlb_entries != 0  ? upg__cli_sim_tlb(&args, reader)
       : args.tier_ratio != 0 ? upg__cli_sim_tier(&args, reader)
                              : simulate(&args, reader);
  upg__refs_close(reader);
  return rc;
}
