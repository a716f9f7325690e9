/* snapmla: the public API, read top to bottom.
 * Pipeline: spec (YAML) -> variants -> CUDA source -> CUBIN (NVRTC, disk cache)
 * -> loaded kernel (CUDA driver API) -> launch (decode, combine, append).
 * Every fallible call returns a snapmla_status and, when err is not NULL,
 * fills err with the status and a one-line message. The library never prints. */
#ifndef SNAPMLA_H
#define SNAPMLA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SNAPMLA_VERSION "0.1.0"
/* Bumped whenever generated source for an unchanged spec may change. */
#define SNAPMLA_GENERATOR_VERSION 1

/* ---- errors ------------------------------------------------------------ */
typedef enum snapmla_status {
    SNAPMLA_OK = 0,
    SNAPMLA_ERR_INVALID_ARG,  /* a launch or API argument is wrong */
    SNAPMLA_ERR_SPEC,         /* the spec file is malformed or impossible */
    SNAPMLA_ERR_IO,           /* a file could not be read or written */
    SNAPMLA_ERR_COMPILE,      /* NVRTC rejected the generated source */
    SNAPMLA_ERR_CUDA,         /* a CUDA driver call failed */
    SNAPMLA_ERR_NO_DEVICE,    /* no CUDA driver or no GPU */
    SNAPMLA_ERR_NOMEM,        /* host allocation failed */
    SNAPMLA_ERR_CACHE,        /* a cache entry is corrupt (it is rebuilt) */
    SNAPMLA_ERR_UNSUPPORTED,  /* valid request this version cannot do yet */
    SNAPMLA_ERR_INTERNAL      /* a bug in snapmla: please report it */
} snapmla_status;

#define SNAPMLA_ERROR_MAX 2048
typedef struct snapmla_error {
    snapmla_status status;
    char message[SNAPMLA_ERROR_MAX];
} snapmla_error;

const char *snapmla_status_name(snapmla_status status);

/* ---- specs and variants -------------------------------------------------
 * A spec file describes one kernel or, where any field is a YAML list, a
 * sweep: the cartesian product of the lists. docs/spec.md has the schema. */
typedef enum snapmla_kernel_kind {
    SNAPMLA_KERNEL_MLA_DECODE,   /* attention over the paged cache, split-KV */
    SNAPMLA_KERNEL_MLA_COMBINE,  /* merge of split-KV partial results */
    SNAPMLA_KERNEL_KV_APPEND     /* writes new tokens into the paged cache */
} snapmla_kernel_kind;

typedef enum snapmla_cache_format {
    SNAPMLA_FORMAT_BF16,             /* latent and RoPE in BF16 */
    SNAPMLA_FORMAT_FP8_PER_TOKEN,    /* reserved: e4m3 latent, fp32 scale/token */
    SNAPMLA_FORMAT_FP8_PER_TILE128   /* reserved: FlashMLA's 656-byte token */
} snapmla_cache_format;

typedef enum snapmla_rope_layout {
    SNAPMLA_ROPE_INTERLEAVED,  /* each token is [latent | rope], FlashMLA-style */
    SNAPMLA_ROPE_PLANAR        /* each page is [all latents][all ropes] */
} snapmla_rope_layout;

typedef enum snapmla_arch {
    SNAPMLA_ARCH_SM80,
    SNAPMLA_ARCH_SM89,
    SNAPMLA_ARCH_SM90A
} snapmla_arch;

typedef enum snapmla_compute {
    SNAPMLA_COMPUTE_BF16,  /* BF16 products, FP32 accumulation */
    SNAPMLA_COMPUTE_FP8    /* e4m3 tensor cores (wgmma): Q and P quantized in the kernel */
} snapmla_compute;

typedef enum snapmla_engine {
    SNAPMLA_ENGINE_SIMT,      /* fp32 CUDA cores, any tile */
    SNAPMLA_ENGINE_MMA_SYNC,  /* BF16 tensor cores (mma.sync), sm_80+ */
    SNAPMLA_ENGINE_WGMMA      /* Hopper warpgroup MMA (wgmma), sm_90a: FP8 and BF16 */
} snapmla_engine;

