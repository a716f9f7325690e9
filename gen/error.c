/* Error reporting shared by every stage of the pipeline. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

snapmla_status snapmla_fail(snapmla_error *err, snapmla_status status,
                            const char *format, ...)
{
    if (err) {
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
        err->status = status;
    }
    return status;
}

snapmla_status snapmla_ok(snapmla_error *err)
{
    if (err) {
        err->status = SNAPMLA_OK;
        err->message[0] = '\0';
    }
    return SNAPMLA_OK;
}
