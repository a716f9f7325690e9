/* Filling a snapmla_error: one place so every module words errors alike. */
#ifndef SNAPMLA_GEN_ERROR_H
#define SNAPMLA_GEN_ERROR_H
#include "snapmla.h"

/* Sets err (when not NULL) and returns status. */
snapmla_status snapmla_fail(snapmla_error *err, snapmla_status status,
                            const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* Clears err to SNAPMLA_OK with an empty message; returns SNAPMLA_OK. */
snapmla_status snapmla_ok(snapmla_error *err);

#endif
