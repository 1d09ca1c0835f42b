/* run.c: `upager run`: runs an unmodified program with its heap in paged
 * memory. The options become UPAGER_* variables (validated here, so a bad
 * one fails before the program starts), libupager_preload.so is put first
 * in LD_PRELOAD, and upager replaces itself with the program: its exit
 * status, or its death by a signal, is upager's own. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "internal.h"

#define PRELOAD_NAME "libupager_preload.so"

typedef struct run_option {
  const char *flag;
  const char *variable;
  int takes_value;
} run_option_t;

static const run_option_t run_options[] = {
    {"--budget", "UPAGER_BUDGET", 1}, {"--page-size", "UPAGER_PAGE_SIZE", 1},
    {"--policy", "UPAGER_POLICY", 1}, {"--swap-dir", "UPAGER_SWAP_DIR", 1},
    {"--stats", "UPAGER_STATS", 0},   {"--trace", "UPAGER_TRACE", 1},
};
#define NRUN_OPTIONS (sizeof run_options / sizeof run_options[0])

static int run_usage(FILE *out) {
  fprintf(out,
          "usage: upager run [--budget SIZE] [--page-size SIZE] [--policy P] [--swap-dir DIR]\n"
          "                  [--stats] [--trace FILE] -- PROGRAM [ARGS...]\n\n"
          "Runs PROGRAM with malloc and friends served from paged memory kept under the\n"
          "budget. Exits with PROGRAM's status, or dies by the signal that killed it;\n"
          "125 if upager itself fails, 126 if PROGRAM cannot be run, 127 if not found.\n"
          "See docs/run.md.\n");
  return out == stdout ? 0 : 125;
}

/* Matches "--flag VALUE" and "--flag=VALUE"; advances *i past what it used.
 * 1 on a match, 0 if not this option, -1 on a missing value. */
static int match_option(const run_option_t *o, int argc, char **argv, int *i) {
  size_t n = strlen(o->flag);
  const char *arg = argv[*i];
  if (strncmp(arg, o->flag, n) != 0 || (arg[n] != '\0' && arg[n] != '=')) return 0;
  if (!o->takes_value) {
    if (arg[n] == '=') return -1;
    setenv(o->variable, "1", 1);
    return 1;
  }
  const char *value = arg[n] == '=' ? arg + n + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
  if (value == NULL) return -1;
  setenv(o->variable, value, 1);
  return 1;
}

/* The preload library: UPAGER_PRELOAD if set, else installed beside the
 * binary (bin/../LIBDIR), else in the build tree this binary came from. */
static int find_preload(char *out, size_t size) {
  const char *forced = getenv("UPAGER_PRELOAD");
  if (forced != NULL) return snprintf(out, size, "%s", forced) < (int)size ? 0 : -1;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    snprintf(out, size, "%s/%s/%s", dirname(self), UPG_PRELOAD_FROM_BINDIR, PRELOAD_NAME);
    if (access(out, R_OK) == 0) return 0;
  }
  snprintf(out, size, "%s", UPG_PRELOAD_BUILD_PATH);
  return access(out, R_OK) == 0 ? 0 : -1;
}

static int put_preload_first(const char *preload) {
  const char *existing = getenv("LD_PRELOAD");
  char *value;
  int rc = existing != NULL && *existing != '\0' ? asprintf(&value, "%s:%s", preload, existing)
                                                 : asprintf(&value, "%s", preload);
  if (rc < 0) return -1;
  rc = setenv("LD_PRELOAD", value, 1);
  free(value);
  return rc;
}

int upg_cli_run(int argc, char **argv) {
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return run_usage(stdout);
    int matched = 0;
    for (size_t k = 0; k < NRUN_OPTIONS && matched == 0; k++)
      matched = match_option(&run_options[k], argc, argv, &i);
    if (matched == 1) continue;
    if (matched == 0 && argv[i][0] != '-') break; /* the program, without "--" */
    fprintf(stderr, "upager run: %s '%s'\n",
            matched < 0 ? "missing or extra value for" : "unknown option", argv[i]);
    return run_usage(stderr);
  }
  if (i < argc && strcmp(argv[i], "--") == 0) i++;
  if (i >= argc) return run_usage(stderr);

  upg__config_t cfg; /* fails here, with the variable named, not in the program */
  if (upg__options_resolve(NULL, &cfg) != 0) return 125;
  char preload[PATH_MAX];
  if (find_preload(preload, sizeof preload) != 0) {
    fprintf(stderr, "upager run: cannot find %s (set UPAGER_PRELOAD to its path)\n", PRELOAD_NAME);
    return 125;
  }
  if (put_preload_first(preload) != 0) return 125;
  execvp(argv[i], argv + i);
  int err = errno;
  fprintf(stderr, "upager run: cannot run '%s': %s\n", argv[i], strerror(err));
  return err == ENOENT ? 127 : 126;
}
