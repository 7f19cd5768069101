/* issuers.h - the issuers revokd trusts, as configured: the one issuer of
 * the REVOKD_ISSUER / REVOKD_JWKS_* settings, or several from
 * REVOKD_ISSUERS_FILE. Each names where its keys come from and the rules
 * its tokens must meet; loading and fetching the keys is keyring.h's. */
#ifndef REVOKD_ISSUERS_H
#define REVOKD_ISSUERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/config.h"

/* Most issuers a file may list, and audiences an issuer may accept. */
#define ISSUERS_MAX 64
#define ISSUER_AUDIENCES_MAX 16

struct issuer_conf {
    char *iss;                /* "" only for the settings' issuer without REVOKD_ISSUER: any iss */
    char *audiences[ISSUER_AUDIENCES_MAX];
    size_t n_audiences;       /* 0: any aud, or none */
    unsigned algs;            /* JWKS_ALG_BIT set; 0: every supported algorithm */
    int64_t leeway, max_lifetime;
    /* The keys: a remote set (jwks_url, or discovery from iss), or files. */
    char *jwks_url;
    bool discovery;
    char *jwks_file, *public_key_file, *public_key_alg, *hmac_secret_file, *hmac_alg;
};

struct issuers {
    struct issuer_conf *at;
    size_t n;
};

/* Fills out from cfg: REVOKD_ISSUERS_FILE when set, else the single-issuer
 * settings. Every mistake found is reported, one line each (separated by
 * '\n') in err; then -1, with out empty. The files an issuer names are
 * checked only for being readable here; their content is the keyring's. */
int issuers_load(struct issuers *out, const struct config *cfg, char *err, size_t errlen);
void issuers_free(struct issuers *is);

/* Mistakes found in a configuration, gathered one whole line each into a
 * caller's buffer err of size bytes (which must start empty, used 0);
 * lines beyond its room are counted, and issuers_mistakes_end() adds a
 * last line saying how many were left out. */
struct issuers_mistakes {
    char *err;
    size_t size, used;
    int count, omitted;
};
void issuers_mistake(struct issuers_mistakes *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void issuers_mistakes_end(struct issuers_mistakes *m);

/* Whether c's keys are fetched (jwks_url or discovery). */
bool issuers_remote(const struct issuer_conf *c);

/* Whether a and b fetch the same key set under the same rules for its keys,
 * so a reload may keep the keys a fetched before fetching anew. */
bool issuers_same_remote(const struct issuer_conf *a, const struct issuer_conf *b);

#endif
