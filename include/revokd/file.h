/* file.h - read a small configuration file (keys, secrets) whole. */
#ifndef REVOKD_FILE_H
#define REVOKD_FILE_H

#include <stddef.h>

/* Reads path into a NUL-terminated buffer of *len bytes (the NUL not
 * counted). Files larger than max bytes are refused. Returns the buffer, which
 * the caller frees with file_free() (it is wiped first, as it may hold a
 * secret), or NULL with the reason in err. */
char *file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);
void file_free(char *buf, size_t len);

/* The next line of *cursor (a file_read() buffer, cut in place) that is
 * neither blank nor a '#' comment, without the blanks around it (a key
 * or secret never holds them); *lineno counts every line, for messages.
 * NULL at the end. */
char *file_next_line(char **cursor, size_t *lineno);

#endif
