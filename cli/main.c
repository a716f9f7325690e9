/* snapmla: entry point of the command line; dispatches to the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const cli_command *const commands[] = {&cli_gen, &cli_list, &cli_build, &cli_cache,
                                              &cli_run, &cli_fidelity, &cli_bench, &cli_tune, &cli_inspect};
enum { COMMAND_COUNT = sizeof commands / sizeof commands[0] };

static void usage(FILE *out)
{
    fprintf(out, "usage: snapmla COMMAND [ARGS]   (snapmla COMMAND --help for more)\n\n"
                 "Generates, compiles and runs MLA decode kernels from YAML specs.\n\n"
                 "commands:\n");
    for (int i = 0; i < COMMAND_COUNT; ++i)
        fprintf(out, "  %-7s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\nversion %s (generator %d); docs/spec.md has the spec schema.\n",
            SNAPMLA_VERSION, SNAPMLA_GENERATOR_VERSION);
}

int cli_report(const snapmla_error *err)
{
    fprintf(stderr, "snapmla: %s\n", err->message);
    switch (err->status) {
    case SNAPMLA_OK: return CLI_OK;
    case SNAPMLA_ERR_SPEC:
    case SNAPMLA_ERR_INVALID_ARG:
    case SNAPMLA_ERR_IO: return CLI_USAGE;
    default: return CLI_FAILED;
    }
}

int cli_load_spec(const char *path, snapmla_spec **specs, int *count)
{
    snapmla_error err;
    if (snapmla_spec_load(path, &specs[*count], &err) != SNAPMLA_OK)
        return cli_report(&err);
    ++*count;
    return CLI_OK;
}

void cli_free_specs(snapmla_spec **specs, int count)
{
    for (int s = 0; s < count; ++s)
        snapmla_spec_free(specs[s]);
    free(specs);
}

int cli_writable_file(const char *path)
{
    struct stat st;
    char folder[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (strlen(path) + sizeof ".tmp" > sizeof folder)
        errno = ENAMETOOLONG;
    else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        errno = EISDIR;
    else {
        if (!slash)
            snprintf(folder, sizeof folder, ".");
        else
            snprintf(folder, sizeof folder, "%.*s", n ? (int)n : 1, path);   /* "/x": "/" */
        if (access(folder, W_OK | X_OK) == 0)
            return 1;
    }
    fprintf(stderr, "snapmla: cannot write '%s': %s\n", path, strerror(errno));
    return 0;
}

int cli_wants_help(const cli_command *command, int argc, char **argv)
{
    for (int i = 1; i < argc; ++i)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(command->usage, stdout);
            return 1;
        }
    return 0;
}

int cli_usage_error(const cli_command *command, const char *problem)
{
    fprintf(stderr, "snapmla %s: %s\n\n%s", command->name, problem, command->usage);
    return CLI_USAGE;
}

int cli_parse_int(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    long long value = 0;
    if (*s < '0' || *s > '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; ++s)
        if ((value = value * 10 + (*s - '0')) > hi)
            return 0;
    if (value < lo)
        return 0;
    *p = s;
    *out = (int)value;
    return 1;
}

int cli_int_option(const cli_command *command, const char *option, const char *value, int lo,
                   int hi, int *out)
{
    const char *p = value;
    if (cli_parse_int(&p, lo, hi, out) && *p == '\0')
        return CLI_OK;
    char why[256];
    snprintf(why, sizeof why, "%s: '%.64s' is not allowed; allowed: %d..%d", option, value, lo, hi);
    return cli_usage_error(command, why);
}

int cli_u64_option(const cli_command *command, const char *option, const char *value,
                   uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long parsed = strtoull(value, &end, 10);
    if (value[0] >= '0' && value[0] <= '9' && *end == '\0' && errno == 0) {
        *out = parsed;
        return CLI_OK;
    }
    char why[256];
    snprintf(why, sizeof why, "%s: '%.64s' is not allowed; allowed: 0..18446744073709551615",
             option, value);
    return cli_usage_error(command, why);
}

void cli_log(void *verbose, snapmla_log_level level, const char *message)
{
    if (level == SNAPMLA_LOG_WARN || (verbose && *(int *)verbose))
        fprintf(stderr, "%s\n", message);
}

snapmla_context *cli_context(int *verbose, const char *const *aot_dirs, int aot_count)
{
    snapmla_options options = {0};
    options.log = cli_log;
    options.log_user = verbose;
    options.aot_dirs = aot_dirs;
    options.aot_dir_count = aot_count;
    snapmla_context *ctx = NULL;
    snapmla_error err;
    if (snapmla_context_create(&options, &ctx, &err) != SNAPMLA_OK) {
        cli_report(&err);
        return NULL;
    }
    return ctx;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("snapmla %s (generator %d)\n", SNAPMLA_VERSION, SNAPMLA_GENERATOR_VERSION);
        return CLI_OK;
    }
    for (int i = 0; i < COMMAND_COUNT; ++i)
        if (strcmp(argv[1], commands[i]->name) == 0) {
            if (cli_wants_help(commands[i], argc - 1, argv + 1))
                return CLI_OK;
            return commands[i]->run(argc - 1, argv + 1);
        }
    fprintf(stderr, "snapmla: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