typedef enum snapmla_schedule {
    SNAPMLA_SCHEDULE_AUTO,    /* the generator's choice (the BF16 wgmma path: pair from 256 query rows at 2 stages) */
    SNAPMLA_SCHEDULE_SEESAW,  /* BF16 wgmma: the warpgroups alternate tiles, one row state chained through both */
    SNAPMLA_SCHEDULE_PAIR     /* BF16 wgmma, 2 stages: pairs of tiles on one row max (FlashMLA's dense order) */
} snapmla_schedule;

typedef enum snapmla_split_policy {
    SNAPMLA_SPLIT_AUTO,   /* splits chosen at launch to fill the GPU */
    SNAPMLA_SPLIT_FIXED,  /* always max_splits (fewer for short requests) */
    SNAPMLA_SPLIT_NONE,   /* one CTA row-block per request, no combine */
    SNAPMLA_SPLIT_BALANCED /* wgmma: a device-side plan splits long requests so every
                              SM gets an even share of the batch's tiles (ragged batches) */
} snapmla_split_policy;

#define SNAPMLA_NAME_MAX 192

/* One concrete kernel. Filled by the spec loader; read-only for users. */
typedef struct snapmla_variant {
    char name[SNAPMLA_NAME_MAX];     /* stable, readable, unique in a sweep */
    snapmla_kernel_kind kernel;
    /* model */
    int latent_dim;                  /* kv_lora_rank: 512 DeepSeek, 256 MiniCPM3 */
    int rope_dim;                    /* decoupled RoPE key: 64, 32 */
    int q_heads;                     /* query heads on this rank, 1..128 */
    int q_len;                       /* query tokens per request, 1..4 */
    int causal;                      /* causal mask inside the step (q_len > 1) */
    /* cache */
    snapmla_cache_format cache_format;
    int page_size;                   /* tokens per page: 1, 16, 32, 64, 128 */
    snapmla_rope_layout rope_layout;
    /* tile */
    int kv_tile;                     /* KV tokens per tile */
    int q_tile;                      /* query rows (q_len x heads) per CTA */
    int stages;                      /* KV tiles in flight */
    int warps;                       /* warps per CTA */
    snapmla_engine engine;           /* decode: how the products are computed */
    snapmla_schedule schedule;       /* decode, BF16 wgmma: the two warpgroups' order */
    /* split-KV */
    snapmla_split_policy split_policy;
    int max_splits;                  /* most splits of one request */
    int split_min_tokens;            /* fewest tokens worth a split */
    /* target */
    snapmla_arch arch;
    snapmla_compute compute;
    /* derived by validation */
    int threads;                     /* warps * 32 */
    int smem_bytes;                  /* dynamic shared memory per CTA */
} snapmla_variant;

/* A variant of a sweep that cannot work, with the reason. */
typedef struct snapmla_rejected {
    char name[SNAPMLA_NAME_MAX];
    char reason[SNAPMLA_ERROR_MAX];
} snapmla_rejected;

typedef struct snapmla_spec {
    char *path;                  /* as given to the loader */
    size_t count;                /* valid variants */
    snapmla_variant *variants;
    size_t rejected_count;       /* sweep points that cannot work */
    snapmla_rejected *rejected;
} snapmla_spec;

/* Loads and validates a spec file. On success *out is owned by the caller
 * (snapmla_spec_free). A sweep with some impossible points succeeds and lists
 * them in rejected; a spec where every point is impossible fails. */
snapmla_status snapmla_spec_load(const char *path, snapmla_spec **out,
                                 snapmla_error *err);
/* Same from memory; name is used in messages in place of a path. */
snapmla_status snapmla_spec_parse(const char *text, size_t len,
                                  const char *name, snapmla_spec **out,
                                  snapmla_error *err);
void snapmla_spec_free(snapmla_spec *spec);

