/* snapmla cache: look into, check and empty the disk cache of CUBINs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "disk_cache.h"
#include "cli.h"

static int list_entries(const char *dir, int verify)
{
    snapmla_error err;
    snapmla_cache_entry_info *entries = NULL;
    size_t count = 0;
    if (snapmla_disk_cache_list(dir, &entries, &count, &err) != SNAPMLA_OK)
        return cli_report(&err);
    size_t bad = 0, bytes = 0;
    for (size_t i = 0; i < count; ++i) {
        const snapmla_cache_entry_info *e = &entries[i];
        bytes += e->payload_size;
        if (!e->valid)
            bad++;
        if (verify) {
            if (e->valid)
                printf("ok       %.16s  %s\n", e->key, e->label);
            else
                printf("CORRUPT  %s: %s\n", e->path, e->problem);
        } else {
            char when[32] = "?";
            time_t t = (time_t)e->mtime;
            struct tm tm;
            if (localtime_r(&t, &tm))
                strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
            printf("%.16s  %9llu  %s  %s%s\n", e->key, (unsigned long long)e->payload_size, when,
                   e->label, e->valid ? "" : "  (corrupt)");
        }
    }
    printf("%zu entr%s, %zu bytes of CUBIN, %zu corrupt, in %s\n", count, count == 1 ? "y" : "ies",
           bytes, bad, dir);
    free(entries);
    return verify && bad ? CLI_FAILED : CLI_OK;
}

static int run_cache(int argc, char **argv)
{
    const char *action = NULL, *dir_option = NULL;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir_option = argv[++i];
        else if (!action && (strcmp(argv[i], "ls") == 0 || strcmp(argv[i], "verify") == 0 ||
                             strcmp(argv[i], "clear") == 0))
            action = argv[i];
        else
            return cli_usage_error(&cli_cache, "expected ls, verify or clear");
    }
    if (!action)
        return cli_usage_error(&cli_cache, "expected ls, verify or clear");
    /* A cache is looked into where it is: a --dir that does not exist is a
     * typo to report, not a folder to make. */
    struct stat st;
    if (dir_option && stat(dir_option, &st) != 0) {
        fprintf(stderr, "snapmla cache: --dir: cannot use '%s': %s\n", dir_option, strerror(errno));
        return CLI_USAGE;
    }
    snapmla_options options = {0};
    options.cache_dir = dir_option;
    options.log = cli_log;
    snapmla_context *ctx;
    snapmla_error err;
    if (snapmla_context_create(&options, &ctx, &err) != SNAPMLA_OK)
        return cli_report(&err);
    const char *dir = snapmla_context_cache_dir(ctx);
    int code = CLI_OK;
    if (!dir) {
        fprintf(stderr, "snapmla: no usable cache directory\n");
        code = CLI_FAILED;
    } else if (strcmp(action, "clear") == 0) {
        size_t removed = 0;
        if (snapmla_disk_cache_clear(dir, &removed, &err) != SNAPMLA_OK)
            code = cli_report(&err);
        else
            printf("removed %zu file%s from %s\n", removed, removed == 1 ? "" : "s", dir);
    } else {
        code = list_entries(dir, strcmp(action, "verify") == 0);
    }
    snapmla_context_destroy(ctx);
    return code;
}

const cli_command cli_cache = {
    "cache", "list, verify or clear the disk cache",
    "usage: snapmla cache ls|verify|clear [--dir DIR]\n\n"
    "The cache lives in --dir (which must exist), else $SNAPMLA_CACHE_DIR, else\n"
    "$XDG_CACHE_HOME/snapmla, else ~/.cache/snapmla.\n"
    "  ls      one line per entry: key, CUBIN bytes, date, variant\n"
    "  verify  checks every entry's header and checksum; exit 1 if any is corrupt\n"
    "  clear   removes snapmla's entries, locks and temporary files, nothing else\n",
    run_cache,
};
