/* jwks_fetch.h - fetch issuers' key sets over HTTPS and keep them fresh.
 *
 * One thread serves every remote key set, its fetches running side by side
 * on one libcurl multi handle, so a slow provider delays no other. Each set
 * is fetched at start, again when its Cache-Control max-age (or Expires)
 * runs out, within the configured bounds, and early when kicked because a
 * token named a kid the set lacks, at most once per interval. A failed
 * fetch is retried after 1 s, 2 s, 4 s, ... up to the shortest refresh
 * interval. What was fetched goes to the caller's done(); keeping the last
 * good set, and logging, are the caller's. */
#ifndef REVOKD_JWKS_FETCH_H
#define REVOKD_JWKS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "revokd/jwks.h"

/* How a fetch ended: X(name, description). */
#define JWKS_FETCH_RESULTS(X)                                                                    \
    X(ok, "fetched")                                                                             \
    X(network_error, "no answer: connection, TLS or timeout")                                    \
    X(http_error, "an HTTP status other than 200")                                              \
    X(too_large, "the document exceeds REVOKD_JWKS_MAX_BYTES")                                   \
    X(invalid, "not a usable JWKS document")                                                     \
    X(no_usable_key, "no key in the set can be used")                                           \
    X(discovery_error, "the discovery document is unusable or names another issuer")

#define JWKS_FETCH_ENUM(name, text) JWKS_FETCH_##name,
enum jwks_fetch_result { JWKS_FETCH_RESULTS(JWKS_FETCH_ENUM) JWKS_FETCH_NRESULTS };
#undef JWKS_FETCH_ENUM

const char *jwks_fetch_result_name(enum jwks_fetch_result r);

/* One key set to fetch: from jwks_url, or (discovery) from the jwks_uri of
 * iss's /.well-known/openid-configuration, else of its RFC 8414
 * /.well-known/oauth-authorization-server. The strings must outlive the
 * fetcher. */
struct jwks_fetch_source {
    const char *iss;
    const char *jwks_url;
    bool discovery;
    unsigned algs; /* JWKS_ALG_BIT set the keys must fit; 0: any */
};

/* What one fetch of source gave: set (the caller owns it) when result is
 * ok, else NULL and the reason in error. next_ms: when the next fetch is
 * due, in ms from now. skipped: keys of the set that could not be used,
 * the first one's reason in error. url: where the set came from. */
struct jwks_fetch_outcome {
    size_t source;
    enum jwks_fetch_result result;
    struct jwks *set;
    int skipped;
    const char *url;
    const char *error;
    int64_t next_ms;
};

struct jwks_fetch_opts {
    const char *ca_file; /* "" or NULL: the system's CA certificates */
    int64_t refresh_min_ms, refresh_max_ms, kick_interval_ms, timeout_ms;
    size_t max_bytes, max_keys;
    const char *user_agent;
    /* Called on the fetcher's thread after every fetch. */
    void (*done)(void *arg, const struct jwks_fetch_outcome *o);
    void *arg;
};

struct jwks_fetch;

/* Reads a discovery document (OpenID Discovery, RFC 8414), text of len
 * bytes, fetched for issuer iss: its "issuer" must be iss exactly and its
 * "jwks_uri" a URL revokd may fetch (url_fetchable()). Returns 0 with the
 * jwks_uri in jwks_uri (size bytes), or -1 with the reason in err (errlen
 * bytes); a jwks_uri of size bytes or more is cut short in jwks_uri and
 * refused without a reason. The fetcher's own parser, public for the fuzz
 * target. */
int jwks_fetch_parse_discovery(const char *text, size_t len, const char *iss, char *jwks_uri, size_t size,
                               char *err, size_t errlen);

/* Starts fetching every source at once. NULL with the reason in err. */
struct jwks_fetch *jwks_fetch_start(const struct jwks_fetch_source *sources, size_t n,
                                    const struct jwks_fetch_opts *opts, char *err, size_t errlen);

/* Asks for source to be fetched now, because a token named a kid its set
 * lacks. Returns false, doing nothing, when the source was kicked less than
 * kick_interval_ms ago: a stream of made-up kids costs the provider one
 * fetch per interval. Cheap and safe from any thread. */
bool jwks_fetch_kick(struct jwks_fetch *f, size_t source);

/* Stops the thread, abandoning fetches in flight, and frees f. NULL is a
 * no-op. */
void jwks_fetch_stop(struct jwks_fetch *f);

#endif
