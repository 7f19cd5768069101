/* log.h - one JSON object per line on stderr.
 *
 * Leaf modules do not log: they return an error and fill an errstr, and the
 * caller logs once with context. Nothing secret (token, signature, key) may be
 * passed in here. */
#ifndef REVOKD_LOG_H
#define REVOKD_LOG_H

#include <cjson/cJSON.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Returns 0, or -1 when name is not a level. */
int log_set_level(const char *name);
int log_enabled(enum log_level level);

/* Writes {"time", "level", "event", ...fields} as one line with one write(2),
 * so lines from several threads never interleave. Takes ownership of fields
 * (may be NULL). */
void log_event(enum log_level level, const char *event, cJSON *fields);

/* log_event with a single "message" field. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
