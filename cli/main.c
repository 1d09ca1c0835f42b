/* main.c: bin/upager's entry point: the table of subcommands and the
 * top-level options (--help, --version). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "internal.h"
#include "sim_cli.h"
#include "upager.h"

static int usage(FILE *out);

static int cmd_help(int argc, char **argv) {
  (void)argc, (void)argv;
  return usage(stdout);
}

static int cmd_version(int argc, char **argv) {
  (void)argc, (void)argv;
  printf("upager %s\n", upg_version());
  return 0;
}

/* upager options [--markdown]: the plain list is the help's; the markdown
 * one is docs/options.md. */
static int cmd_options(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--markdown") == 0) {
    upg__options_markdown(stdout);
    return 0;
  }
  if (argc != 1) {
    fprintf(stderr, "usage: upager options [--markdown]\n");
    return 2;
  }
  upg__options_describe(stdout);
  return 0;
}

static const upg_cli_command_t commands[] = {
    {"help", "show this help", cmd_help},
    {"version", "print the version", cmd_version},
    {"sim", "replay a page-reference trace through replacement policies", upg__cmd_sim},
    {"trace", "summarise a fault trace written with UPAGER_TRACE", upg__cmd_trace},
    {"run", "run a program with its heap in paged memory", upg_cli_run},
    {"store", "clean URL: remove a Redis store's pages of dead runs", upg_cli_store},
    {"options", "list the UPAGER_* variables (--markdown: docs/options.md)", cmd_options},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static int usage(FILE *out) {
  fprintf(out, "usage: upager [--help | --version] COMMAND [ARGS...]\n\n"
               "A user-space paging runtime: paged memory regions kept under a\n"
               "resident budget by memory protection and a swap file.\n\n"
               "Commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nThe runtime reads, once, at init (docs/options.md):\n");
  upg__options_describe(out);
  return out == stdout ? 0 : 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage(stderr);
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) name = "version";
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "upager: unknown command '%s'\n", argv[1]);
  return usage(stderr);
}
