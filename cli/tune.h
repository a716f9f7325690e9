/* `snapmla tune` in parts: the plan (shapes, split counts, shards, the
 * configs to time), the measurement log that makes a run resumable, the
 * correctness check, and the reduction of measurements to database
 * entries. The plan and the log need no GPU and are tested on the CPU. */
#ifndef SNAPMLA_CLI_TUNE_H
#define SNAPMLA_CLI_TUNE_H

#include <stdio.h>

#include "snapmla.h"

enum { TUNE_MAX_SHAPES = 64, TUNE_MAX_SPLITS = 16, TUNE_REASON_MAX = 512 };

typedef struct tune_shape {
    int batch, seqlen;
} tune_shape;

/* "BxS[,BxS...]", where B and S may each be a '/'-separated set
 * ("1/8/128x4096/16384" is six shapes): batch 1..65535, seqlen 1..4194304,
 * at most TUNE_MAX_SHAPES, no repeats. Returns 0 (with a reason) on bad text. */
int tune_parse_shapes(const char *text, tune_shape *shapes, int *count, char *why, size_t size);
/* "i/n" with 0 <= i < n <= 1024. */
int tune_parse_shard(const char *text, int *index, int *count);
/* "0,4,16": split counts to try per variant (0: the variant's policy), 0..128,
 * at most TUNE_MAX_SPLITS, no repeats. */
int tune_parse_splits(const char *text, int *splits, int *count);

typedef enum tune_state {
    TUNE_UNCHECKED,   /* not yet run against the reference */
    TUNE_CHECKED,     /* passed the check: may be timed and win */
    TUNE_REJECTED     /* failed to compile, load or check: never a winner */
} tune_state;

/* One thing to time: a variant with a split count. */
typedef struct tune_config {
    const snapmla_variant *variant;
    int splits;
    tune_state state;
    int interrupted;            /* checks begun but not finished in earlier runs */
    char reason[TUNE_REASON_MAX];
} tune_config;

typedef struct tune_plan {
    const snapmla_variant **variants;   /* this shard's decode variants */
    size_t variant_count;
    size_t sweep_count;                 /* decode variants of every shard */
    size_t other_kernels;               /* variants that are not mla_decode: skipped */
    tune_config *configs;               /* variant-major, then the split list */
    size_t config_count;
    tune_shape shapes[TUNE_MAX_SHAPES];
    int shape_count;
    double *us;                         /* [config][shape]; 0: not measured */
} tune_plan;

/* The configs of shard `shard` of `shards`: decode variant i of the specs
 * (in order, each name once) belongs to shard i % shards. A split count over
 * a variant's split.max_splits is not tried on it. Returns 0 when out of
 * memory. */
int tune_plan_make(snapmla_spec *const *specs, int spec_count, const int *splits,
                   int split_count, int shard, int shards, const tune_shape *shapes,
                   int shape_count, tune_plan *plan);
void tune_plan_free(tune_plan *plan);
void tune_reject(tune_config *config, const char *reason);
/* Index of (variant name, splits) in the plan, or -1. */
long tune_plan_find(const tune_plan *plan, const char *variant, int splits);
int tune_plan_shape(const tune_plan *plan, int batch, int seqlen);
/* Measurements still to take (configs not rejected, shapes not measured). */
size_t tune_plan_pending(const tune_plan *plan);

/* The database entries of the plan's measurements on device/arch: per
 * family, rows and bucket, the checked config with the smallest geometric
 * mean over the bucket's shapes (measured on all of them), and the
 * runner-up. *entries is owned by the caller (free()). */
int tune_plan_entries(const tune_plan *plan, const char *device, snapmla_arch arch,
                      snapmla_tuning_entry **entries, size_t *count);

/* ---- the measurement log ---------------------------------------------------
 * A text file of tab-separated records, appended (and synced) one at a
 * time, so that an interrupted run resumes from what it had measured:
 *   device   NAME  ARCH                       first line: where it was measured
 *   checking VARIANT SPLITS                   a check began
 *   checked  VARIANT SPLITS                   it passed
 *   rejected VARIANT SPLITS REASON            it failed (never a winner)
 *   measured VARIANT SPLITS BATCH SEQLEN US   one timing (median, microseconds)
 * Lines starting with '#' are comments; a last line without its newline
 * (torn by the interruption) is dropped. */
typedef struct tune_log_summary {
    char device[SNAPMLA_DEVICE_NAME_MAX];   /* "" for an empty or absent file */
    char arch[16];
    size_t records;           /* check and measurement records read */
    size_t applied;           /* of them, about configs and shapes of this plan */
    size_t measured;          /* measurements now known */
    long valid_bytes;         /* length up to the last whole line */
} tune_log_summary;

/* Reads path (an absent file is empty) and applies its records to plan. A
 * malformed line fails with "path:line: ..." (SNAPMLA_ERR_SPEC); records
 * about other variants or shapes are ignored. */
snapmla_status tune_log_read(const char *path, tune_plan *plan, tune_log_summary *summary,
                             snapmla_error *err);
/* Same from memory (name stands for the path). */
snapmla_status tune_log_parse(const char *text, size_t length, const char *name,
                              tune_plan *plan, tune_log_summary *summary, snapmla_error *err);

/* Opens path for appending after tune_log_read gave `read`: drops a torn
 * last line, writes the device line when the log has none yet. */
snapmla_status tune_log_open(const char *path, const tune_log_summary *read, const char *device,
                             snapmla_arch arch, FILE **out, snapmla_error *err);
/* One record, flushed and synced. kind: "checking", "checked", "rejected"
 * (text: the reason) or "measured" (shape and us). */
snapmla_status tune_log_append(FILE *log, const char *kind, const tune_config *config,
                               const tune_shape *shape, double us, snapmla_error *err);

/* ---- the correctness check (GPU) ---------------------------------------------
 * Runs one decode step of kernel with `splits` on a ragged batch (lengths
 * 0, 1, page edges, long) against the float64 host reference. Returns OK
 * and *passed with the report's one-line summary in reason; an error status
 * when the check could not run (the CUDA context may be lost then). */
snapmla_status tune_check(snapmla_context *ctx, snapmla_kernel *kernel, int splits,
                          uint64_t seed, int *passed, char *reason, size_t size,
                          snapmla_error *err);

#endif
