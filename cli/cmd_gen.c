/* snapmla gen: spec -> CUDA source(s), the generator's output for reading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fileio.h"

static int is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int run_gen(int argc, char **argv)
{
    const char *spec_path = NULL, *output = NULL;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            output = argv[++i];
        else if (argv[i][0] == '-')
            return cli_usage_error(&cli_gen, "unknown option or missing value");
        else if (!spec_path)
            spec_path = argv[i];
        else
            return cli_usage_error(&cli_gen, "one SPEC at a time");
    }
    if (!spec_path)
        return cli_usage_error(&cli_gen, "missing SPEC");
    snapmla_error err;
    snapmla_spec *spec;
    if (snapmla_spec_load(spec_path, &spec, &err) != SNAPMLA_OK)
        return cli_report(&err);
    int to_dir = output && (spec->count > 1 || is_directory(output));
    if (spec->count > 1 && !output) {
        snapmla_spec_free(spec);
        return cli_usage_error(&cli_gen, "the spec is a sweep: give -o DIR for one file per variant");
    }
    if (to_dir && snapmla_make_dirs(output, &err) != SNAPMLA_OK) {
        snapmla_spec_free(spec);
        return cli_report(&err);
    }
    int code = CLI_OK;
    for (size_t i = 0; i < spec->count && code == CLI_OK; ++i) {
        char *source;
        size_t length;
        if (snapmla_emit(&spec->variants[i], &source, &length, &err) != SNAPMLA_OK) {
            code = cli_report(&err);
            break;
        }
        if (!output) {
            if (fwrite(source, 1, length, stdout) != length)
                code = CLI_FAILED;
        } else {
            char path[4096];
            if (to_dir)
                snprintf(path, sizeof path, "%s/%s.cu", output, spec->variants[i].name);
            else
                snprintf(path, sizeof path, "%s", output);
            if (snapmla_write_file_atomic(path, source, length, &err) != SNAPMLA_OK)
                code = cli_report(&err);
            else
                fprintf(stderr, "wrote %s\n", path);
        }
        free(source);
    }
    snapmla_spec_free(spec);
    return code;
}

const cli_command cli_gen = {
    "gen", "emit the CUDA source of each variant of a spec",
    "usage: snapmla gen SPEC [-o FILE|DIR]\n\n"
    "Emits the self-contained CUDA source of the spec's variant to stdout or FILE.\n"
    "A sweep (several variants) needs -o DIR and writes DIR/<variant>.cu each.\n"
    "Output is deterministic: the same spec gives the same bytes.\n",
    run_gen,
};
