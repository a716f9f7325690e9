/* snapmla inspect's SASS census: finds nvdisasm, runs it on a CUBIN written
 * to a temporary file, and counts each kernel's instructions by class. */
#include "sass_census.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"

extern char **environ;

const char *const sass_class_names[SASS_CLASS_COUNT] = {"QGMMA", "HGMMA", "HMMA", "UTMALDG", "LDL", "STL"};

static int executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int sass_find_disassembler(char *path, size_t size, snapmla_error *err)
{
    const char *given = getenv("SNAPMLA_NVDISASM");
    if (given && *given) {
        if (executable_file(given)) {
            snprintf(path, size, "%s", given);
            return 1;
        }
        snapmla_fail(err, SNAPMLA_ERR_INVALID_ARG,
                     "SNAPMLA_NVDISASM: '%s' is not an executable file; allowed: the path of nvdisasm", given);
        return -1;
    }
    const char *search = getenv("PATH");
    for (const char *dir = search; dir && *dir;) {
        const char *end = strchr(dir, ':');
        const int length = end ? (int)(end - dir) : (int)strlen(dir);
        snprintf(path, size, "%.*s/nvdisasm", length, dir);
        if (length > 0 && executable_file(path))
            return 1;
        dir = end ? end + 1 : NULL;
    }
    const char *cuda_home = getenv("CUDA_HOME");
    if (cuda_home && *cuda_home) {
        snprintf(path, size, "%s/bin/nvdisasm", cuda_home);
        if (executable_file(path))
            return 1;
    }
    snprintf(path, size, "/usr/local/cuda/bin/nvdisasm");
    if (executable_file(path))
        return 1;
    snapmla_fail(err, SNAPMLA_ERR_UNSUPPORTED,
                 "no nvdisasm on PATH, in $CUDA_HOME/bin or /usr/local/cuda/bin (set SNAPMLA_NVDISASM to one)");
    return 0;
}

/* The mnemonic of an instruction line (an address comment, an optional
 * predicate such as @!P0, then e.g. QGMMA.64x64x32.F32.E4M3.E4M3): the word
 * after the address and the predicate, up to its first dot. */
static int mnemonic_of(const char *line, char *out, size_t size)
{
    const char *at = strstr(line, "/*");
    const char *close = at ? strstr(at, "*/") : NULL;
    if (!close)
        return 0;
    for (const char *h = at + 2; h < close; ++h)   /* an address is hex digits only */
        if (!strchr("0123456789abcdefABCDEF", *h))
            return 0;
    const char *p = close + 2;
    while (*p == ' ' || *p == '\t' || *p == '{')
        ++p;
    if (*p == '@') {   /* predicate */
        while (*p && *p != ' ')
            ++p;
        while (*p == ' ')
            ++p;
    }
    size_t n = 0;
    while (p[n] && p[n] != '.' && p[n] != ' ' && p[n] != ';' && n + 1 < size)
        ++n;
    if (n == 0)
        return 0;
    snprintf(out, size, "%.*s", (int)n, p);
    return 1;
}

void sass_census_parse(const char *text, sass_census out[SASS_MAX_KERNELS], int *count)
{
    *count = 0;
    sass_census *current = NULL;
    char line[512], word[32];
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        const size_t length = end ? (size_t)(end - p) : strlen(p);
        snprintf(line, sizeof line, "%.*s", (int)length, p);
        p += length + (end ? 1 : 0);
        const size_t n = strlen(line);
        if (strncmp(line, ".text.", 6) == 0 && n > 7 && line[n - 1] == ':') {   /* a kernel's code */
            current = *count < SASS_MAX_KERNELS ? &out[(*count)++] : NULL;
            if (current) {
                memset(current, 0, sizeof *current);
                snprintf(current->kernel, sizeof current->kernel, "%.*s", (int)(n - 7), line + 6);
            }
        } else if (current && mnemonic_of(line, word, sizeof word)) {
            current->instructions++;
            for (int c = 0; c < SASS_CLASS_COUNT; ++c)
                if (strcmp(word, sass_class_names[c]) == 0)
                    current->counts[c]++;
        }
    }
}

/* Runs `nvdisasm -c cubin_path` with stdout and stderr into out_path; the
 * exit status, or -1 when it could not be started (errno). */
static int run_nvdisasm(const char *nvdisasm, const char *cubin_path, const char *out_path)
{
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) != 0)
        return -1;
    int rc = posix_spawn_file_actions_addopen(&actions, 1, out_path, O_WRONLY | O_TRUNC, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    char *const argv[] = {(char *)nvdisasm, "-c", (char *)cubin_path, NULL};
    if (rc == 0)
        rc = posix_spawn(&pid, nvdisasm, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

snapmla_status sass_census_run(const char *nvdisasm, const unsigned char *cubin, size_t size,
                               sass_census out[SASS_MAX_KERNELS], int *count, snapmla_error *err)
{
    const char *tmpdir = getenv("TMPDIR");
    const char *dir = tmpdir && *tmpdir ? tmpdir : "/tmp";
    char cubin_path[512], out_path[512];
    snprintf(cubin_path, sizeof cubin_path, "%s/snapmla-sass-XXXXXX", dir);
    snprintf(out_path, sizeof out_path, "%s/snapmla-sass-XXXXXX", dir);
    const int cubin_fd = mkstemp(cubin_path);
    const int out_fd = cubin_fd < 0 ? -1 : mkstemp(out_path);
    snapmla_status status = SNAPMLA_OK;
    if (cubin_fd < 0 || out_fd < 0) {
        status = snapmla_fail(err, SNAPMLA_ERR_IO, "cannot create a temporary file in '%s': %s", dir,
                              strerror(errno));
    } else {
        size_t written = 0;
        while (written < size) {
            const ssize_t n = write(cubin_fd, cubin + written, size - written);
            if (n <= 0)
                break;
            written += (size_t)n;
        }
        if (written < size)
            status = snapmla_fail(err, SNAPMLA_ERR_IO, "cannot write '%s': %s", cubin_path, strerror(errno));
    }
    if (cubin_fd >= 0)
        close(cubin_fd);
    if (out_fd >= 0)
        close(out_fd);
    unsigned char *text = NULL;
    size_t text_size = 0;
    if (status == SNAPMLA_OK) {
        const int rc = run_nvdisasm(nvdisasm, cubin_path, out_path);
        if (rc < 0)
            status = snapmla_fail(err, SNAPMLA_ERR_IO, "cannot run '%s': %s", nvdisasm, strerror(errno));
        else if ((status = snapmla_read_file(out_path, SNAPMLA_BINARY_FILE_MAX, &text, &text_size, err)) != SNAPMLA_OK)
            ;
        else if (rc != 0)   /* its first line says why */
            status = snapmla_fail(err, SNAPMLA_ERR_IO, "'%s' failed (exit %d): %.*s", nvdisasm, rc,
                                  (int)strcspn((const char *)text, "\n"), (const char *)text);
    }
    if (status == SNAPMLA_OK) {
        sass_census_parse((const char *)text, out, count);
        if (*count == 0)
            status = snapmla_fail(err, SNAPMLA_ERR_IO, "'%s' printed no kernel code for the CUBIN", nvdisasm);
    }
    free(text);
    if (cubin_fd >= 0)
        unlink(cubin_path);
    if (out_fd >= 0)
        unlink(out_path);
    return status == SNAPMLA_OK ? snapmla_ok(err) : status;
}
