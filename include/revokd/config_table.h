/* config_table.h - the single list of revokd's settings.
 *
 * One row per setting: X(name, type, default, min, max, choices, help). The
 * env name is "REVOKD_" + NAME, the flag "--" + name with '_' as '-'. The
 * type says how config.c parses and checks the value (config.h), so every
 * check of a setting lives there and nowhere else; min and max bound an
 * integer, or the length in bytes of any other value; choices lists
 * an enumeration's words ("a|b|c", a leading "|" allowing the empty word).
 * --help, the README table (revokd --config-markdown), the commented
 * environment file of deploy/systemd (revokd --config-env) and the tests'
 * defaults (revokd --config-json) are all generated from it. */
#ifndef REVOKD_CONFIG_TABLE_H
#define REVOKD_CONFIG_TABLE_H

#include "revokd/jwt.h"
#include "revokd/store_key.h"

/* Longest file path a setting may name. */
#define CONFIG_PATH_MAX 4095

#define REVOKD_CONFIG_TABLE(X)                                                                   \
    X(listen, LISTEN, "127.0.0.1:8080", 1, 80, NULL,                                             \
      "HTTP address, host:port or [v6]:port; port 0 picks a free one")                           \
    X(tls_cert_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                         \
      "PEM certificate (then its chain): REVOKD_LISTEN serves HTTPS (TLS 1.2, 1.3); reread on SIGHUP") \
    X(tls_key_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                          \
      "the unencrypted PEM private key of REVOKD_TLS_CERT_FILE; both are set or neither")         \
    X(admin_listen, LISTEN, "", 0, 80, NULL,                                                     \
      "second address, for /v1/admin/*, /metrics and health only, which REVOKD_LISTEN then answers 404; empty: none") \
    X(admin_tls_cert_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                   \
      "PEM certificate (then its chain): REVOKD_ADMIN_LISTEN serves HTTPS; reread on SIGHUP")      \
    X(admin_tls_key_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                    \
      "the unencrypted PEM private key of REVOKD_ADMIN_TLS_CERT_FILE; both are set or neither")   \
    X(redis_url, REDIS_URL, "redis://127.0.0.1:6379/0", 1, 1024, NULL,                           \
      "Redis: redis://[[user]:password@]host[:port][/db] or unix:///path/to.sock[?db=N]")         \
    X(sentinels, ENDPOINTS, "", 0, 2048, NULL,                                                   \
      "Sentinels host:port,host:port,... (at most 8); when set the primary is found through them") \
    X(sentinel_master, NAME, "revokd-primary", 1, 127, NULL,                                     \
      "name of the primary the Sentinels monitor")                                               \
    X(redis_source_address, IP, "", 0, 45, NULL,                                                 \
      "local address revokd connects to Redis and the Sentinels from; empty: the system's choice") \
    X(redis_timeout_ms, MS, "500", 10, 60000, NULL, "connect and command timeout for Redis")     \
    X(store_max_pending, INT, "1000", 1, 1000000, NULL,                                          \
      "Redis commands each worker's link may have awaiting replies; a request beyond them is answered 503 overloaded, not queued") \
    X(min_replicas, INT, "0", 0, 16, NULL,                                                       \
      "a revoke succeeds only once this many replicas confirmed it (WAIT)")                        \
    X(replication_timeout_ms, MS, "500", 1, 60000, NULL, "how long a revoke waits for the replicas") \
    X(role_check_ms, MS, "1000", 50, 60000, NULL,                                                \
      "how often each worker re-confirms that its Redis is still the primary (Sentinel mode)")     \
    X(mode, ENUM, "central", 1, 16, "central|edge",                                               \
      "central: revocations are kept in Redis; edge: a copy of a central service's, in memory, followed from REVOKD_FEED_URL, no Redis (README, Edge mode)") \
    X(feed_url, URL, "", 0, 2048, NULL,                                                          \
      "edge mode: the central service's /v1/events (a node, or its load balancer); revocations are forwarded to the same address") \
    X(central_admin_url, URL, "", 0, 2048, NULL,                                                 \
      "edge mode: central's admin listener (its REVOKD_ADMIN_LISTEN), as scheme://host:port; /v1/admin/* calls are forwarded there, the others to REVOKD_FEED_URL's address") \
    X(feed_key_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                         \
      "edge mode: a file holding the key central accepts for /v1/events, alone on a line")        \
    X(edge_max_staleness_ms, MS, "5000", 1000, 3600000, NULL,                                    \
      "edge mode: once central has not been heard from for this long, checks answer 503 feed_stale") \
    X(edge_poll_wait, SECONDS, "2", 1, 30, NULL,                                                 \
      "edge mode: how long the feed's stream may be silent before the edge reconnects; more than central's REVOKD_FEED_HEARTBEAT_MS, at most half of REVOKD_EDGE_MAX_STALENESS_MS") \
    X(edge_timeout_ms, MS, "3000", 100, 60000, NULL,                                             \
      "edge mode: time allowed to connect to central, for a poll's answer beyond its wait, and for a forwarded revocation") \
    X(edge_max_revocations, INT, "5000000", 1000, 100000000, NULL,                               \
      "edge mode: most revocations held (32-byte slots, at most 3/4 full); beyond, checks answer 503 feed_stale") \
    X(issuers_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                          \
      "several issuers, each with its keys and rules, as JSON (README); replaces the key and issuer settings below") \
    X(jwks_url, URL, "", 0, 2048, NULL,                                                          \
      "the issuer's key set, fetched and refreshed (https, or http to a loopback address)")        \
    X(oidc_discovery, ENUM, "0", 1, 1, "0|1",                                                    \
      "1: find the key set through REVOKD_ISSUER's OpenID (or RFC 8414) discovery document")       \
    X(jwks_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                             \
      "verification keys as a JWKS document (RSA, EC, OKP, oct)")                                 \
    X(jwt_public_key_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                   \
      "one PEM public key (RSA or EC), used for tokens without kid")                              \
    X(jwt_public_key_alg, ENUM, "", 0, 16, "|RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA", \
      "algorithm pinned to that PEM key; empty infers RS256 (RSA), ES256/ES384/ES512 by curve or EdDSA") \
    X(jwt_hmac_secret_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                  \
      "HMAC secret file (whole file, one trailing newline dropped), for tokens without kid")      \
    X(jwt_hmac_alg, ENUM, "HS256", 1, 16, "HS256|HS384|HS512", "algorithm pinned to the HMAC secret") \
    X(issuer, TEXT, "", 0, JWT_STR_MAX, NULL,                                                    \
      "when set, every token's iss must equal it; also the default namespace")                    \
    X(audience, TEXT, "", 0, JWT_STR_MAX, NULL, "when set, every token's aud must contain it")    \
    X(algorithms, TEXT, "", 0, 256, NULL,                                                        \
      "accepted algorithms, comma-separated (RS256,PS256,...); empty: every supported one")        \
    X(leeway, SECONDS, "30", 0, 3600, NULL, "allowed clock skew for exp, nbf and iat")            \
    X(max_token_lifetime, SECONDS, "2592000", 60, 315360000, NULL,                               \
      "longest exp - iat of any token issued (refresh tokens too); longer tokens are refused")    \
    X(ca_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                               \
      "CA certificates (PEM) that key set, discovery and (edge mode) central servers are verified against; empty: the system's") \
    X(jwks_refresh_min, SECONDS, "60", 1, 86400, NULL,                                           \
      "shortest time between two scheduled fetches of a key set, whatever its Cache-Control says") \
    X(jwks_refresh_max, SECONDS, "3600", 1, 604800, NULL,                                        \
      "longest time a fetched key set is used before it is fetched again")                          \
    X(jwks_unknown_kid_interval, SECONDS, "30", 1, 3600, NULL,                                   \
      "a token naming a kid the set lacks fetches the set early, at most once in this long per issuer") \
    X(jwks_fetch_timeout_ms, MS, "5000", 100, 60000, NULL,                                       \
      "time allowed for one fetch of a key set or discovery document")                             \
    X(jwks_max_bytes, BYTES, "524288", 1024, 16777216, NULL,                                     \
      "largest key set or discovery document accepted")                                           \
    X(jwks_max_keys, INT, "100", 1, 10000, NULL, "most keys a fetched key set may hold")         \
    X(admin_keys_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                       \
      "admin API keys, one per line; without it admin endpoints refuse every call")              \
    X(feed_keys_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                        \
      "keys that read the revocation log (GET /v1/events) and nothing else, one per line as the admin keys; admin keys read it too") \
    X(feed_heartbeat_ms, MS, "1000", 100, 30000, NULL,                                           \
      "an event stream (GET /v1/events, text/event-stream) with nothing new gets a heartbeat this often") \
    X(feed_buffer_bytes, BYTES, "16777216", 1048576, 268435456, NULL,                            \
      "an event stream's consumer with more than this unread when revocations come is cut off (a burst of 1,000 revocations is about 250 KB)") \
    X(feed_max_consumers, INT, "256", 1, 100000, NULL,                                           \
      "event streams one node serves at once; beyond, 503 too_many_consumers")                   \
    X(auth_failures_burst, INT, "10", 1, 100000, NULL,                                          \
      "failed admin keys or client secrets one address may send before it is answered 429")       \
    X(auth_failures_per_minute, INT, "6", 1, 100000, NULL,                                       \
      "how fast an address earns back tries after failed authentication")                          \
    X(clients_file, FILE, "", 0, CONFIG_PATH_MAX, NULL,                                          \
      "OAuth clients, client_id:secret[:permissions] a line (README), for /oauth2/revoke, /oauth2/introspect and global revocation") \
    X(key_prefix, NAME, "revokd:", 1, STORE_KEY_PREFIX_MAX, NULL, "namespace of every Redis key") \
    X(threads, INT, "0", 0, 256, NULL,                                                           \
      "event-loop threads serving HTTP, each with its own Redis connections; 0 = one per core less one, at least one") \
    X(verify_threads, INT, "0", 0, 256, NULL,                                                    \
      "threads verifying the signatures of tokens the cache does not hold; 0 = half the cores, at least one") \
    X(max_connections, INT, "1000", 4, 100000, NULL, "simultaneous HTTP connections")            \
    X(max_connections_per_address, INT, "500", 1, 100000, NULL,                                  \
      "simultaneous HTTP connections from one client address; behind a load balancer, at least its own limit") \
    X(connection_timeout, SECONDS, "30", 1, 3600, NULL, "idle HTTP connections are closed after this long") \
    X(request_timeout, SECONDS, "10", 1, 60, NULL,                                               \
      "a request's head and body must arrive within this long of its first byte, else the connection is closed") \
    X(max_body_bytes, BYTES, "16384", 256, 1048576, NULL, "largest accepted request body")       \
    X(max_token_bytes, BYTES, "8192", 256, 65536, NULL, "longest accepted JWT")                  \
    X(token_cache_size, INT, "100000", 0, 10000000, NULL,                                        \
      "verified tokens kept so a repeated token skips its signature check; 0 disables")           \
    X(shutdown_grace_ms, MS, "0", 0, 120000, NULL,                                               \
      "on SIGTERM, keep serving this long with /readyz at 503 so load balancers drain the node")  \
    X(log_level, ENUM, "info", 1, 16, "debug|info|warn|error", "requests are logged at info")

#endif
