/* snapmla fidelity: how each FP8 cache recipe changes the attention output,
 * against float64 attention over the BF16 cache, on realistic synthetic
 * latents. CPU only; the numbers behind docs/fidelity.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fidelity.h"

static int run_fidelity(int argc, char **argv)
{
    const char *spec_path = NULL;
    int heads = 16, queries = 2, heads_given = 0;
    uint64_t seed = 2026;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--heads") == 0 && i + 1 < argc) {
            if (cli_int_option(&cli_fidelity, "--heads", argv[++i], 1, 128, &heads) != CLI_OK)
                return CLI_USAGE;
            heads_given = 1;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (cli_u64_option(&cli_fidelity, "--seed", argv[++i], &seed) != CLI_OK)
                return CLI_USAGE;
        } else if (argv[i][0] == '-' || spec_path) {
            return cli_usage_error(&cli_fidelity, "unknown option, missing value or second SPEC");
        } else {
            spec_path = argv[i];
        }
    }
    if (!spec_path)
        return cli_usage_error(&cli_fidelity, "missing SPEC");
    snapmla_error err;
    snapmla_spec *spec;
    if (snapmla_spec_load(spec_path, &spec, &err) != SNAPMLA_OK)
        return cli_report(&err);
    const snapmla_variant *v = &spec->variants[0];
    if (heads > v->q_heads && heads_given) {
        fprintf(stderr, "snapmla fidelity: --heads: %d is more than the %d query heads of %s; "
                "allowed: 1..%d\n", heads, v->q_heads, v->name, v->q_heads);
        snapmla_spec_free(spec);
        return CLI_USAGE;
    }
    if (heads > v->q_heads)
        heads = v->q_heads;   /* the default 16, for a spec with fewer heads */
    printf("fidelity of FP8 cache recipes: latent %d + RoPE %d, %d query heads, %d query sets, "
           "seed %llu\n", v->latent_dim, v->rope_dim, heads, queries, (unsigned long long)seed);
    printf("inputs: latent ~ t(4) x log-normal token size, 8 outlier channels of 10-30x (case A) "
           "or 30-100x (case B); RoPE ~ N(0, 4^2)\n");
    printf("error of attention output vs float64 attention over the BF16 cache\n\n");
    const int contexts[] = {1024, 8192, 32768};
    const double gains[] = {30.0, 100.0};
    int code = CLI_OK;
    for (size_t g = 0; g < 2 && code == CLI_OK; ++g)
        for (size_t k = 0; k < 3 && code == CLI_OK; ++k) {
            snapmla_fidelity_config config = {
                .latent_dim = v->latent_dim, .rope_dim = v->rope_dim, .q_heads = heads,
                .context = contexts[k], .queries = queries, .outlier_gain = gains[g],
                .outlier_channels = 8, .rope_gain = 4.0, .seed = seed + k,
            };
            snapmla_fidelity_row rows[SNAPMLA_RECIPE_COUNT];
            if (snapmla_fidelity_run(&config, rows, &err) != SNAPMLA_OK) {
                code = cli_report(&err);
                break;
            }
            printf("case %c, context %d\n", g == 0 ? 'A' : 'B', contexts[k]);
            printf("| %-46s | %9s | %9s | %10s |\n", "recipe", "rel L2", "max abs", "min cosine");
            printf("|%s|%s|%s|%s|\n", "------------------------------------------------",
                   "-----------", "-----------", "------------");
            for (int r = 0; r < SNAPMLA_RECIPE_COUNT; ++r)
                printf("| %-46s | %9.2e | %9.2e | %10.6f |\n", snapmla_recipe_name(rows[r].recipe),
                       rows[r].rel_l2, rows[r].max_abs, rows[r].cosine);
            printf("\n");
            fflush(stdout);
        }
    snapmla_spec_free(spec);
    return code;
}

const cli_command cli_fidelity = {
    "fidelity", "error of each FP8 cache recipe vs float64 (CPU)",
    "usage: snapmla fidelity SPEC [--heads H] [--seed S]\n\n"
    "Builds synthetic latents shaped like real ones (heavy tails, outlier channels,\n"
    "RoPE of a larger range) with the spec's dims, quantizes them with each recipe\n"
    "(naive FP8, per-tensor, per-token = SnapMLA, per-tile128 = FlashMLA, per-token\n"
    "after static per-channel equalization, per-token with RoPE stored divided by\n"
    "the token's scale, per-tile128 as tile.warps 16 reads it: at each token's\n"
    "largest scale) and prints the attention output's error\n"
    "against float64 attention over the BF16 cache, for contexts of 1K, 8K and 32K.\n"
    "  --heads H   query heads simulated (default 16, at most the spec's)\n"
    "  --seed S    data seed (default 2026)\n",
    run_fidelity,
};
