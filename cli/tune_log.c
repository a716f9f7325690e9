/* The measurement log of `snapmla tune` (format in tune.h): read back into
 * a plan so that an interrupted run resumes, and appended one synced record
 * at a time so that an interruption loses at most the record being written. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "tune.h"

enum { MAX_FIELDS = 6 };

typedef struct line_reader {
    const char *name;
    int number;
    snapmla_error *err;
} line_reader;

static snapmla_status bad_line(const line_reader *r, const char *what)
{
    return snapmla_fail(r->err, SNAPMLA_ERR_SPEC, "%s:%d: %s", r->name, r->number, what);
}

/* Splits line (NUL-terminated, modified) at tabs; the last field takes the rest. */
static int split_fields(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *tab = n < max ? strchr(p, '\t') : NULL;
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static int parse_count(const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (!*text || *end || errno || value < lo || value > hi || text[0] == '+' || text[0] == '-')
        return 0;
    *out = value;
    return 1;
}

static snapmla_status read_device(const line_reader *r, char **f, int n, tune_log_summary *sum)
{
    if (n != 3 || !f[1][0] || strlen(f[1]) >= sizeof sum->device || strlen(f[2]) >= sizeof sum->arch)
        return bad_line(r, "device: expected 'device<TAB>GPU NAME<TAB>ARCH'");
    if (sum->device[0])
        return bad_line(r, "device: a log holds one device line");
    strcpy(sum->device, f[1]);
    strcpy(sum->arch, f[2]);
    return SNAPMLA_OK;
}

/* One check or measurement record; applied to the plan when it is about it. */
static snapmla_status read_record(const line_reader *r, char **f, int n, tune_plan *plan,
                                  tune_log_summary *sum)
{
    static const struct { const char *kind; int fields; } kinds[] = {
        {"checking", 3}, {"checked", 3}, {"rejected", 4}, {"measured", 6}};
    int k = 0;
    while (k < 4 && strcmp(f[0], kinds[k].kind) != 0)
        k++;
    char what[160];
    if (k == 4) {
        snprintf(what, sizeof what, "'%.32s' is not a record; records: device, checking, checked, "
                 "rejected, measured", f[0]);
        return bad_line(r, what);
    }
    long splits = 0, batch = 0, seqlen = 0;
    char *end = NULL;
    double us = k == 3 && n == 6 ? strtod(f[5], &end) : 0;
    if (n != kinds[k].fields || !f[1][0] || !parse_count(f[2], 0, 128, &splits) ||
        (k == 3 && (!parse_count(f[3], 1, 65535, &batch) || !parse_count(f[4], 1, 1 << 22, &seqlen) ||
                    !end || *end || !(us > 0) || us > 1e12))) {
        snprintf(what, sizeof what, "%s: expected %s", kinds[k].kind,
                 k == 3 ? "VARIANT SPLITS BATCH SEQLEN US (tab-separated, US over 0)"
                 : k == 2 ? "VARIANT SPLITS REASON (tab-separated)" : "VARIANT SPLITS (tab-separated)");
        return bad_line(r, what);
    }
    if (!sum->device[0])
        return bad_line(r, "records before the device line");
    sum->records++;
    long c = tune_plan_find(plan, f[1], (int)splits);
    int s = k == 3 ? tune_plan_shape(plan, (int)batch, (int)seqlen) : 0;
    if (c < 0 || s < 0)
        return SNAPMLA_OK;
    sum->applied++;
    tune_config *config = &plan->configs[c];
    if (k == 0) {
        config->interrupted++;
    } else if (k == 1) {
        config->state = TUNE_CHECKED;
        config->interrupted = 0;
    } else if (k == 2) {
        tune_reject(config, f[3]);
        config->interrupted = 0;
    } else {
        plan->us[(size_t)c * (size_t)plan->shape_count + (size_t)s] = us;
    }
    return SNAPMLA_OK;
}

static snapmla_status read_line(const line_reader *r, char *line, tune_plan *plan,
                                tune_log_summary *sum)
{
    if (line[0] == '#' || line[0] == '\0')
        return SNAPMLA_OK;
    char *f[MAX_FIELDS];
    int n = split_fields(line, f, MAX_FIELDS);
    if (strcmp(f[0], "device") == 0)
        return read_device(r, f, n, sum);
    return read_record(r, f, n, plan, sum);
}

snapmla_status tune_log_parse(const char *text, size_t length, const char *name,
                              tune_plan *plan, tune_log_summary *sum, snapmla_error *err)
{
    memset(sum, 0, sizeof *sum);
    char *copy = malloc(length + 1);
    if (!copy)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "%s: out of memory", name);
    memcpy(copy, text, length);
    copy[length] = '\0';
    line_reader r = {name, 0, err};
    snapmla_status s = SNAPMLA_OK;
    char *line = copy;
    for (char *nl; s == SNAPMLA_OK && (nl = memchr(line, '\n', length - (size_t)(line - copy)));
         line = nl + 1) {
        *nl = '\0';
        r.number++;
        if (nl > line && nl[-1] == '\r')
            nl[-1] = '\0';
        s = read_line(&r, line, plan, sum);
        sum->valid_bytes = (long)(nl + 1 - copy);
    }
    free(copy);
    for (size_t c = 0; c < plan->config_count; ++c) {
        tune_config *config = &plan->configs[c];
        if (config->state == TUNE_UNCHECKED && config->interrupted >= 2)
            tune_reject(config, "its correctness check did not finish in two earlier runs "
                                "(the process crashed or was stopped during it)");
        for (int k = 0; k < plan->shape_count; ++k)
            sum->measured += plan->us[c * (size_t)plan->shape_count + (size_t)k] > 0;
    }
    return s;
}

