/* util.c - what the fuzz targets share (util.h). */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", program_invocation_short_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void fuzz_scrub_environment(void)
{
    for (size_t i = 0; environ[i] != NULL;) {
        char name[256];
        size_t n = strcspn(environ[i], "=");
        if (strncmp(environ[i], "REVOKD_", 7) != 0 || n >= sizeof(name)) {
            i++;
            continue;
        }
        memcpy(name, environ[i], n);
        name[n] = '\0';
        fuzz_check(unsetenv(name) == 0, "unsetenv failed");
    }
}

void fuzz_make_temp_dir(char *dir, size_t size, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, size, "%s/%s-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : P_tmpdir, prefix);
    fuzz_check(mkdtemp(dir) != NULL, "cannot make a temporary directory");
}

void fuzz_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");

    fuzz_check(f != NULL && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write a file");
}

char *fuzz_text(const void *data, size_t size)
{
    char *text = malloc(size + 1);

    fuzz_check(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

static void on_replied(struct request *req)
{
    (void)req;
    fuzz_check(false, "replied() without a wait");
}

static void on_release(struct request *req)
{
    ((struct fuzz_request *)req)->released = true;
}

static const struct request_transport transport = {.replied = on_replied, .release = on_release};

void fuzz_request_post(struct fuzz_request *fr, const char *path, const char *content_type,
                       const uint8_t *data, size_t size)
{
    *fr = (struct fuzz_request){.body = fuzz_text(data, size)};
    request_init(&fr->req, &transport);
    fr->req.method = "POST";
    fr->req.path = path;
    fr->req.content_type = content_type;
    fr->req.body = fr->body;
    fr->req.body_len = size;
}

void fuzz_request_finish(struct fuzz_request *fr)
{
    free(reply_render(&fr->req.reply));

    fr->released = false;
    request_finish(&fr->req);
    fuzz_check(fr->released && fr->req.json == NULL, "the request was not let go");
    free(fr->body);
}
