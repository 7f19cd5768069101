/* config_table.h - the single list of revokd's settings.
 *
 * One row per setting: X(name, type, default, min, max, help). The env name is
 * "REVOKD_" + NAME, the flag "--" + name with '_' as '-'. --help, the README
 * table (revokd --config-markdown) and validation are all generated from it.
 * INT rows are checked against min and max; STR rows' min and max bound
 * their length in bytes, so that no text setting reaches the code that uses
 * it longer than that code can take. */
#ifndef REVOKD_CONFIG_TABLE_H
#define REVOKD_CONFIG_TABLE_H

#include "revokd/jwt.h"
#include "revokd/store_key.h"

/* Longest file path a setting may name. */
#define CONFIG_PATH_MAX 4095

#define REVOKD_CONFIG_TABLE(X)                                                                   \
    X(listen, STR, "127.0.0.1:8080", 1, 80,                                                       \
      "HTTP address, host:port or [v6]:port; port 0 picks a free one")                           \
    X(redis_url, STR, "redis://127.0.0.1:6379/0", 1, 1024,                                          \
      "Redis: redis://[:password@]host[:port][/db] or unix:///path/to.sock[?db=N]")               \
    X(sentinels, STR, "", 0, 2048,                                                                  \
      "Sentinels host:port,host:port,...; when set the primary is found through them")            \
    X(sentinel_master, STR, "revokd-primary", 1, 127, "name of the primary the Sentinels monitor") \
    X(redis_timeout_ms, INT, "500", 10, 60000, "connect and command timeout for Redis, in ms")    \
    X(min_replicas, INT, "0", 0, 16,                                                             \
      "a revoke succeeds only once this many replicas confirmed it (WAIT)")                        \
    X(replication_timeout_ms, INT, "500", 1, 60000, "how long a revoke waits for the replicas")   \
    X(role_check_ms, INT, "1000", 50, 60000,                                                     \
      "how often each worker re-confirms that its Redis is still the primary (Sentinel mode)")     \
    X(jwks_file, STR, "", 0, CONFIG_PATH_MAX, "verification keys as a JWKS document (RSA, EC, oct)")           \
    X(jwt_public_key_file, STR, "", 0, CONFIG_PATH_MAX, "one PEM public key (RSA or EC), used for tokens without kid") \
    X(jwt_public_key_alg, STR, "", 0, 16,                                                         \
      "algorithm pinned to that PEM key; empty infers RS256, ES256 (P-256) or ES384 (P-384)")     \
    X(jwt_hmac_secret_file, STR, "", 0, CONFIG_PATH_MAX,                                                       \
      "HMAC secret file (whole file, one trailing newline dropped), for tokens without kid")      \
    X(jwt_hmac_alg, STR, "HS256", 1, 16, "algorithm pinned to the HMAC secret: HS256, HS384 or HS512") \
    X(issuer, STR, "", 0, JWT_STR_MAX, "when set, every token's iss must equal it; also the default namespace") \
    X(audience, STR, "", 0, JWT_STR_MAX, "when set, every token's aud must contain it")                    \
    X(leeway, INT, "30", 0, 3600, "allowed clock skew in seconds for exp, nbf and iat")          \
    X(max_token_lifetime, INT, "2592000", 60, 315360000,                                         \
      "longest exp - iat of any token issued (refresh tokens too); longer tokens are refused")    \
    X(admin_keys_file, STR, "", 0, CONFIG_PATH_MAX,                                                            \
      "admin API keys, one per line; without it admin endpoints refuse every call")              \
    X(key_prefix, STR, "revokd:", 1, STORE_KEY_PREFIX_MAX, "namespace of every Redis key (1-64 printable characters)") \
    X(threads, INT, "0", 0, 256,                                                                 \
      "event-loop threads serving HTTP, each with its own Redis connections; 0 = one per core less one, at least one") \
    X(verify_threads, INT, "0", 0, 256,                                                          \
      "threads verifying the signatures of tokens the cache does not hold; 0 = half the cores, at least one") \
    X(max_connections, INT, "1000", 4, 100000, "simultaneous HTTP connections")                  \
    X(max_connections_per_address, INT, "500", 1, 100000,                                        \
      "simultaneous HTTP connections from one client address; behind a load balancer, at least its own limit") \
    X(connection_timeout, INT, "30", 1, 3600, "idle HTTP connections are closed after this many seconds") \
    X(request_timeout, INT, "10", 1, 60,                                                         \
      "a request's head and body must arrive within this many seconds of its first byte, else the connection is closed") \
    X(max_body_bytes, INT, "16384", 256, 1048576, "largest accepted request body")               \
    X(max_token_bytes, INT, "8192", 256, 65536, "longest accepted JWT")                          \
    X(token_cache_size, INT, "100000", 0, 10000000,                                               \
      "verified tokens kept so a repeated token skips its signature check; 0 disables")           \
    X(shutdown_grace_ms, INT, "0", 0, 120000,                                                    \
      "on SIGTERM, keep serving this long with /readyz at 503 so load balancers drain the node")  \
    X(log_level, STR, "info", 1, 16, "debug, info, warn or error; requests are logged at info")

#endif