const char *snapmla_kernel_kind_name(snapmla_kernel_kind kind);
const char *snapmla_cache_format_name(snapmla_cache_format format);
const char *snapmla_arch_name(snapmla_arch arch);
const char *snapmla_engine_name(snapmla_engine engine);     /* as in tile.engine */
const char *snapmla_compute_name(snapmla_compute compute);  /* as in target.compute */

/* Bytes of one cache page and one token of the variant's cache format. */
size_t snapmla_cache_page_bytes(const snapmla_variant *variant);

/* ---- code generation ----------------------------------------------------- */
/* Emits the self-contained CUDA source of a variant. *source is owned by the
 * caller (free()). Deterministic: same variant, same bytes. */
snapmla_status snapmla_emit(const snapmla_variant *variant, char **source,
                            size_t *length, snapmla_error *err);

/* ---- context: JIT, disk cache, ahead-of-time directories, device ------- */
typedef enum snapmla_log_level {
    SNAPMLA_LOG_INFO,
    SNAPMLA_LOG_WARN
} snapmla_log_level;

typedef void (*snapmla_log_fn)(void *user, snapmla_log_level level,
                               const char *message);

typedef struct snapmla_options {
    /* Cache directory; NULL: $SNAPMLA_CACHE_DIR, else $XDG_CACHE_HOME/snapmla,
     * else ~/.cache/snapmla. */
    const char *cache_dir;
    int disable_disk_cache;          /* 1: in-memory only */
    /* Directories written by `snapmla build`, searched before JIT. */
    const char *const *aot_dirs;
    int aot_dir_count;
    /* Receives warnings (a corrupt cache entry, an unwritable directory) and,
     * at INFO, what each kernel request was served from. NULL: silent. */
    snapmla_log_fn log;
    void *log_user;
} snapmla_options;

typedef struct snapmla_context snapmla_context;

snapmla_status snapmla_context_create(const snapmla_options *options,
                                      snapmla_context **out,
                                      snapmla_error *err);
void snapmla_context_destroy(snapmla_context *ctx);
/* The cache directory in use, or NULL when the cache is in memory only. */
const char *snapmla_context_cache_dir(const snapmla_context *ctx);

typedef enum snapmla_source_kind {
    SNAPMLA_FROM_COMPILE,   /* NVRTC ran now */
    SNAPMLA_FROM_DISK,      /* the disk cache had it */
    SNAPMLA_FROM_MEMORY,    /* this context had it */
    SNAPMLA_FROM_AOT        /* an ahead-of-time directory had it */
} snapmla_source_kind;

/* A compiled variant: the CUBIN and where it came from. */
typedef struct snapmla_binary {
    unsigned char *cubin;          /* owned by the caller (free()) */
    size_t cubin_size;
    char key[65];                  /* hex cache key */
    snapmla_source_kind source;
    double compile_seconds;        /* 0 unless source is COMPILE */
} snapmla_binary;

/* Compiles a variant for arch (NULL: the variant's own arch), through the
 * caches. Needs NVRTC, not a GPU. On SNAPMLA_ERR_COMPILE the message holds
 * the NVRTC log. */
snapmla_status snapmla_build(snapmla_context *ctx,
                             const snapmla_variant *variant,
                             snapmla_binary *out, snapmla_error *err);
void snapmla_binary_release(snapmla_binary *binary);

/* The hex cache key of a variant (source, options, arch, NVRTC and
 * generator versions). */
snapmla_status snapmla_cache_key(const snapmla_variant *variant, char key[65],
                                 snapmla_error *err);

/* ---- loaded kernels and launches (need a GPU) ---------------------------- */
typedef struct snapmla_kernel snapmla_kernel;

/* Builds (or finds) and loads a variant on the current CUDA context of the
 * calling thread, creating a primary context on device 0 when none is
 * current. Kernels are owned by ctx and live until it is destroyed; the same
 * variant returns the same kernel. Thread-safe. */
