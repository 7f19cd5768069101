/* file.c - read small configuration files whole. */
#include "revokd/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

char *file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        goto fail;
    }
    if (n > max) {
        snprintf(err, errlen, "\"%s\" is larger than %zu bytes", path, max);
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;

fail:
    file_free(buf, n);
    fclose(f);
    return NULL;
}

void file_free(char *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}

char *file_next_line(char **cursor, size_t *lineno)
{
    while (**cursor != '\0') {
        char *line = *cursor, *end = strchr(line, '\n');
        if (end != NULL) {
            *end = '\0';
            *cursor = end + 1;
        } else {
            *cursor = line + strlen(line);
        }
        (*lineno)++;
        line += strspn(line, " \t");
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        if (n > 0 && line[0] != '#')
            return line;
    }
    return NULL;
}
