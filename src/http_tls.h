/* http_tls.h - a listener's certificate and key for libmicrohttpd's GnuTLS,
 * swapped on reload without dropping a connection. Private to the HTTP
 * front (http_server.c).
 *
 * libmicrohttpd 0.9.75 reads a certificate given in memory once, when its
 * daemon starts; a new one would need new daemons and new sockets. Instead
 * each handshake asks http_tls_retrieve() (MHD_OPTION_HTTPS_CERT_CALLBACK),
 * which answers the credentials in force for the listener of the calling
 * thread: a reload only swaps a pointer. Connections already open keep the
 * session they negotiated. */
#ifndef REVOKD_HTTP_TLS_H
#define REVOKD_HTTP_TLS_H

#include <stddef.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

/* TLS 1.2 and 1.3 only, GnuTLS's usual ciphers within them. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct http_tls;

/* Loads cert_file (PEM, the server's certificate first, then its chain)
 * and key_file (its PEM private key), checking that they belong together.
 * cert_setting and key_setting name them in messages ("REVOKD_TLS_CERT_FILE").
 * Returns NULL with one line naming the setting in err. The strings must
 * outlive the object. */
struct http_tls *http_tls_new(const char *cert_file, const char *key_file, const char *cert_setting,
                              const char *key_setting, char *err, size_t errlen);

/* Reads both files again; on success new handshakes use them, on failure
 * (err says why) nothing changes. Only one thread may reload at a time. */
int http_tls_reload(struct http_tls *t, char *err, size_t errlen);

/* The listener whose handshakes the calling thread runs (a worker's). */
void http_tls_bind_thread(struct http_tls *t);

/* A gnutls_certificate_retrieve_function2 answering the calling thread's
 * credentials. */
int http_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                      unsigned int *pcert_length, gnutls_privkey_t *privkey);

/* Frees t and every credential it ever held; NULL is a no-op. Only once no
 * handshake can run (the daemons stopped). */
void http_tls_free(struct http_tls *t);

#endif
