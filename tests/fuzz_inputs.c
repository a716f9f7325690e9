/* libFuzzer entry for `make fuzz`: feeds arbitrary bytes to the spec loader
 * (default) or, built with -DFUZZ_TUNING_DB, to the tuning-database reader,
 * and aborts when an input misbehaves by tests/input_checks.h's rules.
 * Built with clang's -fsanitize=fuzzer,address,undefined. */
#include <stddef.h>
#include <stdint.h>

#include "input_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[SNAPMLA_ERROR_MAX + 128];
#ifdef FUZZ_TUNING_DB
    int result = check_tuning_db_text((const char *)data, size, why, sizeof why);
#else
    int result = check_spec_text((const char *)data, size, why, sizeof why);
#endif
    if (result == INPUT_MISBEHAVED) {
        fprintf(stderr, "misbehaved: %s\n", why);
        abort();
    }
    return 0;
}
