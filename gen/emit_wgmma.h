/* Code generation, PTX part: wgmma wrappers of one variant (gen/emit_wgmma.c). */
#ifndef SNAPMLA_GEN_EMIT_WGMMA_H
#define SNAPMLA_GEN_EMIT_WGMMA_H
#include <stdio.h>

#include "snapmla.h"
#include "strbuf.h"

void snapmla_emit_wgmma_wrappers(snapmla_strbuf *out, const snapmla_variant *v);
/* The whole source of the tensor-core peak probe (templates/mma_peak.cu). */
void snapmla_emit_mma_peak(snapmla_strbuf *out);

#endif