snapmla_status tune_log_read(const char *path, tune_plan *plan, tune_log_summary *sum,
                             snapmla_error *err)
{
    unsigned char *text;
    size_t length;
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return tune_log_parse("", 0, path, plan, sum, err);
    snapmla_status s = snapmla_read_file(path, SNAPMLA_TEXT_FILE_MAX, &text, &length, err);
    if (s != SNAPMLA_OK)
        return s;
    s = tune_log_parse((const char *)text, length, path, plan, sum, err);
    free(text);
    return s;
}

static snapmla_status io_failed(const char *path, snapmla_error *err)
{
    return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
}

snapmla_status tune_log_open(const char *path, const tune_log_summary *read, const char *device,
                             snapmla_arch arch, FILE **out, snapmla_error *err)
{
    long valid_bytes = read->valid_bytes;
    FILE *f = fopen(path, "a");
    if (!f)
        return io_failed(path, err);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 ||
        (st.st_size > valid_bytes && ftruncate(fileno(f), valid_bytes) != 0)) {
        fclose(f);
        return io_failed(path, err);
    }
    if (!read->device[0] &&
        fprintf(f, "# snapmla tune measurements (docs/tuning.md): one record per line, "
                   "appended as taken\ndevice\t%s\t%s\n", device, snapmla_arch_name(arch)) < 0) {
        fclose(f);
        return io_failed(path, err);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return io_failed(path, err);
    }
    *out = f;
    return SNAPMLA_OK;
}

snapmla_status tune_log_append(FILE *log, const char *kind, const tune_config *config,
                               const tune_shape *shape, double us, snapmla_error *err)
{
    int n;
    if (strcmp(kind, "measured") == 0)
        n = fprintf(log, "measured\t%s\t%d\t%d\t%d\t%.3f\n", config->variant->name, config->splits,
                    shape->batch, shape->seqlen, us);
    else if (strcmp(kind, "rejected") == 0)
        n = fprintf(log, "rejected\t%s\t%d\t%s\n", config->variant->name, config->splits,
                    config->reason[0] ? config->reason : "rejected");
    else
        n = fprintf(log, "%s\t%s\t%d\n", kind, config->variant->name, config->splits);
    if (n < 0 || fflush(log) != 0 || fsync(fileno(log)) != 0)
        return snapmla_fail(err, SNAPMLA_ERR_IO, "cannot append to the measurement log: %s",
                            strerror(errno));
    return SNAPMLA_OK;
}
