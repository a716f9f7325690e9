/* Fidelity of the FP8 cache recipes: attention over each recipe's
 * dequantized cache, in float64, against attention over the BF16 cache.
 * The per-token and per-tile128 recipes go through the same host quantizer
 * that the append kernel is checked against (cache_layout.c). */
#include "fidelity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "cache_layout.h"
#include "error.h"
#include "fp8.h"

const char *snapmla_recipe_name(snapmla_recipe recipe)
{
    static const char *const names[] = {
        [SNAPMLA_RECIPE_NAIVE_FP8] = "naive FP8 (576 wide incl. RoPE, per-tensor)",
        [SNAPMLA_RECIPE_PER_TENSOR] = "FP8 latent per-tensor, RoPE BF16",
        [SNAPMLA_RECIPE_PER_TOKEN] = "FP8 latent per-token, RoPE BF16 (SnapMLA)",
        [SNAPMLA_RECIPE_PER_TILE128] = "FP8 latent per-tile128, RoPE BF16 (FlashMLA)",
        [SNAPMLA_RECIPE_PER_TILE128_EXACT] = "per-tile128 with exact (not pow2) scales",
        [SNAPMLA_RECIPE_PER_TOKEN_SMOOTH] = "per-token + static per-channel equalization",
        [SNAPMLA_RECIPE_PER_TOKEN_ROPE_DIVIDED] = "per-token, RoPE BF16 divided by its scale",
        [SNAPMLA_RECIPE_PER_TILE128_AS_TOKEN] = "per-tile128 read per token (tile.warps 16)",
    };
    return recipe < SNAPMLA_RECIPE_COUNT ? names[recipe] : "?";
}

/* ---- synthetic data ------------------------------------------------------ */

typedef struct rng {
    uint64_t state;
} rng;

