/* log.c - JSON lines on stderr. */
#include "revokd/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

int log_set_level(const char *name)
{
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcmp(name, names[i]) == 0) {
            min_level = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_enabled(enum log_level level)
{
    return level >= min_level;
}

void log_event(enum log_level level, const char *event, cJSON *fields)
{
    if (!log_enabled(level)) {
        cJSON_Delete(fields);
        return;
    }

    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    /* Build the line with the fixed keys first, then the caller's. */
    cJSON *line = cJSON_CreateObject();
    if (line == NULL) {
        cJSON_Delete(fields);
        return;
    }
    cJSON_AddStringToObject(line, "time", when);
    cJSON_AddStringToObject(line, "level", names[level]);
    cJSON_AddStringToObject(line, "event", event);
    if (fields != NULL) {
        cJSON *item;
        while ((item = fields->child) != NULL) {
            cJSON_DetachItemViaPointer(fields, item);
            cJSON_AddItemToObject(line, item->string, item);
        }
        cJSON_Delete(fields);
    }

    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL; write() takes the length */
    ssize_t off = 0;
    while ((size_t)off < len + 1) {
        ssize_t w = write(STDERR_FILENO, text + off, len + 1 - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
    free(text);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "message", msg);
    log_event(level, event, fields);
}
