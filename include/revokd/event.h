/* event.h - one entry of the revocation log (store.h, struct store_event)
 * as a JSON object: the one encoding every reader of the log gets, a page
 * of GET /v1/events or one event of its stream (event_stream.h).
 *
 *   {"id": "1767225600123-0", "kind": "jti", "iss": "https://idp" | null,
 *    "jti": "...", "exp": 1767226530, "reason": "...", "by": "admin:ops",
 *    "at": 1767225600123}
 *
 * A subject's entry has "sub" and "cutoff" instead of "jti"; "reason" is
 * there only when one was given; "iss" is null for the tokens without iss. */
#ifndef REVOKD_EVENT_H
#define REVOKD_EVENT_H

#include <stdbool.h>

#include "revokd/store.h"

/* e as compact JSON text, NUL-terminated; the caller frees it. NULL when
 * out of memory. */
char *event_json(const struct store_event *e);

/* Whether event id a ("<ms>-<seq>", or "<ms>") comes after id b in the
 * log; false when either is not an id. */
bool event_id_after(const char *a, const char *b);

#endif