static uint64_t next_u64(rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(rng *r) { return ((double)(next_u64(r) >> 11) + 0.5) / 9007199254740992.0; }

static double normal(rng *r)
{
    return sqrt(-2.0 * log(uniform(r))) * cos(6.283185307179586 * uniform(r));
}

/* Student's t with 4 degrees of freedom: heavy tails like real activations. */
static double heavy(rng *r)
{
    double chi = 0;
    for (int i = 0; i < 4; ++i) {
        double n = normal(r);
        chi += n * n;
    }
    return normal(r) / sqrt(chi / 4.0);
}

static float to_bf16_value(double x) { return snapmla_bf16_to_f32(snapmla_f32_to_bf16((float)x)); }

/* The BF16 cache: latent of heavy-tailed values with a log-normal size per
 * token and a few outlier channels, RoPE of a larger range. */
static void make_cache(const snapmla_fidelity_config *c, rng *r, float *cache)
{
    int L = c->latent_dim, W = c->latent_dim + c->rope_dim;
    double *gain = malloc((size_t)L * sizeof *gain);
    for (int i = 0; i < L; ++i)
        gain[i] = 1.0;
    for (int k = 0; k < c->outlier_channels; ++k)
        gain[(k * 37 + 5) % L] = c->outlier_gain * (0.3 + 0.7 * uniform(r));
    for (int t = 0; t < c->context; ++t) {
        double token_gain = exp(0.5 * normal(r));
        float *row = cache + (size_t)t * W;
        for (int i = 0; i < L; ++i)
            row[i] = to_bf16_value(heavy(r) * gain[i] * token_gain);
        for (int i = L; i < W; ++i)
            row[i] = to_bf16_value(c->rope_gain * normal(r));
    }
    free(gain);
}

/* ---- recipes: each writes the dequantized cache -------------------------- */

static double amax_of(const float *cache, int tokens, int width, int from, int to)
{
    double m = 0;
    for (int t = 0; t < tokens; ++t)
        for (int i = from; i < to; ++i)
            m = fmax(m, fabs(cache[(size_t)t * width + i]));
    return m;
}

static float quantize_value(float x, float scale)
{
    return snapmla_e4m3_to_f32(snapmla_f32_to_e4m3(x / scale)) * scale;
}

/* Groups of 128 latent channels with exact amax / 448 scales: FlashMLA's
 * granularity without its power-of-two rounding, to tell the two apart. */
static void per_tile_exact(const snapmla_fidelity_config *c, const float *in, float *out)
{
    int L = c->latent_dim, W = L + c->rope_dim;
    memcpy(out, in, (size_t)c->context * W * sizeof *out);
    for (int t = 0; t < c->context; ++t)
        for (int g = 0; g + 128 <= L; g += 128) {
            const float *x = in + (size_t)t * W + g;
            float amax = 0;
            for (int i = 0; i < 128; ++i)
                amax = fmaxf(amax, fabsf(x[i]));
            float scale = snapmla_fp8_group_scale(amax, 0);
            for (int i = 0; i < 128; ++i)
                out[(size_t)t * W + g + i] = quantize_value(x[i], scale);
        }
}

static void per_tensor(const float *in, float *out, int tokens, int width, int upto)
{
    float scale = snapmla_fp8_group_scale((float)amax_of(in, tokens, width, 0, upto), 0);
    for (int t = 0; t < tokens; ++t)
        for (int i = 0; i < width; ++i) {
            size_t k = (size_t)t * width + i;
            out[k] = i < upto ? quantize_value(in[k], scale) : in[k];
        }
}

/* Through the cache formats' own quantizer, one token at a time; with
 * as_token, an fp8_per_tile128 token as the role warpgroups read it. */
static void through_format(const snapmla_fidelity_config *c, snapmla_cache_format format,
                           const float *in, float *out, const double *equalize, int as_token)
{
    int L = c->latent_dim, R = c->rope_dim, W = L + R;
    snapmla_layout layout = {format, L, R, 1, SNAPMLA_ROPE_PLANAR};
    unsigned char page[4096];
    uint16_t latent[1024], rope[256];
    double values[1280];
    for (int t = 0; t < c->context; ++t) {
        const float *row = in + (size_t)t * W;
        for (int i = 0; i < L; ++i)
            latent[i] = snapmla_f32_to_bf16(equalize ? (float)(row[i] / equalize[i]) : row[i]);
        for (int i = 0; i < R; ++i)
            rope[i] = snapmla_f32_to_bf16(row[L + i]);
        snapmla_layout_store(&layout, page, 0, latent, rope);
        if (as_token)
            snapmla_tile128_read_per_token(&layout, page, 0);
        snapmla_layout_load(&layout, page, 0, values);
        for (int i = 0; i < W; ++i)
            out[(size_t)t * W + i] = (float)(i < L && equalize ? values[i] * equalize[i] : values[i]);
    }
}

/* Static per-channel equalization (SmoothQuant-style, alpha 0.5): channel i
 * is divided by sqrt(amax_i) normalized to geometric mean 1, calibrated on
 * the first tokens; the division is undone after dequantization. */
static void smooth(const snapmla_fidelity_config *c, const float *in, float *out)
{
    int L = c->latent_dim, W = L + c->rope_dim;
    int calibration = c->context < 1024 ? c->context : 1024;
    double *e = malloc((size_t)L * sizeof *e), log_mean = 0;
    for (int i = 0; i < L; ++i) {
        e[i] = sqrt(fmax(amax_of(in, calibration, W, i, i + 1), 1e-6));
        log_mean += log(e[i]) / L;
    }
    for (int i = 0; i < L; ++i)
        e[i] /= exp(log_mean);
    through_format(c, SNAPMLA_FORMAT_FP8_PER_TOKEN, in, out, e, 0);
    free(e);
}

/* Per-token, with the RoPE part stored as BF16 of RoPE / the token's latent
 * scale (SnapMLA's engine, so that QK takes the scale once, after both
 * parts): one more BF16 rounding, of the quotient; the product multiplies
 * the scale back in fp32. */
static void rope_divided(const snapmla_fidelity_config *c, const float *in, float *out)
{
    int L = c->latent_dim, W = L + c->rope_dim;
    through_format(c, SNAPMLA_FORMAT_FP8_PER_TOKEN, in, out, NULL, 0);
    for (int t = 0; t < c->context; ++t) {
        const float *row = in + (size_t)t * W;
        float scale = snapmla_fp8_group_scale((float)amax_of(row, 1, W, 0, L), 0);
        for (int i = L; i < W; ++i)
            out[(size_t)t * W + i] = to_bf16_value(row[i] / scale) * scale;
    }
}

/* ---- attention ----------------------------------------------------------- */

enum { SCORE_SPREAD = 3 };

static void spread_scores(const snapmla_fidelity_config *c, const float *cache, double *q,
                          double scale)
{
    int W = c->latent_dim + c->rope_dim;
    double sum = 0, sum2 = 0;
    int n = c->context < 4096 ? c->context : 4096;
    for (int t = 0; t < n; ++t) {
        double dot = 0;
        for (int i = 0; i < W; ++i)
            dot += q[i] * cache[(size_t)t * W + i];
        sum += dot * scale;
        sum2 += dot * scale * dot * scale;
    }
    double var = sum2 / n - (sum / n) * (sum / n);
    double gain = var > 0 ? SCORE_SPREAD / sqrt(var) : 1.0;
    for (int i = 0; i < W; ++i)
        q[i] = to_bf16_value(q[i] * gain);
}

static void attention(const snapmla_fidelity_config *c, const float *cache, const double *q,
                      double scale, double *out, double *scores)
{
    int L = c->latent_dim, W = L + c->rope_dim;
    for (int h = 0; h < c->q_heads; ++h) {
        const double *qh = q + (size_t)h * W;
        double m = -INFINITY;
        for (int t = 0; t < c->context; ++t) {
            const float *k = cache + (size_t)t * W;
            double dot = 0;
            for (int i = 0; i < W; ++i)
                dot += qh[i] * k[i];
            scores[t] = dot * scale;
            m = fmax(m, scores[t]);
        }
        double sum = 0;
        for (int t = 0; t < c->context; ++t)
            sum += (scores[t] = exp(scores[t] - m));
        double *o = out + (size_t)h * L;
        memset(o, 0, (size_t)L * sizeof *o);
        for (int t = 0; t < c->context; ++t) {
            const float *v = cache + (size_t)t * W;
            double p = scores[t] / sum;
            for (int i = 0; i < L; ++i)
                o[i] += p * v[i];
        }
    }
}

static void accumulate(const snapmla_fidelity_config *c, const double *out, const double *ref,
                       double *err2, double *ref2, snapmla_fidelity_row *row)
{
    int L = c->latent_dim;
    for (int h = 0; h < c->q_heads; ++h) {
        double dot = 0, nn = 0, rr = 0;
        for (int i = 0; i < L; ++i) {
            double a = out[(size_t)h * L + i], b = ref[(size_t)h * L + i];
            *err2 += (a - b) * (a - b);
            *ref2 += b * b;
            row->max_abs = fmax(row->max_abs, fabs(a - b));
            dot += a * b;
            nn += a * a;
            rr += b * b;
        }
        row->cosine = fmin(row->cosine, dot / sqrt(nn * rr));
    }
}

snapmla_status snapmla_fidelity_run(const snapmla_fidelity_config *c,
                                    snapmla_fidelity_row rows[SNAPMLA_RECIPE_COUNT],
                                    snapmla_error *err)
{
    int L = c->latent_dim, W = c->latent_dim + c->rope_dim;
    if (L > 1024 || c->rope_dim > 256 || c->context < 1 || c->q_heads < 1 || c->queries < 1)
        return snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG, "fidelity: unsupported sizes");
    size_t cells = (size_t)c->context * W;
    size_t q_cells = (size_t)c->queries * c->q_heads * W, out_cells = (size_t)c->q_heads * L;
    float *cache = malloc(cells * sizeof *cache), *quantized = malloc(cells * sizeof *quantized);
    double *q = malloc(q_cells * sizeof *q);
    double *ref = malloc((size_t)c->queries * out_cells * sizeof *ref);
    double *out = malloc(out_cells * sizeof *out);
    double *scores = malloc((size_t)c->context * sizeof *scores);
    if (!cache || !quantized || !q || !ref || !out || !scores) {
        free(cache), free(quantized), free(q), free(ref), free(out), free(scores);
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "fidelity: out of memory");
    }
    rng r = {c->seed};
    make_cache(c, &r, cache);
    double scale = 1.0 / sqrt((double)W);
    /* One set of queries per request; every recipe sees the same ones. Each
     * head's query is scaled so its scores spread with a standard deviation
     * of SCORE_SPREAD, as trained attention does: neither flat nor one-hot
     * (raw random queries against outlier channels give logits in the
     * hundreds, and then the study measures argmax flips, not precision). */
    for (size_t i = 0; i < q_cells; ++i)
        q[i] = normal(&r);
    for (size_t h = 0; h < (size_t)c->queries * c->q_heads; ++h)
        spread_scores(c, cache, q + h * W, scale);
    for (int set = 0; set < c->queries; ++set)
        attention(c, cache, q + (size_t)set * c->q_heads * W, scale, ref + set * out_cells, scores);
    double err2[SNAPMLA_RECIPE_COUNT] = {0}, ref2[SNAPMLA_RECIPE_COUNT] = {0};
    for (int k = 0; k < SNAPMLA_RECIPE_COUNT; ++k) {
        rows[k].recipe = (snapmla_recipe)k;
        rows[k].max_abs = 0;
        rows[k].cosine = 1;
        switch ((snapmla_recipe)k) {
        case SNAPMLA_RECIPE_NAIVE_FP8: per_tensor(cache, quantized, c->context, W, W); break;
        case SNAPMLA_RECIPE_PER_TENSOR: per_tensor(cache, quantized, c->context, W, L); break;
        case SNAPMLA_RECIPE_PER_TOKEN:
            through_format(c, SNAPMLA_FORMAT_FP8_PER_TOKEN, cache, quantized, NULL, 0);
            break;
        case SNAPMLA_RECIPE_PER_TILE128:
            through_format(c, SNAPMLA_FORMAT_FP8_PER_TILE128, cache, quantized, NULL, 0);
            break;
        case SNAPMLA_RECIPE_PER_TILE128_AS_TOKEN:
            through_format(c, SNAPMLA_FORMAT_FP8_PER_TILE128, cache, quantized, NULL, 1);
            break;
        case SNAPMLA_RECIPE_PER_TILE128_EXACT: per_tile_exact(c, cache, quantized); break;
        case SNAPMLA_RECIPE_PER_TOKEN_SMOOTH: smooth(c, cache, quantized); break;
        case SNAPMLA_RECIPE_PER_TOKEN_ROPE_DIVIDED: rope_divided(c, cache, quantized); break;
        case SNAPMLA_RECIPE_COUNT: break;
        }
        for (int set = 0; set < c->queries; ++set) {
            attention(c, quantized, q + (size_t)set * c->q_heads * W, scale, out, scores);
            accumulate(c, out, ref + set * out_cells, &err2[k], &ref2[k], &rows[k]);
        }
    }
    for (int k = 0; k < SNAPMLA_RECIPE_COUNT; ++k)
        rows[k].rel_l2 = sqrt(err2[k] / ref2[k]);
    free(cache), free(quantized), free(q), free(ref), free(out), free(scores);
    return snapmla_ok(err);
}
