/* Tests of the spec stage: every error path with its exact message (inline
 * cases and a corpus of malformed files), defaults, sweeps, names, rejected
 * sweep points, and every shipped spec loading. Runs under ASan/UBSan, which
 * also proves no path leaks. */
#include <check.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmla.h"
#include "input_checks.h"
#include "mutate.h"
#include "run_suite.h"

typedef struct bad_case {
    const char *yaml;
    const char *message;
} bad_case;

static const bad_case bad_cases[] = {
    {"kernel: mla_decod\nmodel: {latent_dim: 512}\n",
     "t.yaml:1:9: kernel: 'mla_decod' is not allowed (did you mean 'mla_decode'?); allowed: mla_decode, mla_combine, kv_append"},
    {"kernel: [mla_decode, kv_append]\n",
     "t.yaml:1:9: kernel: expected one of mla_decode, mla_combine, kv_append (a spec describes one kernel; it cannot be a list)"},
    {"model: {latent_dim: 512}\n",
     "t.yaml:1:1: kernel is required; allowed: mla_decode, mla_combine, kv_append"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, q_heads: 16}\n",
     "t.yaml:1:9: model.rope_dim is required for kernel mla_decode"},
    {"kernel: mla_decode\nmodel: {latent_dim: 500, rope_dim: 64, q_heads: 16}\n",
     "t.yaml:2:21: model.latent_dim: '500' is out of range; allowed: multiples of 32 in 32..1024"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 0}\n",
     "t.yaml:2:49: model.q_heads: '0' is out of range; allowed: 1..128"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: +16}\n",
     "t.yaml:2:49: model.q_heads: '+16' is not an integer; allowed: 1..128"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 0x10}\n",
     "t.yaml:2:49: model.q_heads: '0x10' is not an integer; allowed: 1..128"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: \"16\"}\n",
     "t.yaml:2:49: model.q_heads: '16' is not an integer; allowed: 1..128"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16, causal: yes}\n",
     "t.yaml:2:61: model.causal: 'yes' is ambiguous YAML; write true or false; allowed: false, true"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16, causal: maybe}\n",
     "t.yaml:2:61: model.causal: 'maybe' is not a boolean; allowed: false, true"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ncache: {format: fp8}\n",
     "t.yaml:3:17: cache.format: 'fp8' is not allowed (did you mean 'fp8_per_token'?); allowed: bf16, fp8_per_token, fp8_per_tile128"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntarget: {compute: fp8}\n",
     "t.yaml:3:19: target.compute fp8 runs on FP8 tensor cores: it needs tile.engine wgmma (given simt)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntarget: {arch: sm_100}\n",
     "t.yaml:3:16: target.arch: 'sm_100' is not allowed; allowed: sm_80, sm_89, sm_90a"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {kv_tokens: []}\n",
     "t.yaml:3:19: tile.kv_tokens: an empty list sweeps nothing"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {kv_tokens: [[32]]}\n",
     "t.yaml:3:20: tile.kv_tokens: expected a scalar or a list of scalars, found a nested list"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {kv_tokens: {a: 1}}\n",
     "t.yaml:3:19: tile.kv_tokens: expected a scalar or a list of scalars, found a mapping"},
    {"kernel: mla_combine\nmodel: {latent_dim: 512, q_heads: 16}\ncache: {page_size: 64}\n",
     "t.yaml:3:20: cache.page_size does not apply to kernel mla_combine"},
    {"kernel: kv_append\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n",
     "t.yaml:2:49: model.q_heads does not apply to kernel kv_append"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\nsplit: {policy: none, max_splits: 4}\n",
     "t.yaml:3:35: split.max_splits 4 contradicts split.policy none (which uses one split); drop it or set 1"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ncache: {format: fp8_per_token, rope_layout: interleaved}\n",
     "t.yaml:3:45: cache.format fp8_per_token stores planes: cache.rope_layout must be planar"},
    {"kernel: mla_decode\nmodel: {latent_dim: 256, rope_dim: 32, q_heads: 16}\ncache: {format: fp8_per_tile128}\n",
     "t.yaml:3:17: cache.format fp8_per_tile128 needs model.latent_dim a multiple of 128 and a token of a multiple of 16 bytes; latent 256 + rope 32 gives 328"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ncache: {format: fp8_per_tile128, rope_layout: planar}\n",
     "t.yaml:3:47: cache.format fp8_per_tile128 is FlashMLA's token-interleaved layout: cache.rope_layout must be interleaved"},
    {"kernel: kv_append\nmodel: {latent_dim: 512, rope_dim: 64}\ncache: {format: fp8_per_token}\ntarget: {arch: sm_80}\n",
     "t.yaml:4:16: writing an FP8 cache needs the e4m3 conversion of sm_89 or later; target.arch is sm_80"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {q_rows: 64, warps: 4}\n",
     "t.yaml:3:16: needs 240640 bytes of shared memory per CTA, over the 232448 that sm_90a allows: lower tile.kv_tokens, tile.stages or tile.q_rows"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {kv_tokens: 128, stages: 4}\ntarget: {arch: sm_89}\n",
     "t.yaml:3:32: needs 624896 bytes of shared memory per CTA, over the 101376 that sm_89 allows: lower tile.kv_tokens, tile.stages or tile.q_rows"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntarget: {arhc: sm_90a}\n",
     "t.yaml:3:10: unknown field 'target.arhc' (did you mean 'arch'?); fields of 'target': arch, compute"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\nmodle: {}\n",
     "t.yaml:3:1: unknown field 'modle' (did you mean 'model'?); top-level fields: name, kernel, model, cache, tile, split, target"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\nname: \"bad name!\"\n",
     "t.yaml:3:7: name: 'bad name!' is not allowed; allowed: 1 to 48 of A-Z a-z 0-9 _ - ."},
    {"kernel: mla_decode\n!!str model: {latent_dim: 512}\n",
     "t.yaml:2:1: YAML anchors, aliases and tags are not supported in specs"},
    {"kernel: mla_decode\n? [a, b]\n: 1\n",
     "t.yaml:2:3: mapping keys must be plain names"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ncache: {page_size: 64.0}\n",
     "t.yaml:3:20: cache.page_size: '64.0' is not an integer; allowed: 1, 16, 32, 64, 128"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ncache: {rope_layout: plannar}\n",
     "t.yaml:3:22: cache.rope_layout: 'plannar' is not allowed (did you mean 'planar'?); allowed: interleaved, planar"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "tile: {engine: mma_sync, q_rows: 8}\n",
     "t.yaml:3:34: tile.engine mma_sync works on 16 query rows at a time: tile.q_rows must be 16, "
     "32 or 64 (given 8)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "tile: {engine: mma_sync, q_rows: 32, warps: 8}\n",
     "t.yaml:3:45: tile.engine mma_sync puts 2 warps on each 16 query rows: tile.q_rows 32 needs "
     "tile.warps 4 (given 8)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "tile: {engine: wgmma}\ntarget: {compute: fp8}\n",
     "t.yaml:4:19: tile.engine wgmma generates two paths in this version: target.compute fp8 on "
     "cache.format fp8_per_token or fp8_per_tile128, and target.compute bf16 on cache.format bf16 "
     "(given fp8 on bf16); other pairs run on tile.engine mma_sync"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "cache: {page_size: 1}\ntile: {engine: wgmma}\n",
     "t.yaml:4:16: the wgmma path on cache.format bf16 copies KV tiles by TMA, one box per page "
     "piece: cache.page_size must be 16 or more and divide or be a multiple of tile.kv_tokens 64 "
     "(given 1)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "cache: {format: fp8_per_tile128, page_size: 1}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
     "t.yaml:4:16: the wgmma path on cache.format fp8_per_tile128 copies KV tiles by TMA, one box "
     "per page piece: cache.page_size must be 16 or more and divide or be a multiple of "
     "tile.kv_tokens 64 (given 1)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "split: {policy: balanced}\n",
     "t.yaml:3:17: split.policy balanced is planned on the device for the persistent Hopper launch: "
     "it needs tile.engine wgmma (given simt)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "tile: {engine: wgmma, stages: 3}\n",
     "t.yaml:3:31: needs 304944 bytes of shared memory per CTA, over the 232448 that sm_90a allows: "
     "lower tile.kv_tokens, tile.stages or tile.q_rows"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "cache: {format: fp8_per_token}\ntile: {engine: wgmma}\ntarget: {arch: sm_89, compute: fp8}\n",
     "t.yaml:5:16: tile.engine wgmma needs Hopper's warpgroup MMA: target.arch must be sm_90a (given sm_89)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "cache: {format: fp8_per_token}\ntile: {engine: wgmma, q_rows: 32}\ntarget: {compute: fp8}\n",
     "t.yaml:4:31: tile.engine wgmma works on 64 query rows x 64 tokens with two or four warpgroups: "
     "tile.q_rows 64, tile.kv_tokens 64, tile.warps 8 or 16 (given 32, 64, 8)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "tile: {engine: wgmma, warps: 16}\n",
     "t.yaml:3:30: tile.warps 16 (the role warpgroups) is the FP8 path on cache.format fp8_per_token "
     "or fp8_per_tile128 with TMA copies: target.compute fp8, cache.page_size 16 or more that divides or "
     "is a multiple of 64 "
     "(given bf16 on bf16, page 64); other paths take tile.warps 8"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "cache: {format: fp8_per_token, page_size: 1}\ntile: {engine: wgmma, warps: 16}\ntarget: {compute: fp8}\n",
     "t.yaml:4:30: tile.warps 16 (the role warpgroups) is the FP8 path on cache.format fp8_per_token "
     "or fp8_per_tile128 with TMA copies: target.compute fp8, cache.page_size 16 or more that divides or "
     "is a multiple of 64 "
     "(given fp8 on fp8_per_token, page 1); other paths take tile.warps 8"},
    {"kernel: mla_decode\nmodel: {latent_dim: 384, rope_dim: 64, q_heads: 16}\n"
     "cache: {format: fp8_per_token}\ntile: {engine: wgmma}\ntarget: {compute: fp8}\n",
     "t.yaml:4:16: tile.engine wgmma splits the output between two warpgroups in 128-channel blocks: "
     "model.latent_dim must be 256 or 512 and model.rope_dim 32, 64 or 128 (given 384, 64)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "cache: {format: fp8_per_token}\ntile: {engine: wgmma, stages: 1}\ntarget: {compute: fp8}\n",
     "t.yaml:4:31: tile.engine wgmma has its two warpgroups on two KV tiles at once: "
     "tile.stages must be 2 or more (given 1)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
     "cache: {format: fp8_per_token}\ntile: {engine: wgmma, schedule: pair}\ntarget: {compute: fp8}\n",
     "t.yaml:5:19: tile.schedule pair picks the order of the Hopper BF16 path's two warpgroups: it needs "
     "tile.engine wgmma and target.compute bf16 (given wgmma, fp8); elsewhere leave it auto"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {schedule: seesaw}\n",
     "t.yaml:3:18: tile.schedule seesaw picks the order of the Hopper BF16 path's two warpgroups: it needs "
     "tile.engine wgmma and target.compute bf16 (given simt, bf16); elsewhere leave it auto"},
    {"kernel: mla_decode\nmodel: {latent_dim: 256, rope_dim: 32, q_heads: 16}\n"
     "tile: {engine: wgmma, schedule: pair, stages: 3}\n",
     "t.yaml:3:47: tile.schedule pair works on a pair of tiles in the ring's two slots: tile.stages "
     "must be 2 (given 3)"},
    {"kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\ntile: {engine: wgmma, schedule: pairs}\n",
     "t.yaml:3:33: tile.schedule: 'pairs' is not allowed (did you mean 'pair'?); allowed: auto, seesaw, pair"},
};
enum { BAD_CASES = sizeof bad_cases / sizeof bad_cases[0] };

