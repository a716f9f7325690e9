/* JIT stage of the pipeline: NVRTC turns one generated source into a CUBIN
 * for an exact arch (sm_90a keeps wgmma; no PTX fallback is embedded). */
#include "jit.h"

#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "resources.h"

int snapmla_jit_options(snapmla_arch arch, const char *options[SNAPMLA_JIT_MAX_OPTIONS])
{
    static const char *const arch_options[] = {
        [SNAPMLA_ARCH_SM80] = "--gpu-architecture=sm_80",
        [SNAPMLA_ARCH_SM89] = "--gpu-architecture=sm_89",
        [SNAPMLA_ARCH_SM90A] = "--gpu-architecture=sm_90a",
    };
    int n = 0;
    options[n++] = arch_options[arch];
    options[n++] = "--std=c++17";
    options[n++] = "--fmad=true";
    return n;
}

void snapmla_jit_version(char out[32])
{
    int major = 0, minor = 0;
    if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS)
        major = minor = -1;
    snprintf(out, 32, "nvrtc-%d.%d", major, minor);
}

static snapmla_status nvrtc_fail(snapmla_error *err, nvrtcResult result,
                                 const char *what, const char *name)
{
    return snapmla_fail(err, SNAPMLA_ERR_COMPILE, "%s failed for '%s': %s", what,
                        name, nvrtcGetErrorString(result));
}

/* The program's whole log (NUL-terminated, caller frees), or NULL. */
static char *program_log(nvrtcProgram program)
{
    size_t size = 0;
    if (nvrtcGetProgramLogSize(program, &size) != NVRTC_SUCCESS || size == 0)
        return NULL;
    char *log = malloc(size);
    if (log && nvrtcGetProgramLog(program, log) != NVRTC_SUCCESS) {
        free(log);
        return NULL;
    }
    return log;
}

/* Message: the first lines of NVRTC's log, which name the failing line. */
static snapmla_status compile_failed(nvrtcProgram program, const char *name,
                                     snapmla_error *err)
{
    char *log = program_log(program);
    snapmla_fail(err, SNAPMLA_ERR_COMPILE, "NVRTC could not compile '%s':\n%s", name,
                 log ? log : "(no log)");
    free(log);
    return SNAPMLA_ERR_COMPILE;
}

/* Whether this NVRTC keeps its own cache of compiled programs (12.9 on),
 * and so takes --no-cache. */
static int nvrtc_has_cache(void)
{
    int major = 0, minor = 0;
    return nvrtcVersion(&major, &minor) == NVRTC_SUCCESS && (major > 12 || (major == 12 && minor >= 9));
}

/* How compile() treats ptxas's report: not asked for; asked for and a
 * failure when unreadable (inspection); asked for and left empty when
 * unreadable (the warning of a build must not fail the build). */
typedef enum report_mode { REPORT_NONE, REPORT_REQUIRED, REPORT_BEST_EFFORT } report_mode;

/* Compiles source; with a report, ptxas's verbose output is asked for and
 * read into it. */
static snapmla_status compile(const char *source, const char *name, snapmla_arch arch, unsigned char **cubin,
                              size_t *size, report_mode mode, snapmla_ptxas_report *report,
                              snapmla_error *err)
{
    nvrtcProgram program;
    nvrtcResult r = nvrtcCreateProgram(&program, source, name, 0, NULL, NULL);
    if (r != NVRTC_SUCCESS)
        return nvrtc_fail(err, r, "nvrtcCreateProgram", name);

    const char *options[SNAPMLA_JIT_MAX_OPTIONS + 2];
    int count = snapmla_jit_options(arch, options);
    if (mode != REPORT_NONE) {   /* (the CUBIN is the same with or without them) */
        options[count++] = "--ptxas-options=-v";
        /* NVRTC's own disk cache (12.9+, used where a driver is installed)
         * answers a repeated compile without running ptxas: no report. */
        if (nvrtc_has_cache())
            options[count++] = "--no-cache";
    }
    snapmla_status status = SNAPMLA_OK;
    r = nvrtcCompileProgram(program, count, options);
    if (r == NVRTC_ERROR_COMPILATION) {
        status = compile_failed(program, name, err);
    } else if (r != NVRTC_SUCCESS) {
        status = nvrtc_fail(err, r, "nvrtcCompileProgram", name);
    } else {
        size_t bytes = 0;
        r = nvrtcGetCUBINSize(program, &bytes);
        unsigned char *data = r == NVRTC_SUCCESS ? malloc(bytes ? bytes : 1) : NULL;
        if (r != NVRTC_SUCCESS)
            status = nvrtc_fail(err, r, "nvrtcGetCUBINSize", name);
        else if (!data)
            status = snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory for the CUBIN of '%s'", name);
        else if ((r = nvrtcGetCUBIN(program, (char *)data)) != NVRTC_SUCCESS)
            status = nvrtc_fail(err, r, "nvrtcGetCUBIN", name);
        if (status == SNAPMLA_OK && mode != REPORT_NONE) {
            char *log = program_log(program);
            status = log ? snapmla_ptxas_report_parse(log, name, report, err)
                         : snapmla_fail(err, SNAPMLA_ERR_COMPILE, "NVRTC gave no log for '%s'", name);
            free(log);
            if (status != SNAPMLA_OK && mode == REPORT_BEST_EFFORT) {
                memset(report, 0, sizeof *report);
                status = SNAPMLA_OK;
            }
        }
        if (status == SNAPMLA_OK) {
            *cubin = data;
            *size = bytes;
        } else {
            free(data);
        }
    }
    nvrtcDestroyProgram(&program);
    return status == SNAPMLA_OK ? snapmla_ok(err) : status;
}

snapmla_status snapmla_jit_compile(const char *source, const char *name,
                                   snapmla_arch arch, unsigned char **cubin,
                                   size_t *size, snapmla_error *err)
{
    return compile(source, name, arch, cubin, size, REPORT_NONE, NULL, err);
}

snapmla_status snapmla_jit_compile_report(const char *source, const char *name, snapmla_arch arch,
                                          unsigned char **cubin, size_t *size, snapmla_ptxas_report *report,
                                          snapmla_error *err)
{
    return compile(source, name, arch, cubin, size, REPORT_REQUIRED, report, err);
}

snapmla_status snapmla_jit_compile_noted(const char *source, const char *name, snapmla_arch arch,
                                         unsigned char **cubin, size_t *size, char *problem,
                                         size_t problem_size, snapmla_error *err)
{
    snapmla_ptxas_report *report = malloc(sizeof *report);
    if (!report)
        return snapmla_fail(err, SNAPMLA_ERR_NOMEM, "out of memory compiling '%s'", name);
    problem[0] = '\0';
    snapmla_status s = compile(source, name, arch, cubin, size, REPORT_BEST_EFFORT, report, err);
    if (s == SNAPMLA_OK)
        snapmla_ptxas_report_problem(report, problem, problem_size);
    free(report);
    return s;
}
