/* fuzz_edge_stream.c - an edge's reader of central's event stream,
 * edge_feed_stream_line() (edge_feed.h): GET /v1/events as
 * text/event-stream, read a line at a time.
 *
 * The input:
 *
 *   byte 0  bits 0-1: the id the edge has applied up to ("0";
 *           "1767225600123-0"; "5-9"; the last id there can be), bit 2: the
 *           callback refuses the first event, as a full edge does
 *   rest    the stream, cut into lines at LF (a CR before it dropped), each
 *           passed without a NUL after it, so a read past its end is caught
 *
 * Asserts what edge_feed.h promises: each line is a field, a comment, an
 * event or an old event, or -1 or -2 with a reason, after which the stream
 * is dropped; each() is called once for an event and never otherwise, with
 * the id of the stream's "id:" line, after the id applied so far (which
 * then becomes it), a jti event with a jti and no sub, a subject event with
 * a sub; its strings are read in the callback, where they must live. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "revokd/edge_feed.h"
#include "revokd/event.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const afters[] = {"0", "1767225600123-0", "5-9", "18446744073709551615-18446744073709551614"};

struct seen {
    size_t calls;
    bool refuse;
    const char *after;
    char id[EDGE_FEED_ID_MAX];
};

static int each(void *arg, const struct edge_feed_event *e)
{
    struct seen *s = arg;

    s->calls++;
    fuzz_check(strlen(e->id) < sizeof(s->id), "an event id longer than EDGE_FEED_ID_MAX");
    fuzz_check(event_id_after(e->id, s->after), "an event passed on that is not after the id applied");
    fuzz_check(strlen(e->iss) <= 1024, "iss longer than it can be");
    if (e->kind == EDGE_FEED_JTI)
        fuzz_check(e->jti != NULL && strlen(e->jti) > 0 && e->sub == NULL, "a jti event without its jti");
    else
        fuzz_check(e->sub != NULL && strlen(e->sub) > 0 && e->jti == NULL, "a subject event without its sub");
    memcpy(s->id, e->id, strlen(e->id) + 1);
    if (s->refuse) {
        s->refuse = false;
        return -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct edge_feed_stream st = {0};
    struct seen seen = {0};
    char applied[EDGE_FEED_ID_MAX], err[256];

    if (size < 1)
        return 0;
    snprintf(applied, sizeof(applied), "%s", afters[data[0] & 3]);
    seen.refuse = (data[0] & 4) != 0;
    const char *text = (const char *)data + 1, *end = (const char *)data + size;
    while (text < end) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t n = (size_t)((nl != NULL ? nl : end) - text);
        size_t len = n > 0 && text[n - 1] == '\r' ? n - 1 : n;
        char *line = malloc(len > 0 ? len : 1); /* exactly the line: a read past it is caught */
        memcpy(line, text, len);
        size_t before = seen.calls;
        err[0] = '\0';
        seen.after = applied;
        int rc = edge_feed_stream_line(&st, line, len, applied, each, &seen, err, sizeof(err));
        free(line);
        fuzz_check(rc >= -2 && rc <= EDGE_FEED_LINE_OLD, "a result edge_feed.h does not name");
        fuzz_check(seen.calls == before + (rc == EDGE_FEED_LINE_EVENT || rc == -2),
                   "each() called other than once for an event");
        if (rc < 0) {
            fuzz_check(err[0] != '\0', "a line refused without a reason");
            break;
        }
        if (rc == EDGE_FEED_LINE_EVENT) {
            fuzz_check(strcmp(seen.id, st.id) == 0, "an event passed on under another id than its stream's");
            memcpy(applied, seen.id, strlen(seen.id) + 1);
        }
        text += n + 1;
    }
    return 0;
}
