/* event.c - a revocation log entry as JSON; see event.h. */
#include "revokd/event.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

/* Integers exactly, as reply.c prints them: cJSON would go through a
 * double. */
static void add_int(cJSON *o, const char *name, int64_t value)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%" PRId64, value);
    cJSON_AddRawToObject(o, name, digits);
}

char *event_json(const struct store_event *e)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "kind", e->kind == STORE_EVENT_JTI ? "jti" : "subject");
    if (e->iss[0] != '\0')
        cJSON_AddStringToObject(o, "iss", e->iss);
    else
        cJSON_AddNullToObject(o, "iss");
    if (e->kind == STORE_EVENT_JTI) {
        cJSON_AddStringToObject(o, "jti", e->jti);
    } else {
        cJSON_AddStringToObject(o, "sub", e->sub);
        add_int(o, "cutoff", e->cutoff);
    }
    add_int(o, "exp", e->exp);
    if (e->reason != NULL)
        cJSON_AddStringToObject(o, "reason", e->reason);
    cJSON_AddStringToObject(o, "by", e->by);
    add_int(o, "at", e->at);
    /* Every member or none: a member lost to a failed allocation must not
     * give a reader an entry with a field missing. */
    if (cJSON_GetArraySize(o) == (e->kind == STORE_EVENT_JTI ? 7 : 8) + (e->reason != NULL))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* "<ms>-<seq>" (or "<ms>") as two numbers, for ordering. -1 when it is not
 * that form. */
static int id_parse(const char *id, uint64_t *ms, uint64_t *seq)
{
    char *end;
    *seq = 0;
    /* Digits only: strtoull would also take blanks, a sign, and clamp. */
    if (*id < '0' || *id > '9')
        return -1;
    errno = 0;
    *ms = strtoull(id, &end, 10);
    if (*end == '-') {
        const char *s = end + 1;
        if (*s < '0' || *s > '9')
            return -1;
        *seq = strtoull(s, &end, 10);
    }
    return *end == '\0' && errno == 0 ? 0 : -1;
}

bool event_id_after(const char *a, const char *b)
{
    uint64_t ams, aseq, bms, bseq;
    if (id_parse(a, &ams, &aseq) < 0 || id_parse(b, &bms, &bseq) < 0)
        return false;
    return ams > bms || (ams == bms && aseq > bseq);
}
