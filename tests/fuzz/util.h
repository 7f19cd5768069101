/* util.h - what the fuzz targets share: the failed check that aborts with
 * the target's name, the clean environment, scratch files, the input as a
 * string, and a request made and let go as the transport does.
 *
 * Linked into every target (meson.build here). Not named fuzz_*.c: those
 * are the targets, one per file, and `./dev fuzz` runs each. */
#ifndef REVOKD_FUZZ_UTIL_H
#define REVOKD_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/request.h"

/* Prints "<program>: <printf-formatted message>" on stderr (the program is
 * the target, fuzz_<name>) and aborts, so that libFuzzer keeps the input. */
__attribute__((noreturn, format(printf, 1, 2))) void fuzz_fail(const char *fmt, ...);

/* A promise of the code under test, or something the target needs, that
 * must hold: if cond is false, "fuzz_<name>: <what>" and abort. what is
 * read only then. */
#define fuzz_check(cond, what)                                                                   \
    do {                                                                                         \
        if (!(cond))                                                                             \
            fuzz_fail("%s", (what));                                                             \
    } while (0)

/* Unsets every REVOKD_* variable, so that the settings of the shell that
 * runs the fuzzer do not leak in. */
void fuzz_scrub_environment(void);

/* Makes a directory of its own under $TMPDIR (P_tmpdir without it) into dir:
 * "<tmp>/<prefix>-XXXXXX". */
void fuzz_make_temp_dir(char *dir, size_t size, const char *prefix);

/* Writes size bytes of data to path, anew. */
void fuzz_write_file(const char *path, const void *data, size_t size);

/* A copy of the input with a NUL after its size bytes, as the transport
 * hands a body over (a NUL inside stays); the caller frees it. */
char *fuzz_text(const void *data, size_t size);

/* A request as http_server.c keeps one: request_init() with a transport
 * that notes when the request is let go. */
struct fuzz_request {
    struct request req; /* first: the transport's callbacks are handed it */
    char *body;         /* fuzz_text() of the input */
    bool released;
};

/* Starts fr as a POST of the input to path with content_type. The body
 * readers answer at once, never on a later round: a reply the transport is
 * told of (replied()) fails. */
void fuzz_request_post(struct fuzz_request *fr, const char *path, const char *content_type,
                       const uint8_t *data, size_t size);

/* Renders the reply, lets the request go (request_finish) and checks it
 * was let go, its parsed body with it; frees the body. */
void fuzz_request_finish(struct fuzz_request *fr);

#endif
