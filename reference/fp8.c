/* e4m3 conversions for the host reference: the rule the append kernel and
 * the dequantizing decode must match bit for bit. */
#include "fp8.h"

#include <math.h>

static double round_half_even(double x)
{
    double r = nearbyint(x);   /* default rounding mode: to nearest, ties to even */
    return r;
}

uint8_t snapmla_f32_to_e4m3(float x)
{
    uint8_t sign = signbit(x) ? 0x80 : 0x00;
    if (isnan(x))
        return sign | 0x7f;
    double a = fabs((double)x);
    if (a >= 448.0)
        return sign | 0x7e;
    if (a < 0x1p-6) {
        /* subnormal: steps of 2^-9; a rounding up to 8 steps is the smallest
         * normal, whose code is 8 too */
        return sign | (uint8_t)round_half_even(a * 512.0);
    }
    int e;
    double m = frexp(a, &e);   /* a = m * 2^e, m in [0.5, 1) */
    e -= 1;                    /* a = (2m) * 2^e, 2m in [1, 2) */
    double q = round_half_even((2.0 * m - 1.0) * 8.0);
    if (q == 8.0) {
        q = 0.0;
        e += 1;
    }
    int code = ((e + 7) << 3) | (int)q;
    if (code > 0x7e)
        code = 0x7e;
    return sign | (uint8_t)code;
}

float snapmla_e4m3_to_f32(uint8_t code)
{
    int sign = code & 0x80;
    int exponent = (code >> 3) & 0xf;
    int mantissa = code & 0x7;
    if (exponent == 0xf && mantissa == 0x7)
        return sign ? -NAN : NAN;
    double value = exponent == 0 ? ldexp(mantissa, -9) : ldexp(8 + mantissa, exponent - 10);
    return (float)(sign ? -value : value);
}