snapmla_status snapmla_kernel_get(snapmla_context *ctx,
                                  const snapmla_variant *variant,
                                  snapmla_kernel **out, snapmla_error *err);
const snapmla_variant *snapmla_kernel_variant(const snapmla_kernel *kernel);

/* Device pointers are plain addresses (CUdeviceptr or torch data_ptr());
 * stream is a CUstream (NULL: the legacy default stream). */

/* q [batch, q_len, q_heads, latent+rope] BF16, contiguous.
 * kv_cache: num_pages pages of page_stride bytes (0: the format's page size).
 * block_table [batch, block_table_stride] int32: page of each request's
 * i-th page_size tokens. cache_seqlens [batch] int32: tokens in the cache,
 * the step's own q_len tokens included (the last q_len are the queries'
 * positions when causal).
 * out [batch, q_len, q_heads, latent] BF16; lse [batch, q_len, q_heads] fp32
 * (natural log; +inf for a row that sees no token, whose out is 0).
 * workspace: snapmla_decode_workspace_bytes(kernel, batch) bytes.
 * q, kv_cache, out and workspace are 16-byte aligned (the kernels read and
 * write them 16 bytes at a time); the others to their element size. */
typedef struct snapmla_decode_args {
    int batch;
    const void *q;
    const void *kv_cache;
    int64_t num_pages;
    int64_t page_stride;
    const int32_t *block_table;
    int block_table_stride;
    const int32_t *cache_seqlens;
    float softmax_scale;
    void *out;
    float *lse;
    void *workspace;
    size_t workspace_bytes;
    int num_splits;   /* most splits per request; 0: the variant's policy */
    /* Non-zero: the work plan already in `workspace` is used as it is (made
     * by snapmla_decode_plan or an earlier snapmla_decode of the same kernel
     * on this workspace with the same batch and cache_seqlens values, e.g.
     * the previous layer of the step); the plan kernel is not launched.
     * The device cannot tell a stale plan: one made for other lengths, or
     * none at all, gives wrong output or an illegal memory access. Only
     * Hopper persistent launches have a plan; others ignore the flag. */
    int plan_ready;
} snapmla_decode_args;

size_t snapmla_decode_workspace_bytes(const snapmla_kernel *kernel, int batch);
snapmla_status snapmla_decode(snapmla_kernel *kernel,
                              const snapmla_decode_args *args, void *stream,
                              snapmla_error *err);

/* Computes the work plan of a decode with these arguments into
 * args->workspace on the device (one small kernel; nothing when the launch
 * has no plan), so that every layer of a decode step can run with
 * plan_ready = 1: the plan of a step depends on cache_seqlens only. */
snapmla_status snapmla_decode_plan(snapmla_kernel *kernel,
                                   const snapmla_decode_args *args, void *stream,
                                   snapmla_error *err);

/* Merges split-KV partial results: o_partial [batch, splits, rows, latent]
 * fp32 (each split's normalised output), lse_partial [batch, splits, rows]
 * fp32, split_counts [batch] int32 (splits used by each request, 1..splits);
 * writes out [batch, rows, latent] BF16 and lse [batch, rows] fp32, where
 * rows = q_len * q_heads. */
typedef struct snapmla_combine_args {
    int batch;
    int splits;
    const float *o_partial;
    const float *lse_partial;
    const int32_t *split_counts;
    void *out;
    float *lse;
} snapmla_combine_args;

snapmla_status snapmla_combine(snapmla_kernel *kernel,
                               const snapmla_combine_args *args, void *stream,
                               snapmla_error *err);

/* Writes num_tokens new tokens into the paged cache. latent [n, latent_dim]
 * and rope [n, rope_dim] BF16 with row strides in elements (0: dense).
 * slot_mapping [n] int64: page * page_size + offset; a negative slot is
 * padding and skipped; a slot past num_pages * page_size is not written and
 * counted in *bad_slots (device int32, optional, added to, not reset). */
