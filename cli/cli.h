/* The snapmla command line: one file per subcommand, this header between them. */
#ifndef SNAPMLA_CLI_H
#define SNAPMLA_CLI_H

#include "snapmla.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;   /* full --help text */
    int (*run)(int argc, char **argv);   /* argv[0] is the subcommand */
} cli_command;

extern const cli_command cli_gen, cli_list, cli_build, cli_cache, cli_run, cli_fidelity,
    cli_bench, cli_tune, cli_inspect;
/* `snapmla tune merge` and `snapmla tune pick` (tune_db_cmds.c); argv[0] is
 * "merge" or "pick". */
int cli_tune_merge(int argc, char **argv);
int cli_tune_pick(int argc, char **argv);

/* Exit codes: 0 ok, 1 failure of the job, 2 bad usage or bad input. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Prints "snapmla: MESSAGE" to stderr and returns the exit code for status. */
int cli_report(const snapmla_error *err);
/* Loads the spec at path into specs[*count] and counts it: CLI_OK, or the
 * exit code of the error it reported. */
int cli_load_spec(const char *path, snapmla_spec **specs, int *count);
/* Frees specs[0..count) and the array (as filled by cli_load_spec). */
void cli_free_specs(snapmla_spec **specs, int count);
/* Whether a file can be written at path (its folder exists and is
 * writable, it is not a folder); if not, says why on stderr. For output
 * files checked before a long job. */
int cli_writable_file(const char *path);
/* True when argv holds -h or --help; prints usage then. */
int cli_wants_help(const cli_command *command, int argc, char **argv);
int cli_usage_error(const cli_command *command, const char *problem);
/* Reads a decimal integer in lo..hi at *p (digits only, no sign) and moves
 * *p past it; 0 when there is none or it is out of range. */
int cli_parse_int(const char **p, int lo, int hi, int *out);
/* An option's whole value as an integer in lo..hi: CLI_OK, or the usage
 * error "OPTION: 'VALUE' is not allowed; allowed: LO..HI". */
int cli_int_option(const cli_command *command, const char *option, const char *value, int lo,
                   int hi, int *out);
/* An option's whole value as an unsigned 64-bit integer (a seed). */
int cli_u64_option(const cli_command *command, const char *option, const char *value,
                   uint64_t *out);
/* Log callback for contexts: warnings to stderr, info when verbose. */
void cli_log(void *verbose, snapmla_log_level level, const char *message);
/* A context with the CLI's logger; returns NULL after reporting an error. */
snapmla_context *cli_context(int *verbose, const char *const *aot_dirs, int aot_count);

#endif
