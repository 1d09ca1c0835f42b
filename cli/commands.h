/* commands.h: the subcommands of bin/upager. Each takes the arguments after
 * its own name (argv[0] is the subcommand) and returns the exit status. */
#ifndef UPAGER_CLI_COMMANDS_H
#define UPAGER_CLI_COMMANDS_H

typedef struct upg_cli_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} upg_cli_command_t;

int upg_cli_run(int argc, char **argv);   /* run.c */
int upg_cli_store(int argc, char **argv); /* store_cmd.c */

#endif