typedef struct snapmla_append_args {
    int64_t num_tokens;
    const void *latent;
    int64_t latent_stride;
    const void *rope;
    int64_t rope_stride;
    const int64_t *slot_mapping;
    void *kv_cache;
    int64_t num_pages;
    int64_t page_stride;
    int32_t *bad_slots;
} snapmla_append_args;

snapmla_status snapmla_append(snapmla_kernel *kernel,
                              const snapmla_append_args *args, void *stream,
                              snapmla_error *err);

/* ---- tuning database and tuned dispatch (docs/tuning.md) ----------------
 * `snapmla tune` times the variants of a sweep per shape bucket and writes
 * the winners to a YAML database. A dispatcher built from a database and a
 * set of loaded decode kernels picks the kernel and split count for each
 * call's bucket, with no allocation and no lock. */

/* Shape buckets. Batch: 1, 2, 3-4, 5-8, ..., 129-256, 257+. Context (the
 * longest cache length of the call): 0-512, 513-1024, ..., 524289-1048576,
 * 1048577+. Indices from 0; -1 for a batch under 1 or a negative length. */
#define SNAPMLA_TUNING_BATCH_BUCKETS 10
#define SNAPMLA_TUNING_CONTEXT_BUCKETS 13
int snapmla_tuning_batch_bucket(int batch);
int snapmla_tuning_context_bucket(int64_t context);
/* Inclusive edges of a bucket; *hi is -1 for the last (open) one. */
void snapmla_tuning_batch_edges(int bucket, int *lo, int *hi);
void snapmla_tuning_context_edges(int bucket, int64_t *lo, int64_t *hi);

/* The family of a decode variant: what the caller's tensors and numerics
 * depend on, without the head count and the tunable fields (tile, engine,
 * split): "l512r64.q1c.bf16p64i.bf16" (dims, q_len and causal, cache
 * format, page size and layout, compute). */
#define SNAPMLA_FAMILY_MAX 64
void snapmla_variant_family(const snapmla_variant *variant, char family[SNAPMLA_FAMILY_MAX]);

#define SNAPMLA_DEVICE_NAME_MAX 96
#define SNAPMLA_SHAPES_MAX 64

/* One winner. The key is (arch, device, family, rows, batch_bucket,
 * context_bucket); a database holds each key once. */
typedef struct snapmla_tuning_entry {
    snapmla_arch arch;
    char device[SNAPMLA_DEVICE_NAME_MAX];   /* as the driver names the GPU */
    char family[SNAPMLA_FAMILY_MAX];
    int rows;                               /* q_heads * q_len */
    int batch_bucket;
    int context_bucket;
    char variant[SNAPMLA_NAME_MAX];         /* the winner */
    int num_splits;                         /* its split count; 0: the variant's policy */
    double us;                              /* its time (geometric mean over shapes) */
    char runner_up[SNAPMLA_NAME_MAX];       /* "" when no other config survived */
    int runner_up_splits;
    double margin;                          /* runner-up time / us - 1; 0 without one */
    char shapes[SNAPMLA_SHAPES_MAX];        /* measured shapes: "128x4096,96x4096" */
} snapmla_tuning_entry;

typedef struct snapmla_tuning_db snapmla_tuning_db;

/* Loads a database file. Errors name file:line:column, the field, the bad
 * value and what is allowed (SNAPMLA_ERR_SPEC). Reads SNAPMLA_LOG once: when
 * it contains "dispatch", dispatchers built from this database log their
 * choices. *out is owned by the caller (snapmla_tuning_db_free). */
snapmla_status snapmla_tuning_db_load(const char *path, snapmla_tuning_db **out,
                                      snapmla_error *err);
/* Same from memory; name stands for the path in messages. */
snapmla_status snapmla_tuning_db_parse(const char *text, size_t length, const char *name,
                                       snapmla_tuning_db **out, snapmla_error *err);
/* A database of copies of entries; a repeated key is an error. */
snapmla_status snapmla_tuning_db_create(const snapmla_tuning_entry *entries, size_t count,
                                        snapmla_tuning_db **out, snapmla_error *err);
