/* BF16 <-> float on the host, bit-exact with the device's cvt.rn.bf16.f32. */
#ifndef SNAPMLA_REFERENCE_BF16_H
#define SNAPMLA_REFERENCE_BF16_H
#include <stdint.h>

/* Round to nearest even; Inf stays Inf, overflow goes to Inf, NaN stays a
 * (quiet) NaN with its sign. */
uint16_t snapmla_f32_to_bf16(float x);
/* Exact. */
float snapmla_bf16_to_f32(uint16_t x);

#endif
