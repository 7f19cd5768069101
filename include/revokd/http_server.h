/* http_server.h - the HTTP front: libmicrohttpd in, struct request out.
 *
 * The only module that knows libmicrohttpd. It bounds bodies, assigns request
 * ids, hands each request to router_dispatch() and writes one log line per
 * request. */
#ifndef REVOKD_HTTP_SERVER_H
#define REVOKD_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "revokd/app.h"

struct http_server;

/* Starts listening on app->cfg->listen with app->cfg->threads workers,
 * with TLS when REVOKD_TLS_CERT_FILE is set, and on REVOKD_ADMIN_LISTEN
 * with one more when it is set. Returns NULL with one line naming the
 * setting in err. */
struct http_server *http_server_start(struct app *app, char *err, size_t errlen);

/* The bound port (useful with port 0). */
int http_server_port(const struct http_server *srv);

/* The admin listener's bound port; 0 when there is none. */
int http_server_admin_port(const struct http_server *srv);

/* Whether the main (or the admin) listener serves HTTPS. */
bool http_server_tls(const struct http_server *srv, bool admin);

/* Rereads every listener's certificate and key: new connections get them,
 * open ones keep theirs. On failure nothing changes and err names the
 * setting. Returns 0 or -1. Not concurrently with itself. */
int http_server_reload_tls(struct http_server *srv, char *err, size_t errlen);

/* Stops accepting new connections; requests in flight go on. */
void http_server_quiesce(struct http_server *srv);

/* Number of open connections. */
unsigned http_server_connections(const struct http_server *srv);

/* Closes everything and frees srv; NULL is a no-op. */
void http_server_stop(struct http_server *srv);

#endif
