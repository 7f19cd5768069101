/* keyring.h - every key revokd holds, as in force now: each issuer's
 * verification keys (read from files, or fetched and kept fresh by
 * jwks_fetch.c), the admin keys and the OAuth clients' secrets.
 *
 * A signature check holds the keyring shared for as long as it uses a key;
 * a refresh or a reload swaps keys in exclusively, so no key is freed while
 * in use, and a reload takes effect between two requests without dropping
 * a connection. When a key is withdrawn (a refresh without it, a reload)
 * the verified-token cache is cleared, so no token keeps passing on a key
 * that is gone. */
#ifndef REVOKD_KEYRING_H
#define REVOKD_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/admin_keys.h"
#include "revokd/config.h"
#include "revokd/jwt.h"
#include "revokd/token_cache.h"

struct keyring;

/* Reads the issuers (issuers.h), their key files, the admin and feed keys, and
 * starts fetching the remote key sets. A remote set that cannot be fetched
 * does not stop start-up: its issuer has no keys until it can, which
 * keyring_ready() reports. NULL with the reason in err (one line per
 * mistake). cfg and cache (cleared when keys are withdrawn; NULL: none)
 * must outlive the keyring. */
struct keyring *keyring_new(const struct config *cfg, struct token_cache *cache, char *err, size_t errlen);
/* Stops fetching and frees everything. NULL is a no-op. */
void keyring_free(struct keyring *r);

/* Reads every file again (the issuers file, key files, admin and feed keys, clients) and
 * fetches every remote set anew. On any mistake nothing changes and err
 * says why (one line per mistake). A remote set of an issuer that stays
 * configured alike is kept in force until its new fetch succeeds. Reloads
 * from several threads run one at a time. The outcome is logged and
 * counted (revokd_reloads_total). Returns 0 or -1. */
int keyring_reload(struct keyring *r, char *err, size_t errlen);

/* jwt_verify() with the keys in force. A token whose kid its issuer's
 * fetched set lacks asks for an early fetch of that set (rate-limited, see
 * jwks_fetch_kick), and is refused now, not held until the fetch ends.
 * Safe from any thread. */
int keyring_verify(struct keyring *r, const char *token, size_t len, struct jwt_claims *out);

enum keyring_admin { KEYRING_ADMIN_NONE, KEYRING_ADMIN_DENIED, KEYRING_ADMIN_OK };
/* Whether key (len bytes) is an admin key, in constant time, with its name
 * copied into name when it is; NONE when no admin keys are configured. */
enum keyring_admin keyring_admin_check(struct keyring *r, const char *key, size_t len, char name[ADMIN_NAME_MAX + 1]);

/* Whether key (len bytes) may read the revocation log: a feed key
 * (REVOKD_FEED_KEYS_FILE) or an admin key, with its name copied into name
 * and *admin saying which; NONE when neither kind is configured. Every
 * configured key is compared, in constant time, whichever matches. */
enum keyring_admin keyring_feed_check(struct keyring *r, const char *key, size_t len, char name[ADMIN_NAME_MAX + 1],
                                      bool *admin);

/* The permissions (clients.h) of OAuth client id with secret (len bytes),
 * or -1 when unknown, wrong, or no clients are configured. */
int keyring_client_check(struct keyring *r, const char *id, const char *secret, size_t len);

/* The leeway and longest token lifetime of the issuer iss ("" for tokens
 * without iss): its own when configured, else the largest of any issuer,
 * which keeps a revocation at least as long as any token could need. */
void keyring_limits(struct keyring *r, const char *iss, int64_t *leeway, int64_t *max_lifetime);

/* How long the revocation log must keep an entry, in seconds: as long as
 * any record can live from when it is written, which is the longest of
 * every issuer's max_lifetime + 2 * leeway. A revoke-all cutoff lies
 * leeway ahead and its record is kept max_lifetime + leeway beyond it; an
 * admin's revocation may name an exp up to max_lifetime + leeway ahead and
 * is kept leeway beyond that. */
int64_t keyring_log_retention(struct keyring *r);

/* One issuer's keys as /readyz and /metrics show them. */
struct keyring_status {
    const char *iss;
    const char *source;  /* "jwks_url", "discovery" or "files" */
    size_t keys;
    int64_t loaded_at;   /* unix time the keys in force were read or fetched; 0: none yet */
    const char *last;    /* the last fetch's result (jwks_fetch.h names), "pending" before the first, "loaded" for files */
    bool stale;          /* the last fetch failed, so older keys are in force */
    const uint64_t *fetches; /* remote: per result, JWKS_FETCH_NRESULTS counts; else NULL */
};

/* Calls each() for every issuer, in configuration order, with the keyring
 * held shared: each() must not call into the keyring. */
void keyring_each(struct keyring *r, void (*each)(void *arg, const struct keyring_status *s), void *arg);

/* Whether every issuer has keys; when not, the first without is named in
 * why. */
bool keyring_ready(struct keyring *r, char *why, size_t size);

/* Counts for the start-up log line. */
void keyring_summary(struct keyring *r, size_t *issuers, size_t *keys, bool *admin_api);

#endif