/* The YAML text (*text owned by the caller, free()). */
snapmla_status snapmla_tuning_db_format(const snapmla_tuning_db *db, char **text,
                                        size_t *length, snapmla_error *err);
/* Writes the YAML atomically: readers see the old file or the whole new one. */
snapmla_status snapmla_tuning_db_save(const snapmla_tuning_db *db, const char *path,
                                      snapmla_error *err);
/* Several into one. Same key: the faster winner is kept and the runner-up is
 * the best other config of all the files (margin recomputed). Each key whose
 * files disagree on the winner is a conflict: one WARN line to log (may be
 * NULL) and counted in *conflicts (may be NULL). */
snapmla_status snapmla_tuning_db_merge(const snapmla_tuning_db *const *dbs, size_t count,
                                       snapmla_log_fn log, void *log_user, size_t *conflicts,
                                       snapmla_tuning_db **out, snapmla_error *err);
size_t snapmla_tuning_db_count(const snapmla_tuning_db *db);
/* Entries sorted by key; NULL past the end. */
const snapmla_tuning_entry *snapmla_tuning_db_entry(const snapmla_tuning_db *db, size_t index);
void snapmla_tuning_db_free(snapmla_tuning_db *db);

typedef struct snapmla_tuning_query {
    snapmla_arch arch;
    const char *device;
    const char *family;
    int rows;
    int batch;
    int64_t context;
} snapmla_tuning_query;

/* The entry of the query's bucket, or NULL. Binary search of the sorted
 * table: no allocation, no lock. */
const snapmla_tuning_entry *snapmla_tuning_lookup(const snapmla_tuning_db *db,
                                                  const snapmla_tuning_query *query);

typedef enum snapmla_dispatch_source {
    SNAPMLA_DISPATCH_DEFAULT,   /* no entry for the family: the first candidate, its policy */
    SNAPMLA_DISPATCH_TUNED,     /* the entry of the call's bucket */
    SNAPMLA_DISPATCH_NEAREST    /* the entry of the nearest tuned bucket */
} snapmla_dispatch_source;

typedef struct snapmla_dispatch_choice {
    snapmla_kernel *kernel;
    int num_splits;             /* for snapmla_decode_args.num_splits (0: policy) */
    snapmla_dispatch_source source;
} snapmla_dispatch_choice;

typedef struct snapmla_dispatch snapmla_dispatch;

/* A dispatcher over candidate decode kernels of one family and row count,
 * loaded on the CUDA context current on the calling thread. device: the GPU
 * name as the database has it (NULL: that of the current context's device).
 * db may be NULL (always the default) and may be freed afterwards: each
 * bucket's choice is resolved here, once. The kernels stay owned by their
 * context; *out is owned by the caller (snapmla_dispatch_free). */
snapmla_status snapmla_dispatch_create(const snapmla_tuning_db *db,
                                       snapmla_kernel *const *candidates, int count,
                                       const char *device, snapmla_dispatch **out,
                                       snapmla_error *err);
void snapmla_dispatch_free(snapmla_dispatch *dispatch);
/* The choice for a call of batch requests whose longest cache length is
 * context: a table read (the first use of each bucket is logged when
 * SNAPMLA_LOG has "dispatch"). Thread-safe, no allocation, no lock. */
snapmla_dispatch_choice snapmla_dispatch_select(snapmla_dispatch *dispatch, int batch,
                                                int64_t context);
/* Workspace that fits every candidate for batch. */
size_t snapmla_dispatch_workspace_bytes(const snapmla_dispatch *dispatch, int batch);
/* snapmla_decode with the chosen kernel and split count; a non-zero
 * args->num_splits overrides the database's. context as above (a host-side
 * hint; the split plan is still computed on the device). */
snapmla_status snapmla_decode_tuned(snapmla_dispatch *dispatch, int64_t context,
                                    const snapmla_decode_args *args, void *stream,
                                    snapmla_error *err);

#ifdef __cplusplus
}
#endif
#endif
