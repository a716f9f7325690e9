/* Seeded mutations of a valid input file, for tests that feed a parser
 * what a hand edit, a bad merge or a truncated copy makes of a good file:
 * bytes and spans changed, lines repeated or dropped, numbers pushed past
 * every range, YAML constructs a spec does not use. Deterministic per seed,
 * so a failure names the seed that reproduces it. */
#ifndef SNAPMLA_TESTS_MUTATE_H
#define SNAPMLA_TESTS_MUTATE_H

#include <stdint.h>
#include <string.h>

static inline uint64_t mutate_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);   /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline size_t mutate_pick(uint64_t *state, size_t n)
{
    return n ? (size_t)(mutate_next(state) % n) : 0;
}

/* Replaces out[at, at + drop) with text; keeps *len < cap. */
static inline void mutate_splice(char *out, size_t *len, size_t cap, size_t at, size_t drop,
                                 const char *text, size_t text_len)
{
    if (at > *len)
        at = *len;
    if (drop > *len - at)
        drop = *len - at;
    if (*len - drop + text_len >= cap)
        return;
    memmove(out + at + text_len, out + at + drop, *len - at - drop);
    memcpy(out + at, text, text_len);
    *len = *len - drop + text_len;
}

/* Start of the line holding byte at, and its length with the newline. */
static inline void mutate_line_at(const char *out, size_t len, size_t at, size_t *start,
                                  size_t *line_len)
{
    size_t s = at, e = at;
    while (s > 0 && out[s - 1] != '\n')
        --s;
    while (e < len && out[e] != '\n')
        ++e;
    *start = s;
    *line_len = e - s + (e < len);
}

/* Writes into out (capacity cap) the input with 1 to 4 mutations; returns
 * the length. out is NUL-terminated. */
static inline size_t mutate_text(const char *in, size_t in_len, uint64_t seed, char *out,
                                 size_t cap)
{
    static const char *const tokens[] = {
        "-", "0", "9", ":", " ", "\n", "\t", "[", "]", "{", "}", ",", "'", "\"", "#", "~",
        "-1", "0x10", "1e9", "99999999999999999999", "2147483648", "-2147483649", "1.5",
        "null", "true", "yes", "&a ", "*a", "<<: *a\n", "!!str ", "? ", "|\n  x\n", "---\n",
        "...\n", "\xff\xfe", "\xc3\x28", "nan", ".inf", "[1, [2, [3]]]", "{a: {b: {c: 1}}}"};
    enum { TOKENS = sizeof tokens / sizeof tokens[0] };
    uint64_t state = seed;
    size_t len = in_len < cap ? in_len : cap - 1;
    memcpy(out, in, len);
    int count = 1 + (int)mutate_pick(&state, 4);
    for (int m = 0; m < count; ++m) {
        size_t at = mutate_pick(&state, len + 1), start, line_len;
        const char *t = tokens[mutate_pick(&state, TOKENS)];
        switch (mutate_pick(&state, 7)) {
        case 0:   /* one byte replaced by a token */
            mutate_splice(out, &len, cap, at, 1, t, strlen(t));
            break;
        case 1:   /* a token inserted */
            mutate_splice(out, &len, cap, at, 0, t, strlen(t));
            break;
        case 2:   /* a span dropped */
            mutate_splice(out, &len, cap, at, 1 + mutate_pick(&state, 24), "", 0);
            break;
        case 3: { /* a line repeated (a field given twice) */
            char line[256];
            mutate_line_at(out, len, at, &start, &line_len);
            if (line_len < sizeof line) {
                memcpy(line, out + start, line_len);
                mutate_splice(out, &len, cap, start, 0, line, line_len);
            }
            break;
        }
        case 4:   /* a line dropped */
            mutate_line_at(out, len, at, &start, &line_len);
            mutate_splice(out, &len, cap, start, line_len, "", 0);
            break;
        case 5: { /* a number's digits replaced by a token */
            size_t s = at;
            while (s < len && (out[s] < '0' || out[s] > '9'))
                ++s;
            size_t e = s;
            while (e < len && out[e] >= '0' && out[e] <= '9')
                ++e;
            mutate_splice(out, &len, cap, s, e - s, t, strlen(t));
            break;
        }
        default:  /* cut short (a truncated copy) */
            len = at;
            break;
        }
    }
    out[len] = '\0';
    return len;
}

#endif
