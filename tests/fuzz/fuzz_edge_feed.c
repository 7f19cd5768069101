/* fuzz_edge_feed.c - an edge's reader of central's feed pages,
 * edge_feed_parse() (edge_feed.h): the answer of GET /v1/events, a JSON
 * object {"events": [...], "next": "<id>"}, read after an event id, with at
 * most a limit of events, each handed to a callback that may refuse it.
 *
 * The input:
 *
 *   byte 0  bits 0-1: the id read after ("0", the start; "5-9";
 *           "1767225600123-0"; "18446744073709551615-18446744073709551614",
 *           the last ids there can be), bits 2-4: the event the callback
 *           refuses, as a full edge does (0-6; 7: none), bits 5-7: the
 *           limit (1, 2, 3, 5, 10, 100, 1000 or 1000, EDGE_FEED_PAGE)
 *   rest    the page, exactly as many bytes as the body had: no NUL after
 *           it, so a read past its end is caught
 *
 * Asserts what edge_feed.h promises: 0, -1 or -2 and a reason with each
 * failure; a refused page (-1) applies nothing, a page cut short (-2) only
 * the events before the refused one, and next is then the last one kept;
 * at most limit events, each after the id read after and after the one
 * before, compared as numbers, and each an id central takes back in
 * ?after= ("<ms>-<seq>", each part up to 2^64 - 1: the edge asks for what
 * follows it next); a jti event with a jti and no sub, a subject event with
 * a sub and a cutoff; every identifier 1 to JWT_STR_MAX bytes with no
 * control character, every number in 0..2^53; and next such an id, not
 * before the last event kept. The strings of an event are read in the
 * callback, where they must live. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "revokd/edge_feed.h"
#include "revokd/jwt.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NO_REFUSAL 7
#define INT_EXACT ((int64_t)1 << 53)

static const char *const afters[] = {"0", "5-9", "1767225600123-0", "18446744073709551615-18446744073709551614"};
static const size_t limits[] = {1, 2, 3, 5, 10, 100, EDGE_FEED_PAGE, EDGE_FEED_PAGE};

/* What the callback saw. */
struct seen {
    size_t calls;                /* each() called */
    size_t refuse_at;            /* the call that returns -1; NO_REFUSAL: none */
    char last[EDGE_FEED_ID_MAX]; /* the last event kept; the id read after before any */
};

/* An id as central reads it back in ?after= (route_events.c): "0", or
 * "<ms>-<seq>", each part 1 to 20 digits and at most 2^64 - 1. Fills ms
 * and seq with the parts without their leading zeros ("0" for zero). */
static bool id_read(const char *id, char ms[21], char seq[21])
{
    const char *p = id;
    char *parts[2] = {ms, seq};

    if (strcmp(id, "0") == 0) {
        snprintf(ms, 21, "0");
        snprintf(seq, 21, "0");
        return true;
    }
    for (int i = 0; i < 2; i++) {
        size_t n = strspn(p, "0123456789");
        if (n == 0 || n > 20)
            return false;
        size_t zeros = strspn(p, "0");
        if (zeros == n)
            zeros = n - 1; /* "000": zero */
        size_t digits = n - zeros;
        if (digits == 20 && strncmp(p + zeros, "18446744073709551615", 20) > 0)
            return false;
        memcpy(parts[i], p + zeros, digits);
        parts[i][digits] = '\0';
        p += n;
        if (i == 0 && *p++ != '-')
            return false;
    }
    return *p == '\0';
}

/* Compares two numbers written without leading zeros. */
static int number_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

/* Whether id a comes after id b; false when either is not an id. */
static bool id_after(const char *a, const char *b)
{
    char ams[21], aseq[21], bms[21], bseq[21];

    if (!id_read(a, ams, aseq) || !id_read(b, bms, bseq))
        return false;
    int c = number_cmp(ams, bms);
    return c > 0 || (c == 0 && number_cmp(aseq, bseq) > 0);
}

/* An identifier as revokd keeps them: 1..JWT_STR_MAX bytes, no control
 * character. Reads every byte, so a string that did not live is caught. */
static void check_identifier(const char *s, const char *what)
{
    fuzz_check(s != NULL, what);
    size_t n = strlen(s);
    fuzz_check(n > 0 && n <= JWT_STR_MAX, what);
    for (size_t i = 0; i < n; i++)
        fuzz_check((unsigned char)s[i] >= 0x20 && s[i] != 0x7f, what);
}

static int each(void *arg, const struct edge_feed_event *e)
{
    struct seen *s = arg;

    fuzz_check(e->id != NULL && strlen(e->id) > 0 && strlen(e->id) < EDGE_FEED_ID_MAX,
               "an event id of a bad length");
    fuzz_check(id_after(e->id, s->last),
               "an event whose id is not one central reads back, or not after the one before");
    fuzz_check(e->iss != NULL, "an event without a namespace");
    if (e->iss[0] != '\0')
        check_identifier(e->iss, "an iss that is not an identifier");
    fuzz_check(e->exp >= 0 && e->exp <= INT_EXACT, "an exp out of range");
    switch (e->kind) {
    case EDGE_FEED_JTI:
        check_identifier(e->jti, "a jti event without a jti that is an identifier");
        fuzz_check(e->sub == NULL, "a jti event with a sub");
        break;
    case EDGE_FEED_SUBJECT:
        check_identifier(e->sub, "a subject event without a sub that is an identifier");
        fuzz_check(e->jti == NULL, "a subject event with a jti");
        fuzz_check(e->cutoff >= 0 && e->cutoff <= INT_EXACT, "a cutoff out of range");
        break;
    default:
        fuzz_fail("an event of kind %d", (int)e->kind);
    }
    if (s->calls++ == s->refuse_at)
        return -1;
    snprintf(s->last, sizeof(s->last), "%s", e->id);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *after = afters[data[0] & 3];
    size_t limit = limits[data[0] >> 5];
    struct seen s = {.refuse_at = (data[0] >> 2) & 7};
    char next[EDGE_FEED_ID_MAX], err[256];
    size_t count = 12345;

    snprintf(s.last, sizeof(s.last), "%s", after);
    memset(next, 'x', sizeof(next));
    memset(err, 'x', sizeof(err));
    int rc = edge_feed_parse((const char *)data + 1, size - 1, after, limit, each, &s, next, &count, err,
                             sizeof(err));

    fuzz_check(rc == 0 || rc == -1 || rc == -2, "an unknown result");
    if (rc < 0)
        fuzz_check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0', "a failure without a reason");
    if (rc == -1) {
        fuzz_check(s.calls == 0 && count == 0, "a refused page applied in part");
        return 0;
    }
    fuzz_check(memchr(next, '\0', sizeof(next)) != NULL, "a next that is not a string");
    if (rc == -2) {
        fuzz_check(s.refuse_at != NO_REFUSAL && s.calls == s.refuse_at + 1, "cut short without a refusal");
        fuzz_check(count == s.refuse_at, "events counted that were not kept");
        fuzz_check(strcmp(next, s.last) == 0, "a page cut short, next not the last event kept");
        return 0;
    }
    fuzz_check(count == s.calls && count <= limit, "events counted that were not passed, or over the limit");
    fuzz_check(s.refuse_at >= s.calls || s.refuse_at == NO_REFUSAL, "a refusal not reported");
    char ms[21], seq[21];
    fuzz_check(id_read(next, ms, seq) && !id_after(s.last, next), "a next before the last event, or not an id");
    return 0;
}
