/* clients.c - OAuth clients and their hashed secrets; see clients.h. */
#include "revokd/clients.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "revokd/file.h"
#include "revokd/sha256.h"
#include "revokd/utf8.h"

struct client {
    char id[CLIENT_ID_MAX + 1];
    unsigned char digest[SHA256_BYTES];
    int perms;
};

struct clients {
    struct client *at;
    size_t n;
};

void clients_free(struct clients *c)
{
    if (c == NULL)
        return;
    OPENSSL_cleanse(c->at, c->n * sizeof(*c->at));
    free(c->at);
    free(c);
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* The secret part of a line (up to the next ':' or the end) into digest;
 * returns its length in the line, or -1. */
static long parse_secret(const char *s, unsigned char digest[SHA256_BYTES])
{
    if (strncmp(s, "sha256:", 7) == 0) {
        for (size_t i = 0; i < SHA256_BYTES; i++) {
            int hi = hexval(s[7 + 2 * i]), lo = hi < 0 ? -1 : hexval(s[8 + 2 * i]);
            if (hi < 0 || lo < 0)
                return -1;
            digest[i] = (unsigned char)(hi << 4 | lo);
        }
        return s[7 + 2 * SHA256_BYTES] == '\0' || s[7 + 2 * SHA256_BYTES] == ':' ? 7 + 2 * SHA256_BYTES : -1;
    }
    size_t n = strcspn(s, ":");
    if (n < CLIENT_SECRET_MIN)
        return -1;
    sha256(s, n, digest);
    return (long)n;
}

static int parse_perms(const char *s)
{
    int perms = 0;

    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        if (n == 10 && strncmp(s, "revoke_any", n) == 0)
            perms |= CLIENT_REVOKE_ANY;
        else if (n == 17 && strncmp(s, "global_revocation", n) == 0)
            perms |= CLIENT_GLOBAL_REVOCATION;
        else
            return -1;
        s += n + (s[n] == ',');
    }
    return perms;
}

/* One line "id:secret[:perms]" into cl. NULL, or what is wrong. */
static const char *parse_line(char *line, struct client *cl)
{
    char *colon = strchr(line, ':');
    size_t idlen = colon != NULL ? (size_t)(colon - line) : 0;
    long slen;

    if (colon == NULL)
        return "expected client_id:secret[:permissions]";
    if (idlen == 0 || idlen > CLIENT_ID_MAX || !utf8_is_text(line, idlen))
        return "the client_id must be 1 to 256 bytes of text";
    memcpy(cl->id, line, idlen);
    cl->id[idlen] = '\0';
    if ((slen = parse_secret(colon + 1, cl->digest)) < 0)
        return "the secret must be at least 16 bytes without ':', or sha256:<64 hex digits>";
    const char *rest = colon + 1 + slen;
    if ((cl->perms = *rest == ':' ? parse_perms(rest + 1) : 0) < 0)
        return "permissions are revoke_any and global_revocation, comma-separated";
    return NULL;
}

struct clients *clients_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0, lineno = 0;
    char *text = file_read(path, 1024 * 1024, &len, err, errlen);
    struct clients *c = NULL;
    char *line, *cursor = text;

    if (text == NULL)
        return NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    while ((line = file_next_line(&cursor, &lineno)) != NULL) {
        struct client cl = {0};
        const char *wrong;
        if ((wrong = parse_line(line, &cl)) != NULL) {
            snprintf(err, errlen, "\"%s\" line %zu: %s", path, lineno, wrong);
            goto fail;
        }
        for (size_t i = 0; i < c->n; i++)
            if (strcmp(c->at[i].id, cl.id) == 0) {
                snprintf(err, errlen, "\"%s\" line %zu: client \"%.64s\" again", path, lineno, cl.id);
                goto fail;
            }
        struct client *grown = realloc(c->at, (c->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        c->at = grown;
        c->at[c->n++] = cl;
    }
    if (c->n == 0) {
        snprintf(err, errlen, "\"%s\" holds no client", path);
        goto fail;
    }
    file_free(text, len);
    return c;

fail:
    file_free(text, len);
    clients_free(c);
    return NULL;
}

int clients_check(const struct clients *c, const char *id, const char *secret, size_t secret_len)
{
    unsigned char digest[SHA256_BYTES];

    /* Hashed whether or not id exists, so the time says nothing of it. */
    sha256(secret, secret_len, digest);
    for (size_t i = 0; c != NULL && i < c->n; i++)
        if (strcmp(c->at[i].id, id) == 0)
            return CRYPTO_memcmp(digest, c->at[i].digest, sizeof(digest)) == 0 ? c->at[i].perms : -1;
    return -1;
}
