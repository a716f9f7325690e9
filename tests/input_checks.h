/* What any input text must do to the spec loader and the tuning-database
 * reader: load (and then emit, or format and load back to the same text) or
 * fail with SNAPMLA_ERR_SPEC and a message that names the input. Shared by
 * the mutation tests (test_spec_load, test_tuning) and the fuzzers
 * (tests/fuzz_inputs.c, `make fuzz`). */
#ifndef SNAPMLA_TESTS_INPUT_CHECKS_H
#define SNAPMLA_TESTS_INPUT_CHECKS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmla.h"

enum { INPUT_LOADED = 1, INPUT_REFUSED = 0, INPUT_MISBEHAVED = -1 };

static inline int input_refused(snapmla_status s, const snapmla_error *err, const char *name,
                                char *why, size_t size)
{
    if (s == SNAPMLA_ERR_SPEC && strncmp(err->message, name, strlen(name)) == 0)
        return INPUT_REFUSED;
    snprintf(why, size, "status %d, message '%s' (want a spec error naming %s)", (int)s,
             err->message, name);
    return INPUT_MISBEHAVED;
}

/* A spec text: loads and its first two variants emit, or is refused. */
static inline int check_spec_text(const char *text, size_t len, char *why, size_t size)
{
    snapmla_spec *spec = NULL;
    snapmla_error err = {.status = SNAPMLA_OK, .message = ""};
    snapmla_status s = snapmla_spec_parse(text, len, "m.yaml", &spec, &err);
    if (s != SNAPMLA_OK)
        return spec ? (snprintf(why, size, "a refused spec came back"), INPUT_MISBEHAVED)
                    : input_refused(s, &err, "m.yaml", why, size);
    int result = spec->count >= 1 ? INPUT_LOADED : INPUT_MISBEHAVED;
    if (result != INPUT_LOADED)
        snprintf(why, size, "loaded with no variant");
    for (size_t v = 0; v < spec->count && v < 2 && result == INPUT_LOADED; ++v) {
        char *source = NULL;
        size_t source_len = 0;
        if (snapmla_emit(&spec->variants[v], &source, &source_len, &err) != SNAPMLA_OK ||
            source_len == 0) {
            snprintf(why, size, "%s loads but does not emit: %s", spec->variants[v].name,
                     err.message);
            result = INPUT_MISBEHAVED;
        }
        free(source);
    }
    snapmla_spec_free(spec);
    return result;
}

/* A tuning database text: loads, formats, loads back to the same text; or
 * is refused. */
static inline int check_tuning_db_text(const char *text, size_t len, char *why, size_t size)
{
    snapmla_tuning_db *db = NULL, *back = NULL;
    snapmla_error err = {.status = SNAPMLA_OK, .message = ""};
    snapmla_status s = snapmla_tuning_db_parse(text, len, "m.yaml", &db, &err);
    if (s != SNAPMLA_OK)
        return db ? (snprintf(why, size, "a refused database came back"), INPUT_MISBEHAVED)
                  : input_refused(s, &err, "m.yaml", why, size);
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    int result = INPUT_MISBEHAVED;
    if (snapmla_tuning_db_format(db, &a, &la, &err) != SNAPMLA_OK)
        snprintf(why, size, "loads but does not format: %s", err.message);
    else if (snapmla_tuning_db_parse(a, la, "again.yaml", &back, &err) != SNAPMLA_OK)
        snprintf(why, size, "its formatted text does not load: %s", err.message);
    else if (snapmla_tuning_db_format(back, &b, &lb, &err) != SNAPMLA_OK)
        snprintf(why, size, "loads back but does not format: %s", err.message);
    else if (la != lb || memcmp(a, b, la) != 0)
        snprintf(why, size, "format, load, format changed the text");
    else
        result = INPUT_LOADED;
    free(a);
    free(b);
    snapmla_tuning_db_free(db);
    snapmla_tuning_db_free(back);
    return result;
}

#endif
