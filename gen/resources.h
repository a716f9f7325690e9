/* What a variant costs on the chip: shared memory and registers, and what each
 * arch allows. Validation rejects variants over the limits so that a spec that
 * cannot run fails at generation time, never at launch. */
#ifndef SNAPMLA_GEN_RESOURCES_H
#define SNAPMLA_GEN_RESOURCES_H

#include "snapmla.h"

/* Most dynamic shared memory one CTA may use on arch, in bytes. */
int snapmla_arch_smem_limit(snapmla_arch arch);

/* Dynamic shared memory the variant's kernel asks for (0 for kernels that
 * use none). Reads the model, tile and cache fields; ignores derived ones. */
int snapmla_variant_smem_bytes(const snapmla_variant *variant);
/* 1 when the decode kernel brings KV tiles in by TMA (tile.engine wgmma,
 * pages of at least 16 tokens that tile evenly with the KV tile): the
 * template's KV_TMA, and the launch then encodes the cache's tensor maps. */
int snapmla_variant_kv_tma(const snapmla_variant *variant);
/* 1 when the decode kernel is the FP8 path in role warpgroups (tile.engine
 * wgmma, target.compute fp8, tile.warps 16: templates/decode_wgmma_fp8_roles.cu),
 * which the generator emits and the shared-memory model counts. */
int snapmla_variant_role_warpgroups(const snapmla_variant *variant);
/* 1 when the decode kernel is the BF16 path's pair schedule (tile.engine
 * wgmma, target.compute bf16, tile.stages 2, and tile.schedule pair, or
 * auto with 256 or more query rows, q_heads x q_len:
 * templates/decode_wgmma_bf16_pair.cu); otherwise the BF16 path is the
 * seesaw (templates/decode_wgmma_bf16.cu). */
int snapmla_variant_bf16_pair(const snapmla_variant *variant);
/* FP32 output accumulators each thread of a decode CTA holds in registers. */
int snapmla_decode_acc_per_thread(const snapmla_variant *variant);
/* Most accumulators per thread the decode template allows. */
#define SNAPMLA_DECODE_ACC_MAX 64

#endif
