/* BF16 conversions of the host reference. */
#include "bf16.h"

#include <string.h>

uint16_t snapmla_f32_to_bf16(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x0040u);   /* quiet NaN, sign kept */
    bits += 0x7fffu + ((bits >> 16) & 1u);           /* ties to even */
    return (uint16_t)(bits >> 16);
}

float snapmla_bf16_to_f32(uint16_t x)
{
    uint32_t bits = (uint32_t)x << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
