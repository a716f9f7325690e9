/* Tests of code generation and NVRTC: deterministic output, every hole
 * filled, every variant of every shipped spec compiles for its arch with
 * no spill and no ptxas performance-loss note, 16 random specs that load
 * compile too (fresh each run, seed printed), and ptxas's report is read. */
#include <check.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit_wgmma.h"
#include "jit.h"
#include "parallel.h"
#include "ptxas_report.h"
#include "snapmla.h"
#include "strbuf.h"
#include "mutate.h"
#include "run_suite.h"

static const char *const decode_yaml =
    "kernel: mla_decode\n"
    "model: {latent_dim: 512, rope_dim: 64, q_heads: 16, q_len: 2}\n"
    "cache: {page_size: 64}\n";

static snapmla_spec *parse(const char *yaml)
{
    snapmla_error err;
    snapmla_spec *spec = NULL;
    snapmla_status s = snapmla_spec_parse(yaml, strlen(yaml), "t.yaml", &spec, &err);
    ck_assert_msg(s == SNAPMLA_OK, "parse failed: %s", err.message);
    return spec;
}

static char *emit(const snapmla_variant *v, size_t *length)
{
    snapmla_error err;
    char *source = NULL;
    ck_assert_msg(snapmla_emit(v, &source, length, &err) == SNAPMLA_OK, "%s", err.message);
    return source;
}

START_TEST(emit_is_deterministic)
{
    snapmla_spec *a = parse(decode_yaml), *b = parse(decode_yaml);
    size_t la, lb;
    char *sa = emit(&a->variants[0], &la), *sb = emit(&b->variants[0], &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(sa, sb, la), 0);
    ck_assert_uint_eq(strlen(sa), la);
    free(sa);
    free(sb);
    snapmla_spec_free(a);
    snapmla_spec_free(b);
}
END_TEST

