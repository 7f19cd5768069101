/* clients.h - the OAuth clients that may call /oauth2/revoke,
 * /oauth2/introspect and /global-token-revocation (REVOKD_CLIENTS_FILE).
 *
 * One client a line: `client_id:secret[:permissions]`. The secret is the
 * secret itself (at least CLIENT_SECRET_MIN bytes, no ':'), or
 * `sha256:<64 hex digits>`, its SHA-256, so that the file need not hold it.
 * Permissions, comma-separated: `revoke_any` (revoke tokens issued to other
 * clients too), `global_revocation` (POST /global-token-revocation). '#'
 * starts a comment line. Only digests are kept once loaded. */
#ifndef REVOKD_CLIENTS_H
#define REVOKD_CLIENTS_H

#include <stddef.h>

#define CLIENT_SECRET_MIN 16
#define CLIENT_ID_MAX 256

enum client_permission { CLIENT_REVOKE_ANY = 1, CLIENT_GLOBAL_REVOCATION = 2 };

struct clients;

/* NULL with the reason (file and line) in err. */
struct clients *clients_load(const char *path, char *err, size_t errlen);
void clients_free(struct clients *c);

/* The permissions (>= 0) of client id when secret is its secret, compared
 * in constant time over digests; -1 when id is unknown or the secret wrong.
 * c may be NULL (no clients: always -1). */
int clients_check(const struct clients *c, const char *id, const char *secret, size_t secret_len);

#endif
