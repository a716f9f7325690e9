/* Host float8 e4m3 (OCP E4M3FN: bias 7, no infinities, max finite 448) conversions,
 * bit-exact with the device's cvt.rn.satfinite.e4m3x2.f32 and cvt to f16/f32. */
#ifndef SNAPMLA_REFERENCE_FP8_H
#define SNAPMLA_REFERENCE_FP8_H

#include <stdint.h>

#define SNAPMLA_E4M3_MAX 448.0f

/* Round to nearest even; |x| > 448 and +-Inf saturate to +-448; NaN -> 0x7f
 * with the sign kept. */
uint8_t snapmla_f32_to_e4m3(float x);
/* Exact: every e4m3 value is a float; 0x7f and 0xff decode to NaN. */
float snapmla_e4m3_to_f32(uint8_t code);

#endif