START_TEST(emit_fills_every_hole_and_names_the_variant)
{
    snapmla_spec *spec = parse(decode_yaml);
    size_t length;
    char *source = emit(&spec->variants[0], &length);
    ck_assert_ptr_null(strstr(source, "{{"));
    ck_assert_ptr_null(strstr(source, "}}"));
    ck_assert_ptr_nonnull(strstr(source, spec->variants[0].name));
    ck_assert_ptr_nonnull(strstr(source, "constexpr int LATENT = 512;"));
    ck_assert_ptr_nonnull(strstr(source, "constexpr int Q_LEN = 2;"));
    ck_assert_ptr_nonnull(strstr(source, "snapmla_decode_split"));
    ck_assert_ptr_nonnull(strstr(source, "snapmla_combine"));
    /* self-contained: NVRTC must need no include path */
    ck_assert_ptr_null(strstr(source, "#include"));
    free(source);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(emit_differs_when_a_field_differs)
{
    snapmla_spec *spec = parse(decode_yaml);
    snapmla_variant v = spec->variants[0];
    size_t la, lb;
    char *sa = emit(&v, &la);
    v.kv_tile = 32;
    char *sb = emit(&v, &lb);
    ck_assert(la != lb || memcmp(sa, sb, la) != 0);
    free(sa);
    free(sb);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(emit_rejects_fp8_compute_off_wgmma)
{
    snapmla_spec *spec = parse(decode_yaml);
    snapmla_variant v = spec->variants[0];
    v.compute = SNAPMLA_COMPUTE_FP8;
    snapmla_error err;
    char *source = NULL;
    ck_assert_int_eq(snapmla_emit(&v, &source, NULL, &err), SNAPMLA_ERR_UNSUPPORTED);
    ck_assert_ptr_null(source);
    char expected[512];
    snprintf(expected, sizeof expected,
             "variant '%s': target.compute fp8 is generated for tile.engine wgmma only",
             v.name);
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(snapmla_emit(NULL, &source, NULL, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "snapmla_emit: variant and source must not be NULL");
    snapmla_spec_free(spec);
}
END_TEST

/* The Hopper path brings KV tiles in by TMA when pages hold 16+ tokens and
 * by cp.async below that; both shapes, and the plan kernel of its
 * persistent launch, are in the source and compile through NVRTC (the
 * 64-byte RoPE rows of MiniCPM3's dims included). */
/* The wgmma engine's two paths take their own work item and products: FP8
 * (e4m3 QK, V^T P'^T) on the per-token cache, as the seesaw or in role
 * warpgroups (tile.warps 16), BF16 (bf16 QK, P V with V transposed by the
 * instruction, N = latent / 2) on a BF16 cache; all compile through NVRTC
 * (MiniCPM3 dims: N = 128, 64-byte RoPE rows). */
START_TEST(wgmma_paths_pick_their_products)
{
    static const struct { const char *yaml, *has[3], *lacks[2]; } cases[] = {
        {"model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ncache: {format: fp8_per_token}\n"
         "tile: {engine: wgmma}\ntarget: {compute: fp8}\n",
         {"m64n64k32.f32.e4m3.e4m3", "wgmma_pvt_fp8", "Hopper FP8 path"},
         {"wgmma_pv_bf16_rs", "Hopper BF16 path"}},
        {"model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ntile: {engine: wgmma}\n",
         {"m64n256k16.f32.bf16.bf16", "wgmma_pv_bf16_ss", "Hopper BF16 path"},
         {"e4m3.e4m3", "Hopper FP8 path"}},
        /* tile.schedule: auto takes the pair schedule from 256 query rows;
         * pair and seesaw force either at any rows */
        {"model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 2}\ntile: {engine: wgmma}\n",
         {"the pair schedule", "issue_chunks", "BAR_M0"},
         {"other_tile(", "e4m3.e4m3"}},
        {"model: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {engine: wgmma, schedule: pair}\n",
         {"the pair schedule", "issue_chunks", "BAR_M0"},
         {"other_tile(", "e4m3.e4m3"}},
        {"model: {latent_dim: 512, rope_dim: 64, q_heads: 128, q_len: 2}\ntile: {engine: wgmma, schedule: seesaw}\n",
         {"Hopper BF16 path (wgmma bf16", "other_tile(", "wgmma_pv_bf16_ss"},
         {"issue_chunks", "BAR_M0"}},
        {"model: {latent_dim: 256, rope_dim: 32, q_heads: 40, q_len: 2}\n"
         "cache: {page_size: 16, rope_layout: planar}\ntile: {engine: wgmma, stages: 4}\n",
         {"m64n128k16.f32.bf16.bf16", "wgmma_pv_bf16_rs", "Hopper BF16 path"},
         {"e4m3.e4m3", "Hopper FP8 path"}},
        /* tile.warps 16: the FP8 path in role warpgroups, its own kernel entry */
        {"model: {latent_dim: 512, rope_dim: 64, q_heads: 128}\ncache: {format: fp8_per_token}\n"
         "tile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
         {"setmaxnreg.inc", "score_item", "output_item"},
         {"decode_item(", "wgmma_pv_bf16_rs"}},
        {"model: {latent_dim: 256, rope_dim: 32, q_heads: 40, q_len: 2}\n"
         "cache: {format: fp8_per_token, page_size: 16}\ntile: {engine: wgmma, warps: 16, stages: 3}\n"
         "target: {compute: fp8}\n",
         {"setmaxnreg.dec", "wgmma_pvt_fp8", "m64n64k32.f32.e4m3.e4m3"},
         {"decode_item(", "Hopper BF16 path"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "kernel: mla_decode\n%s", cases[c].yaml);
        snapmla_spec *spec = parse(yaml);
        size_t length;
        char *source = emit(&spec->variants[0], &length);
        for (int i = 0; i < 3; ++i)
            ck_assert_msg(strstr(source, cases[c].has[i]) != NULL, "%s: no '%s'", spec->variants[0].name,
                          cases[c].has[i]);
        for (int i = 0; i < 2; ++i)
            ck_assert_msg(strstr(source, cases[c].lacks[i]) == NULL, "%s: has '%s'", spec->variants[0].name,
                          cases[c].lacks[i]);
        snapmla_error err;
        unsigned char *cubin = NULL;
        size_t size = 0;
        ck_assert_msg(snapmla_jit_compile(source, spec->variants[0].name, spec->variants[0].arch, &cubin,
                                          &size, &err) == SNAPMLA_OK,
                      "%s: %s", spec->variants[0].name, err.message);
        free(cubin);
        free(source);
        snapmla_spec_free(spec);
    }
}
END_TEST

START_TEST(wgmma_copy_path_follows_the_page_size)
{
    static const struct { int page, latent, rope; const char *tma; } cases[] = {
        {1, 512, 64, "false"}, {16, 256, 32, "true"}, {32, 512, 64, "true"},
        {64, 512, 128, "true"}, {128, 512, 64, "true"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        char yaml[512], expected[64];
        snprintf(yaml, sizeof yaml,
                 "kernel: mla_decode\nmodel: {latent_dim: %d, rope_dim: %d, q_heads: 16}\n"
                 "cache: {format: fp8_per_token, page_size: %d}\ntile: {engine: wgmma}\n"
                 "target: {compute: fp8}\n", cases[c].latent, cases[c].rope, cases[c].page);
        snapmla_spec *spec = parse(yaml);
        size_t length;
        char *source = emit(&spec->variants[0], &length);
        snprintf(expected, sizeof expected, "constexpr bool KV_TMA = %s;", cases[c].tma);
        ck_assert_msg(strstr(source, expected) != NULL, "page %d: no '%s'", cases[c].page, expected);
        ck_assert_ptr_nonnull(strstr(source, "snapmla_decode_plan"));
        snapmla_error err;
        unsigned char *cubin = NULL;
        size_t size = 0;
        ck_assert_msg(snapmla_jit_compile(source, spec->variants[0].name, spec->variants[0].arch,
                                          &cubin, &size, &err) == SNAPMLA_OK,
                      "%s: %s", spec->variants[0].name, err.message);
        free(cubin);
        free(source);
        snapmla_spec_free(spec);
    }
    /* the other engines have neither */
    snapmla_spec *spec = parse(decode_yaml);
    size_t length;
    char *source = emit(&spec->variants[0], &length);
    ck_assert_ptr_null(strstr(source, "KV_TMA"));
    ck_assert_ptr_null(strstr(source, "snapmla_decode_plan"));
    free(source);
    snapmla_spec_free(spec);
}
END_TEST

/* The tensor-core peak probe that `snapmla bench` times compiles for
 * sm_90a and holds its four kernels. */
START_TEST(peak_probe_compiles)
{
    snapmla_strbuf source = {0};
    snapmla_emit_mma_peak(&source);
    ck_assert(!source.failed);
    ck_assert_ptr_nonnull(strstr(source.data, "snapmla_mma_peak_fp8"));
    ck_assert_ptr_nonnull(strstr(source.data, "snapmla_mma_peak_bf16"));
    ck_assert_ptr_nonnull(strstr(source.data, "m64n256k32.f32.e4m3.e4m3"));
    ck_assert_ptr_nonnull(strstr(source.data, "snapmla_mma_n64_mix_fp8"));
    ck_assert_ptr_nonnull(strstr(source.data, "snapmla_mma_n64_ss_fp8"));
    ck_assert_ptr_nonnull(strstr(source.data, "m64n64k32.f32.e4m3.e4m3"));
    unsigned char *cubin = NULL;
    size_t size = 0;
    snapmla_error err;
    ck_assert_msg(snapmla_jit_compile(source.data, "mma_peak.cu", SNAPMLA_ARCH_SM90A, &cubin, &size,
                                      &err) == SNAPMLA_OK, "%s", err.message);
    ck_assert_uint_gt(size, 1000);
    free(cubin);
    snapmla_strbuf_free(&source);
}
END_TEST

START_TEST(cache_key_covers_source_and_arch)
{
    snapmla_spec *spec = parse(decode_yaml);
    snapmla_variant v = spec->variants[0];
    char k1[65], k2[65], k3[65];
    snapmla_error err;
    ck_assert_int_eq(snapmla_cache_key(&v, k1, &err), SNAPMLA_OK);
    ck_assert_int_eq(snapmla_cache_key(&v, k2, &err), SNAPMLA_OK);
    ck_assert_str_eq(k1, k2);
    ck_assert_uint_eq(strlen(k1), 64);
    v.arch = SNAPMLA_ARCH_SM80;
    ck_assert_int_eq(snapmla_cache_key(&v, k3, &err), SNAPMLA_OK);
    ck_assert_str_ne(k1, k3);
    v = spec->variants[0];
    v.stages = 1;
    ck_assert_int_eq(snapmla_cache_key(&v, k3, &err), SNAPMLA_OK);
    ck_assert_str_ne(k1, k3);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(nvrtc_reports_its_log)
{
    const char *broken = "extern \"C\" __global__ void k() { this_is_not_defined(); }\n";
    unsigned char *cubin = NULL;
    size_t size = 0;
    snapmla_error err;
    ck_assert_int_eq(snapmla_jit_compile(broken, "broken.cu", SNAPMLA_ARCH_SM90A, &cubin, &size,
                                         &err), SNAPMLA_ERR_COMPILE);
    ck_assert_ptr_null(cubin);
    ck_assert_msg(strncmp(err.message, "NVRTC could not compile 'broken.cu':", 36) == 0, "%s",
                  err.message);
    ck_assert_ptr_nonnull(strstr(err.message, "this_is_not_defined"));
}
END_TEST

/* NVRTC's log as ptxas -v writes it, with the lines the reader must skip:
 * a front-end warning, gmem, compile times, a device function that was not
 * inlined (not a kernel), and a performance note naming its kernel. */
static const char *const ptxas_log =
    "t.cu(37): warning #177-D: variable \"WARPS\" was declared but never referenced\n"
    "ptxas info    : 0 bytes gmem\n"
    "ptxas info    : Compiling entry function 'snapmla_combine' for 'sm_90a'\n"
    "ptxas info    : Function properties for snapmla_combine\n"
    "    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n"
    "ptxas info    : Used 32 registers, used 1 barriers, 8 bytes cumulative stack size, 6416 bytes smem\n"
    "ptxas info    : Compile time = 46.492 ms\n"
    "ptxas info    : Function properties for helper_not_inlined\n"
    "    24 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
    "ptxas info    : Compiling entry function 'snapmla_decode_split' for 'sm_90a'\n"
    "ptxas info    : Function properties for snapmla_decode_split\n"
    "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
    "ptxas info    : (C7515) Potential Performance Loss: wgmma.mma_async instructions are serialized due to "
    "non wgmma instructions defining accumulator registers of a wgmma between start and end of the pipeline "
    "stage in the function 'snapmla_decode_split'\n"
    "ptxas info    : Used 168 registers, used 7 barriers, 16 bytes smem\n"
    "ptxas info    : Compiling entry function 'snapmla_simt' for 'sm_80'\n"
    "ptxas info    : Function properties for snapmla_simt\n"
    "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
    "ptxas info    : Used 90 registers\n";

START_TEST(ptxas_report_reads_each_kernel)
{
    snapmla_ptxas_report report;
    snapmla_error err;
    ck_assert_int_eq(snapmla_ptxas_report_parse(ptxas_log, "t.cu", &report, &err), SNAPMLA_OK);
    ck_assert_int_eq(report.count, 3);
    const snapmla_kernel_resources *c = snapmla_ptxas_report_find(&report, "snapmla_combine");
    const snapmla_kernel_resources *d = snapmla_ptxas_report_find(&report, "snapmla_decode_split");
    const snapmla_kernel_resources *simt = snapmla_ptxas_report_find(&report, "snapmla_simt");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(simt);
    ck_assert_ptr_null(snapmla_ptxas_report_find(&report, "helper_not_inlined"));
    ck_assert_int_eq(c->registers, 32);
    ck_assert_int_eq(c->barriers, 1);
    ck_assert_int_eq(c->stack_bytes, 8);   /* not the helper's 24 */
    ck_assert_int_eq(c->spill_store_bytes, 4);
    ck_assert_int_eq(c->spill_load_bytes, 12);
    ck_assert_int_eq(c->static_smem_bytes, 6416);
    ck_assert_int_eq(c->performance_notes, 0);
    ck_assert_int_eq(d->registers, 168);
    ck_assert_int_eq(d->barriers, 7);
    ck_assert_int_eq(d->static_smem_bytes, 16);
    ck_assert_int_eq(d->spill_store_bytes + d->spill_load_bytes + d->stack_bytes, 0);
    ck_assert_int_eq(d->performance_notes, 1);
    ck_assert_int_eq(simt->registers, 90);   /* no barriers, no smem: zeros */
    ck_assert_int_eq(simt->barriers, 0);
    ck_assert_int_eq(simt->static_smem_bytes, 0);
    ck_assert_msg(strncmp(report.notes, "ptxas info    : (C7515) Potential Performance Loss", 50) == 0, "%s",
                  report.notes);
    ck_assert_ptr_nonnull(strchr(report.notes, '\n'));
    ck_assert_str_eq(strchr(report.notes, '\n') + 1, "");   /* that note alone: not the front end's warning */
}
END_TEST

/* The rule behind the runtime's warning and the shipped-variant check. */
START_TEST(ptxas_report_problem_names_the_first_kernel_off_its_design)
{
    snapmla_ptxas_report report;
    snapmla_error err;
    char problem[SNAPMLA_ERROR_MAX];
    ck_assert_int_eq(snapmla_ptxas_report_parse(ptxas_log, "t.cu", &report, &err), SNAPMLA_OK);
    /* the combine's 4 / 12 bytes are within the small kernels' allowance;
     * the decode kernel's note is not */
    ck_assert_int_eq(snapmla_ptxas_report_problem(&report, problem, sizeof problem), 1);
    ck_assert_str_eq(problem, "ptxas notes a performance loss in snapmla_decode_split: ptxas info    : "
                              "(C7515) Potential Performance Loss: wgmma.mma_async instructions are "
                              "serialized due to non wgmma instructions defining accumulator registers "
                              "of a wgmma between start and end of the pipeline stage in the function "
                              "'snapmla_decode_split'");
    snapmla_kernel_resources *d = (snapmla_kernel_resources *)snapmla_ptxas_report_find(&report, "snapmla_decode_split");
    snapmla_kernel_resources *c = (snapmla_kernel_resources *)snapmla_ptxas_report_find(&report, "snapmla_combine");
    d->performance_notes = 0;
    ck_assert_int_eq(snapmla_ptxas_report_problem(&report, problem, sizeof problem), 0);
    d->spill_load_bytes = 4;   /* the decode kernel may not spill at all */
    ck_assert_int_eq(snapmla_ptxas_report_problem(&report, problem, sizeof problem), 1);
    ck_assert_str_eq(problem, "snapmla_decode_split spills 0 bytes to local memory (loads 4)");
    d->spill_load_bytes = 0;
    c->spill_store_bytes = 17;   /* a small kernel: up to 16 */
    ck_assert_int_eq(snapmla_ptxas_report_problem(&report, problem, sizeof problem), 1);
    ck_assert_str_eq(problem, "snapmla_combine spills 17 bytes to local memory (loads 12)");
    ck_assert_int_eq(snapmla_spill_allowance("snapmla_decode_split"), 0);
    ck_assert_int_eq(snapmla_spill_allowance("snapmla_append"), 16);
}
END_TEST

/* As NVRTC 13.0 prints them: the notes first, before any kernel's record
 * (here in front of ptxas_log, which has one more note in place). */
START_TEST(ptxas_report_counts_a_note_printed_before_its_kernel)
{
    static const char note[] =
        "ptxas info    : (C7513) Potential Performance Loss: wgmma.mma_async instructions are serialized due to "
        "non wgmma instructions defining input registers of a wgmma between start and end of the pipeline stage "
        "in the function 'snapmla_decode_split'\n";
    char *log = malloc(strlen(note) + strlen(ptxas_log) + 1);
    ck_assert_ptr_nonnull(log);
    strcpy(log, note);
    strcat(log, ptxas_log);
    snapmla_ptxas_report report;
    snapmla_error err;
    ck_assert_int_eq(snapmla_ptxas_report_parse(log, "t.cu", &report, &err), SNAPMLA_OK);
    free(log);
    ck_assert_int_eq(report.count, 3);
    ck_assert_int_eq(snapmla_ptxas_report_find(&report, "snapmla_decode_split")->performance_notes, 2);
    ck_assert_int_eq(snapmla_ptxas_report_find(&report, "snapmla_combine")->performance_notes, 0);
    ck_assert_int_eq(snapmla_ptxas_report_find(&report, "snapmla_simt")->performance_notes, 0);
    ck_assert_ptr_nonnull(strstr(report.notes, "(C7513)"));
}
END_TEST

START_TEST(ptxas_report_refuses_a_log_without_kernels)
{
    snapmla_ptxas_report report;
    snapmla_error err;
    ck_assert_int_eq(snapmla_ptxas_report_parse("ptxas info    : 0 bytes gmem\n", "x.cu", &report, &err),
                     SNAPMLA_ERR_INTERNAL);
    ck_assert_str_eq(err.message, "the compile log of 'x.cu' names no kernel (was it compiled with ptxas -v?)");
    ck_assert_int_eq(snapmla_ptxas_report_parse("ptxas info    : Compiling entry function 'k' for 'sm_90a'\n",
                                                "x.cu", &report, &err),
                     SNAPMLA_ERR_INTERNAL);
    ck_assert_str_eq(err.message, "the compile log of 'x.cu' gives no register count for kernel 'k'");
}
END_TEST

/* The promise of CI: every variant we ship (and those of
 * tests/specs_compile/, at the edges of a kernel's register plan) compiles,
 * with no GPU present, and builds without the runtime's warning: ptxas
 * serializes none of their kernels (a serialized wgmma loses the schedule),
 * the decode kernel does not spill, and the small kernels keep at most a
 * value or two in local memory (snapmla_ptxas_report_problem: today the
 * combine at 128 and 512 threads keeps one across its sweep, a store and a
 * load per CTA). */
/* One shipped variant's compile, made on a worker thread and checked after. */
typedef struct shipped_build {
    const snapmla_variant *variant;
    snapmla_status status;
    snapmla_error err;
    size_t cubin_size;
    int elf;   /* the CUBIN starts with ELF's magic */
    snapmla_ptxas_report report;
} shipped_build;

static void build_shipped(void *context, size_t begin, size_t end)
{
    shipped_build *builds = context;
    for (size_t i = begin; i < end; ++i) {
        shipped_build *b = &builds[i];
        char *source = NULL;
        size_t length = 0;
        unsigned char *cubin = NULL;
        b->status = snapmla_emit(b->variant, &source, &length, &b->err);
        if (b->status == SNAPMLA_OK)
            b->status = snapmla_jit_compile_report(source, b->variant->name, b->variant->arch, &cubin,
                                                   &b->cubin_size, &b->report, &b->err);
        b->elf = cubin && b->cubin_size >= 4 && memcmp(cubin, "\177ELF", 4) == 0;
        free(cubin);
        free(source);
    }
}

START_TEST(every_shipped_variant_compiles)
{
    glob_t found;
    ck_assert_int_eq(glob(SNAPMLA_SOURCE_DIR "/specs/*.yaml", 0, NULL, &found), 0);
    ck_assert_uint_gt(found.gl_pathc, 5);
    /* and the test-only specs at the edges of a kernel's register plan */
    ck_assert_int_eq(glob(SNAPMLA_SOURCE_DIR "/tests/specs_compile/*.yaml", GLOB_APPEND, NULL, &found), 0);
    snapmla_spec **specs = calloc(found.gl_pathc, sizeof *specs);
    ck_assert_ptr_nonnull(specs);
    size_t count = 0;
    for (size_t f = 0; f < found.gl_pathc; ++f) {
        snapmla_error err;
        ck_assert_msg(snapmla_spec_load(found.gl_pathv[f], &specs[f], &err) == SNAPMLA_OK, "%s", err.message);
        count += specs[f]->count;
    }
    shipped_build *builds = calloc(count, sizeof *builds);
    ck_assert_ptr_nonnull(builds);
    for (size_t f = 0, n = 0; f < found.gl_pathc; ++f)
        for (size_t i = 0; i < specs[f]->count; ++i)
            builds[n++].variant = &specs[f]->variants[i];
    snapmla_parallel_for(count, 1, build_shipped, builds);   /* NVRTC is thread-safe */
    size_t kernels = 0;
    for (size_t i = 0; i < count; ++i) {
        const shipped_build *b = &builds[i];
        const char *name = b->variant->name;
        ck_assert_msg(b->status == SNAPMLA_OK, "%s: %s", name, b->err.message);
        ck_assert_uint_gt(b->cubin_size, 1000);
        ck_assert_msg(b->elf, "%s: the CUBIN is not an ELF file", name);
        ck_assert_int_ge(b->report.count, 1);
        for (int k = 0; k < b->report.count; ++k) {
            const snapmla_kernel_resources *r = &b->report.kernels[k];
            ck_assert_msg(r->registers > 0 && r->registers <= 255, "%s: %s: %d registers", name, r->name,
                          r->registers);
            kernels++;
        }
        char problem[SNAPMLA_ERROR_MAX];
        ck_assert_msg(!snapmla_ptxas_report_problem(&b->report, problem, sizeof problem), "%s: %s",
                      name, problem);
        ck_assert_msg(b->report.notes[0] == '\0', "%s: %s", name, b->report.notes);
    }
    printf("compiled %zu shipped variants through NVRTC: %zu kernels, no decode kernel spills, none is "
           "serialized\n", count, kernels);
    free(builds);
    for (size_t f = 0; f < found.gl_pathc; ++f)
        snapmla_spec_free(specs[f]);
    free(specs);
    globfree(&found);
}
END_TEST

/* ---- random specs ---------------------------------------------------------
 * The generator's promise beyond the shipped specs: whatever the loader
 * accepts compiles. Each run draws fresh spec texts over every field's
 * allowed values (the seed is printed; SNAPMLA_TEST_SEED replays it), keeps
 * the first that load, and compiles them. Spills are allowed here (the
 * runtime warns of them); a compile failure is a generator bug. */
static uint64_t emit_seed;

#define PICK(r, ...) pick_text(r, (const char *const[]){__VA_ARGS__}, \
                               sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static const char *pick_text(uint64_t *r, const char *const *options, size_t count)
{
    return options[mutate_pick(r, count)];
}

static void random_decode_fields(uint64_t *r, snapmla_strbuf *sb)
{
    const int wgmma = mutate_pick(r, 3) == 0;
    const char *format = PICK(r, "bf16", "fp8_per_token", "fp8_per_tile128");
    snapmla_strbuf_printf(sb, "kernel: mla_decode\nmodel: {latent_dim: %s, rope_dim: %s, "
                          "q_heads: %s, q_len: %s, causal: %s}\n",
                          wgmma ? PICK(r, "256", "512") : PICK(r, "32", "64", "96", "160", "256", "384", "512", "576", "1024"),
                          wgmma ? PICK(r, "32", "64", "128") : PICK(r, "16", "32", "48", "64", "128"),
                          PICK(r, "1", "2", "3", "5", "7", "8", "13", "16", "31", "40", "64", "100", "127", "128"),
                          PICK(r, "1", "1", "2", "3", "4"), PICK(r, "true", "false"));
    snapmla_strbuf_printf(sb, "cache: {format: %s, page_size: %s%s}\n", format,
                          PICK(r, "1", "16", "32", "64", "128"),
                          PICK(r, "", "", ", rope_layout: planar", ", rope_layout: interleaved"));
    if (wgmma)
        snapmla_strbuf_printf(sb, "tile: {engine: wgmma, warps: %s%s}\ntarget: {arch: sm_90a, "
                              "compute: %s}\n", PICK(r, "8", "16"),
                              PICK(r, "", ", stages: 2", ", stages: 3", ", stages: 4"),
                              strcmp(format, "bf16") == 0 ? "bf16" : "fp8");
    else if (mutate_pick(r, 2))
        snapmla_strbuf_printf(sb, "tile: {engine: mma_sync, q_rows: %s, kv_tokens: %s, stages: %s}\n"
                              "target: {arch: %s}\n", PICK(r, "16", "32", "64"), PICK(r, "16", "32", "64"),
                              PICK(r, "1", "2", "3"), PICK(r, "sm_80", "sm_89", "sm_90a"));
    else
        snapmla_strbuf_printf(sb, "tile: {engine: simt, q_rows: %s, kv_tokens: %s, warps: %s, stages: %s}\n"
                              "target: {arch: %s}\n", PICK(r, "8", "16", "32"), PICK(r, "16", "32", "64", "128"),
                              PICK(r, "4", "8", "16"), PICK(r, "1", "2"), PICK(r, "sm_80", "sm_89", "sm_90a"));
    if (mutate_pick(r, 3) == 0)
        snapmla_strbuf_printf(sb, "split: {policy: %s, max_splits: %s}\n",
                              PICK(r, "auto", "fixed", "balanced"), PICK(r, "1", "2", "7", "64", "128"));
}

static void random_spec_text(uint64_t *r, snapmla_strbuf *sb)
{
    const size_t kind = mutate_pick(r, 8);
    if (kind == 0)
        snapmla_strbuf_printf(sb, "kernel: kv_append\nmodel: {latent_dim: %s, rope_dim: %s}\n"
                              "cache: {format: %s, page_size: %s}\ntarget: {arch: %s}\n",
                              PICK(r, "64", "256", "512", "1024"), PICK(r, "16", "32", "64", "128"),
                              PICK(r, "bf16", "fp8_per_token", "fp8_per_tile128"),
                              PICK(r, "1", "16", "64", "128"), PICK(r, "sm_80", "sm_89", "sm_90a"));
    else if (kind == 1)
        snapmla_strbuf_printf(sb, "kernel: mla_combine\nmodel: {latent_dim: %s, q_heads: %s, q_len: %s}\n"
                              "split: {max_splits: %s}\ntile: {warps: %s}\ntarget: {arch: %s}\n",
                              PICK(r, "32", "96", "256", "512", "1024"), PICK(r, "1", "7", "16", "128"),
                              PICK(r, "1", "3"), PICK(r, "1", "5", "64", "128"), PICK(r, "4", "8", "16"),
                              PICK(r, "sm_80", "sm_89", "sm_90a"));
    else
        random_decode_fields(r, sb);
}

START_TEST(random_specs_that_load_compile)
{
    enum { WANTED = 16, MOST_TRIES = 4000 };
    uint64_t r = emit_seed;
    snapmla_spec *specs[WANTED];
    char *texts[WANTED];
    shipped_build builds[WANTED];
    memset(builds, 0, sizeof builds);
    int count = 0;
    for (int tries = 0; tries < MOST_TRIES && count < WANTED; ++tries) {
        snapmla_strbuf sb = {0};
        random_spec_text(&r, &sb);
        ck_assert(!sb.failed);
        snapmla_error err;
        if (snapmla_spec_parse(sb.data, sb.length, "r.yaml", &specs[count], &err) == SNAPMLA_OK) {
            texts[count] = sb.data;
            builds[count].variant = &specs[count]->variants[0];
            count++;
        } else {
            snapmla_strbuf_free(&sb);
        }
    }
    ck_assert_int_eq(count, WANTED);
    snapmla_parallel_for(WANTED, 1, build_shipped, builds);
    for (int i = 0; i < WANTED; ++i) {
        const shipped_build *b = &builds[i];
        ck_assert_msg(b->status == SNAPMLA_OK && b->elf,
                      "SNAPMLA_TEST_SEED=%llu: a spec that loads does not compile:\n%s%s",
                      (unsigned long long)emit_seed, texts[i], b->err.message);
        ck_assert_int_ge(b->report.count, 1);
        free(texts[i]);
        snapmla_spec_free(specs[i]);
    }
}
END_TEST

int main(void)
{
    if (!test_seed("test_emit", &emit_seed))
        return EXIT_FAILURE;
    printf("test_emit: seed %llu (replay with SNAPMLA_TEST_SEED=%llu)\n",
           (unsigned long long)emit_seed, (unsigned long long)emit_seed);
    fflush(stdout);
    Suite *suite = suite_create("emit");
    TCase *tc = tcase_create("emit");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, emit_is_deterministic);
    tcase_add_test(tc, emit_fills_every_hole_and_names_the_variant);
    tcase_add_test(tc, emit_differs_when_a_field_differs);
    tcase_add_test(tc, emit_rejects_fp8_compute_off_wgmma);
    tcase_add_test(tc, wgmma_copy_path_follows_the_page_size);
    tcase_add_test(tc, wgmma_paths_pick_their_products);
    tcase_add_test(tc, peak_probe_compiles);
    tcase_add_test(tc, cache_key_covers_source_and_arch);
    tcase_add_test(tc, nvrtc_reports_its_log);
    tcase_add_test(tc, ptxas_report_reads_each_kernel);
    tcase_add_test(tc, ptxas_report_counts_a_note_printed_before_its_kernel);
    tcase_add_test(tc, ptxas_report_problem_names_the_first_kernel_off_its_design);
    tcase_add_test(tc, ptxas_report_refuses_a_log_without_kernels);
    tcase_add_test(tc, every_shipped_variant_compiles);
    tcase_add_test(tc, random_specs_that_load_compile);
    suite_add_tcase(suite, tc);
    return run_suite(suite, CK_FORK);
}