static snapmla_spec *parse_ok(const char *yaml)
{
    snapmla_spec *spec = NULL;
    snapmla_error err;
    ck_assert_msg(snapmla_spec_parse(yaml, strlen(yaml), "t.yaml", &spec, &err) == SNAPMLA_OK,
                  "%s", err.message);
    return spec;
}

START_TEST(bad_specs_give_one_exact_message)
{
    const bad_case *c = &bad_cases[_i];
    snapmla_spec *spec = (snapmla_spec *)0x1;
    snapmla_error err;
    snapmla_status s = snapmla_spec_parse(c->yaml, strlen(c->yaml), "t.yaml", &spec, &err);
    ck_assert_int_eq(s, SNAPMLA_ERR_SPEC);
    ck_assert_int_eq(err.status, SNAPMLA_ERR_SPEC);
    ck_assert_ptr_null(spec);
    ck_assert_str_eq(err.message, c->message);
}
END_TEST

typedef struct corpus_case {
    const char *file;
    const char *message;   /* after "<path>" */
} corpus_case;

static const corpus_case corpus[] = {
    {"alias.yaml", ":2:8: YAML anchors, aliases and tags are not supported in specs"},
    {"bad_utf8.yaml", ":1:1: YAML syntax error: invalid trailing UTF-8 octet"},
    {"comments_only.yaml", ": empty spec; expected a mapping with at least 'kernel'"},
    {"deep.yaml", ":10:17: nesting is deeper than a spec can be"},
    {"duplicate_key.yaml", ":6:3: duplicate field 'q_heads' (first at line 5)"},
    {"empty.yaml", ": empty spec; expected a mapping with at least 'kernel'"},
    {"huge_number.yaml",
     ":3:15: model.latent_dim: '99999999999999999999' is out of range; allowed: multiples of 32 in 32..1024"},
    {"junk.bin", ":1:1: YAML syntax error: invalid leading UTF-8 octet"},
    {"repeated_sweep_value.yaml", ":6:28: tile.kv_tokens: '32' is listed twice"},
    {"section_list.yaml", ":2:8: model: expected a mapping of fields"},
    {"tabs.yaml",
     ":3:1: YAML syntax error: found character that cannot start any token (while scanning for the next token)"},
    {"top_list.yaml", ":1:1: a spec is a mapping of fields (kernel, model, cache, ...), not a list"},
    {"two_documents.yaml", ":3:1: a spec holds one YAML document; found a second"},
    {"unclosed.yaml",
     ":3:1: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping)"},
    {"unknown_field.yaml",
     ":5:3: unknown field 'model.q_head' (did you mean 'q_heads'?); fields of 'model': latent_dim, rope_dim, q_heads, q_len, causal"},
    {"wrong_type.yaml", ":5:12: model.q_heads: 'sixteen' is not an integer; allowed: 1..128"},
};
enum { CORPUS = sizeof corpus / sizeof corpus[0] };

