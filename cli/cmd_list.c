/* snapmla list: the variants a spec expands to, and the sweep points rejected. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run_list(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error(&cli_list, "expected exactly one SPEC");
    snapmla_error err;
    snapmla_spec *spec;
    if (snapmla_spec_load(argv[1], &spec, &err) != SNAPMLA_OK)
        return cli_report(&err);
    printf("%-72s %7s %9s\n", "variant", "threads", "smem");
    for (size_t i = 0; i < spec->count; ++i) {
        const snapmla_variant *v = &spec->variants[i];
        printf("%-72s %7d %9d\n", v->name, v->threads, v->smem_bytes);
    }
    for (size_t i = 0; i < spec->rejected_count; ++i)
        printf("rejected %s: %s\n", spec->rejected[i].name, spec->rejected[i].reason);
    printf("%zu variant%s, %zu rejected\n", spec->count, spec->count == 1 ? "" : "s",
           spec->rejected_count);
    snapmla_spec_free(spec);
    return CLI_OK;
}

const cli_command cli_list = {
    "list", "list the variants a spec expands to",
    "usage: snapmla list SPEC\n\n"
    "Prints each variant's name, threads per CTA and dynamic shared memory, then\n"
    "the sweep points that cannot work, with the reason.\n",
    run_list,
};
