/* cli: argument parsing, dispatch and the text/JSON output. The only layer that prints to
 * stdout. */
#ifndef PVH_CLI_H
#define PVH_CLI_H

/* Returns the process exit status: 0 done, 1 refused or failed, 2 usage error. */
int cli_main(int argc, char **argv);

#endif