START_TEST(malformed_files_give_a_clean_error)
{
    char path[512], expected[1024];
    snprintf(path, sizeof path, "%s/tests/specs_bad/%s", SNAPMLA_SOURCE_DIR, corpus[_i].file);
    snprintf(expected, sizeof expected, "%s%s", path, corpus[_i].message);
    snapmla_spec *spec = NULL;
    snapmla_error err;
    ck_assert_int_eq(snapmla_spec_load(path, &spec, &err), SNAPMLA_ERR_SPEC);
    ck_assert_ptr_null(spec);
    ck_assert_str_eq(err.message, expected);
}
END_TEST

START_TEST(corpus_is_covered)
{
    glob_t found;
    ck_assert_int_eq(glob(SNAPMLA_SOURCE_DIR "/tests/specs_bad/*", 0, NULL, &found), 0);
    ck_assert_uint_eq(found.gl_pathc, CORPUS);
    globfree(&found);
}
END_TEST

START_TEST(missing_file_and_null_arguments)
{
    snapmla_spec *spec = NULL;
    snapmla_error err;
    ck_assert_int_eq(snapmla_spec_load("/nonexistent/x.yaml", &spec, &err), SNAPMLA_ERR_IO);
    ck_assert_str_eq(err.message, "cannot open '/nonexistent/x.yaml': No such file or directory");
    ck_assert_int_eq(snapmla_spec_load(NULL, &spec, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_str_eq(err.message, "snapmla_spec_load: path and out must not be NULL");
    ck_assert_int_eq(snapmla_spec_parse(NULL, 0, "t", &spec, &err), SNAPMLA_ERR_INVALID_ARG);
    ck_assert_int_eq(snapmla_spec_load("/nonexistent/x.yaml", &spec, NULL), SNAPMLA_ERR_IO);
}
END_TEST

START_TEST(defaults_fill_a_minimal_spec)
{
    snapmla_spec *spec = parse_ok("kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 128}\n");
    ck_assert_uint_eq(spec->count, 1);
    ck_assert_uint_eq(spec->rejected_count, 0);
    const snapmla_variant *v = &spec->variants[0];
    ck_assert_int_eq(v->kernel, SNAPMLA_KERNEL_MLA_DECODE);
    ck_assert_int_eq(v->q_len, 1);
    ck_assert_int_eq(v->causal, 1);
    ck_assert_int_eq(v->cache_format, SNAPMLA_FORMAT_BF16);
    ck_assert_int_eq(v->page_size, 64);
    ck_assert_int_eq(v->rope_layout, SNAPMLA_ROPE_INTERLEAVED);
    ck_assert_int_eq(v->kv_tile, 64);
    ck_assert_int_eq(v->q_tile, 16);
    ck_assert_int_eq(v->stages, 2);
    ck_assert_int_eq(v->warps, 8);
    ck_assert_int_eq(v->threads, 256);
    ck_assert_int_eq(v->split_policy, SNAPMLA_SPLIT_AUTO);
    ck_assert_int_eq(v->max_splits, 64);
    ck_assert_int_eq(v->split_min_tokens, 256);
    ck_assert_int_eq(v->arch, SNAPMLA_ARCH_SM90A);
    ck_assert_int_eq(v->compute, SNAPMLA_COMPUTE_BF16);
    ck_assert_int_eq(v->smem_bytes, 16 * 576 * 2 + 2 * 64 * 584 * 2 + 16 * 64 * 4 + 16 * 16);
    ck_assert_str_eq(v->name, "mla_decode.l512r64.h128q1c.bf16p64i.kv64q16s2w8.auto64m256.sm_90a.bf16");
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(format_sets_its_layout_and_kernels_their_fields)
{
    snapmla_spec *spec = parse_ok("name: x\nkernel: kv_append\nmodel: {latent_dim: 512, rope_dim: 64}\n"
                                  "cache: {format: fp8_per_token}\n");
    ck_assert_int_eq(spec->variants[0].rope_layout, SNAPMLA_ROPE_PLANAR);
    ck_assert_int_eq(spec->variants[0].q_heads, 0);
    ck_assert_str_eq(spec->variants[0].name, "x.kv_append.l512r64.fp8tokp64p.w8.sm_90a");
    snapmla_spec_free(spec);
    spec = parse_ok("kernel: mla_combine\nmodel: {latent_dim: 256, q_heads: 40, q_len: 2}\n");
    ck_assert_str_eq(spec->variants[0].name, "mla_combine.l256.h40q2.w8.s64.sm_90a");
    ck_assert_int_eq(spec->variants[0].smem_bytes, 0);
    snapmla_spec_free(spec);
    spec = parse_ok("kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 8}\n"
                    "tile: {engine: mma_sync, q_rows: 64, kv_tokens: 32}\n");
    ck_assert_int_eq(spec->variants[0].warps, 8);   /* 2 warps per 16 rows */
    ck_assert_int_eq(spec->variants[0].smem_bytes, (64 + 2 * 32) * 584 * 2 + 2 * 64 * 32 * 4);
    ck_assert_str_eq(spec->variants[0].name,
                     "mla_decode.l512r64.h8q1c.bf16p64i.kv32q64s2w8.auto64m256.sm_90a.bf16.mma");
    snapmla_spec_free(spec);
    spec = parse_ok("kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 8}\n"
                    "split: {policy: none}\n");
    ck_assert_int_eq(spec->variants[0].max_splits, 1);
    snapmla_spec_free(spec);
}
END_TEST

START_TEST(sweeps_expand_in_order_with_stable_names)
{
    const char *yaml = "kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: [16, 32]}\n"
                       "tile:\n  kv_tokens: [32, 64]\n  warps: [4, 8]\n";
    snapmla_spec *spec = parse_ok(yaml), *again = parse_ok(yaml);
    ck_assert_uint_eq(spec->count, 8);
    /* schema order, last field fastest: heads, then kv_tokens, then warps */
    ck_assert_int_eq(spec->variants[0].q_heads, 16);
    ck_assert_int_eq(spec->variants[0].kv_tile, 32);
    ck_assert_int_eq(spec->variants[0].warps, 4);
    ck_assert_int_eq(spec->variants[1].warps, 8);
    ck_assert_int_eq(spec->variants[2].kv_tile, 64);
    ck_assert_int_eq(spec->variants[4].q_heads, 32);
    for (size_t i = 0; i < 8; ++i) {
        ck_assert_str_eq(spec->variants[i].name, again->variants[i].name);
        for (size_t j = 0; j < i; ++j)
            ck_assert_str_ne(spec->variants[i].name, spec->variants[j].name);
    }
    snapmla_spec_free(spec);
    snapmla_spec_free(again);
}
END_TEST

START_TEST(impossible_sweep_points_are_rejected_with_the_reason)
{
    snapmla_spec *spec = parse_ok("kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
                                  "tile: {q_rows: [16, 64], warps: 4}\n");
    ck_assert_uint_eq(spec->count, 1);
    ck_assert_uint_eq(spec->rejected_count, 1);
    ck_assert_str_eq(spec->rejected[0].name,
                     "mla_decode.l512r64.h16q1c.bf16p64i.kv64q64s2w4.auto64m256.sm_90a.bf16");
    ck_assert_str_eq(spec->rejected[0].reason,
                     "t.yaml:3:16: needs 240640 bytes of shared memory per CTA, over the 232448 that "
                     "sm_90a allows: lower tile.kv_tokens, tile.stages or tile.q_rows");
    snapmla_spec_free(spec);
    /* accumulators over the limit, while shared memory fits */
    const char *yaml = "kernel: mla_decode\nmodel: {latent_dim: 512, rope_dim: 64, q_heads: 16}\n"
                       "tile: {q_rows: 32, kv_tokens: 16, warps: 4, stages: 1}\n";
    snapmla_error err;
    ck_assert_int_eq(snapmla_spec_parse(yaml, strlen(yaml), "t.yaml", &spec, &err), SNAPMLA_ERR_SPEC);
    ck_assert_str_eq(err.message, "t.yaml:3:42: needs 128 fp32 accumulators per thread, over 64: "
                                  "lower tile.q_rows or raise tile.warps");
}
END_TEST

START_TEST(too_large_a_sweep_is_refused)
{
    const char *yaml = "kernel: mla_decode\nmodel:\n  latent_dim: [32, 64, 96, 128, 160, 192, 224, 256, 288]\n"
                       "  rope_dim: [16, 32, 48, 64, 80, 96, 112, 128]\n"
                       "  q_heads: [1, 2, 3, 4, 5, 6, 7, 8]\n  q_len: [1, 2, 3, 4]\n  causal: [true, false]\n";
    snapmla_spec *spec = NULL;
    snapmla_error err;
    ck_assert_int_eq(snapmla_spec_parse(yaml, strlen(yaml), "t.yaml", &spec, &err), SNAPMLA_ERR_SPEC);
    ck_assert_str_eq(err.message, "t.yaml: the sweep has over 4096 variants; split it into several specs");
}
END_TEST

START_TEST(every_shipped_spec_loads)
{
    glob_t found;
    ck_assert_int_eq(glob(SNAPMLA_SOURCE_DIR "/specs/*.yaml", 0, NULL, &found), 0);
    ck_assert_uint_ge(found.gl_pathc, 8);
    for (size_t i = 0; i < found.gl_pathc; ++i) {
        snapmla_spec *spec;
        snapmla_error err;
        ck_assert_msg(snapmla_spec_load(found.gl_pathv[i], &spec, &err) == SNAPMLA_OK, "%s",
                      err.message);
        ck_assert_uint_ge(spec->count, 1);
        ck_assert_uint_eq(spec->rejected_count, 0);
        snapmla_spec_free(spec);
    }
    globfree(&found);
}
END_TEST

/* Mutations of every shipped spec either load (and emit) or are refused
 * with a message that names the file (tests/input_checks.h); under
 * ASan/UBSan no path may touch memory it does not own or leak. */
START_TEST(mutated_specs_load_or_fail_cleanly)
{
    enum { PER_SPEC = 300, CAP = 16384 };
    glob_t found;
    ck_assert_int_eq(glob(SNAPMLA_SOURCE_DIR "/specs/*.yaml", 0, NULL, &found), 0);
    ck_assert_int_eq(glob(SNAPMLA_SOURCE_DIR "/bench/*.yaml", GLOB_APPEND, NULL, &found), 0);
    static char text[CAP], mutated[CAP];
    size_t outcomes[2] = {0, 0};
    for (size_t f = 0; f < found.gl_pathc; ++f) {
        FILE *file = fopen(found.gl_pathv[f], "rb");
        ck_assert_ptr_nonnull(file);
        size_t len = fread(text, 1, CAP - 1, file);
        fclose(file);
        ck_assert_uint_lt(len, CAP - 1);
        for (uint64_t seed = 0; seed < PER_SPEC; ++seed) {
            char why[SNAPMLA_ERROR_MAX + 128];
            size_t n = mutate_text(text, len, seed * 7919 + f, mutated, CAP);
            int result = check_spec_text(mutated, n, why, sizeof why);
            ck_assert_msg(result != INPUT_MISBEHAVED, "%s, mutation seed %llu: %s\n%.1500s",
                          found.gl_pathv[f], (unsigned long long)(seed * 7919 + f), why, mutated);
            ++outcomes[result];
        }
    }
    /* Both outcomes occur, or the mutations test nothing. */
    ck_assert_uint_gt(outcomes[INPUT_LOADED], found.gl_pathc);
    ck_assert_uint_gt(outcomes[INPUT_REFUSED], found.gl_pathc * PER_SPEC / 4);
    globfree(&found);
}
END_TEST

START_TEST(names_of_enums_and_page_sizes)
{
    ck_assert_str_eq(snapmla_status_name(SNAPMLA_ERR_SPEC), "bad spec");
    ck_assert_str_eq(snapmla_status_name((snapmla_status)99), "unknown status");
    ck_assert_str_eq(snapmla_kernel_kind_name(SNAPMLA_KERNEL_KV_APPEND), "kv_append");
    ck_assert_str_eq(snapmla_cache_format_name(SNAPMLA_FORMAT_FP8_PER_TILE128), "fp8_per_tile128");
    ck_assert_str_eq(snapmla_arch_name(SNAPMLA_ARCH_SM89), "sm_89");
    snapmla_variant v;
    memset(&v, 0, sizeof v);
    v.latent_dim = 512;
    v.rope_dim = 64;
    v.page_size = 64;
    ck_assert_uint_eq(snapmla_cache_page_bytes(&v), 64 * 1152);
    v.cache_format = SNAPMLA_FORMAT_FP8_PER_TOKEN;
    ck_assert_uint_eq(snapmla_cache_page_bytes(&v), 64 * 644);
    v.cache_format = SNAPMLA_FORMAT_FP8_PER_TILE128;
    ck_assert_uint_eq(snapmla_cache_page_bytes(&v), 64 * 656);
    v.page_size = 1;
    v.cache_format = SNAPMLA_FORMAT_FP8_PER_TOKEN;
    ck_assert_uint_eq(snapmla_cache_page_bytes(&v), 656);   /* 644 rounded up to 16 */
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("spec");
    TCase *tc = tcase_create("spec");
    tcase_add_loop_test(tc, bad_specs_give_one_exact_message, 0, BAD_CASES);
    tcase_add_loop_test(tc, malformed_files_give_a_clean_error, 0, CORPUS);
    tcase_add_test(tc, corpus_is_covered);
    tcase_add_test(tc, missing_file_and_null_arguments);
    tcase_add_test(tc, defaults_fill_a_minimal_spec);
    tcase_add_test(tc, format_sets_its_layout_and_kernels_their_fields);
    tcase_add_test(tc, sweeps_expand_in_order_with_stable_names);
    tcase_add_test(tc, impossible_sweep_points_are_rejected_with_the_reason);
    tcase_add_test(tc, too_large_a_sweep_is_refused);
    tcase_add_test(tc, every_shipped_spec_loads);
    tcase_add_test(tc, mutated_specs_load_or_fail_cleanly);
    tcase_add_test(tc, names_of_enums_and_page_sizes);
    suite_add_tcase(suite, tc);
    return run_suite(suite, CK_FORK);
}
