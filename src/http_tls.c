/* http_tls.c - a listener's certificate and key, loaded, checked and
 * swapped on reload; see http_tls.h. */
#include "http_tls.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Certificates in one chain file: the server's and its intermediates. */
#define CHAIN_MAX 16

/* One loading of the two files. */
struct creds {
    gnutls_pcert_st pcert[CHAIN_MAX];
    unsigned n;
    gnutls_privkey_t key;
    struct creds *older;
};

struct http_tls {
    const char *cert_file, *key_file, *cert_setting, *key_setting;
    /* Written by the reloading thread alone, read by every handshake. A
     * handshake may hold the credentials it was given for several rounds,
     * and GnuTLS does not say when it lets go, so older credentials are
     * kept, not freed, until the listener stops: a few kilobytes per reload. */
    _Atomic(struct creds *) current;
};

static _Thread_local struct http_tls *thread_tls;

static void creds_free(struct creds *c)
{
    if (c == NULL)
        return;
    for (unsigned i = 0; i < c->n; i++)
        gnutls_pcert_deinit(&c->pcert[i]);
    if (c->key != NULL)
        gnutls_privkey_deinit(c->key);
    free(c);
}

static int read_file(const char *path, const char *setting, gnutls_datum_t *d, char *err, size_t errlen)
{
    int rc = gnutls_load_file(path, d);
    if (rc < 0)
        snprintf(err, errlen, "%s: cannot read \"%.200s\": %s", setting, path, gnutls_strerror(rc));
    return rc < 0 ? -1 : 0;
}

/* Returns new credentials, or NULL with one line naming the setting in err. */
static struct creds *creds_load(const struct http_tls *t, char *err, size_t errlen)
{
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    gnutls_certificate_credentials_t check = NULL;
    struct creds *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL) {
        snprintf(err, errlen, "out of memory for %s", t->cert_setting);
        goto fail;
    }
    if (read_file(t->cert_file, t->cert_setting, &cert, err, errlen) < 0 ||
        read_file(t->key_file, t->key_setting, &key, err, errlen) < 0)
        goto fail;
    c->n = CHAIN_MAX;
    if ((rc = gnutls_pcert_list_import_x509_raw(c->pcert, &c->n, &cert, GNUTLS_X509_FMT_PEM, 0)) < 0 ||
        c->n == 0) {
        c->n = 0;
        snprintf(err, errlen, "%s: \"%.200s\" holds no usable PEM certificate (at most %d): %s", t->cert_setting,
                 t->cert_file, CHAIN_MAX, rc < 0 ? gnutls_strerror(rc) : "none found");
        goto fail;
    }
    if ((rc = gnutls_privkey_init(&c->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errlen, "%s: \"%.200s\" holds no usable unencrypted PEM private key: %s", t->key_setting,
                 t->key_file, gnutls_strerror(rc));
        goto fail;
    }
    /* GnuTLS's own test that the key is the certificate's. */
    if ((rc = gnutls_certificate_allocate_credentials(&check)) < 0 ||
        (rc = gnutls_certificate_set_x509_key_mem2(check, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errlen, "%s: the key in \"%.200s\" does not fit the certificate of %s: %s", t->key_setting,
                 t->key_file, t->cert_setting, gnutls_strerror(rc));
        goto fail;
    }
    gnutls_certificate_free_credentials(check);
    gnutls_memset(key.data, 0, key.size);
    gnutls_free(key.data);
    gnutls_free(cert.data);
    return c;

fail:
    if (check != NULL)
        gnutls_certificate_free_credentials(check);
    if (key.data != NULL) {
        gnutls_memset(key.data, 0, key.size);
        gnutls_free(key.data);
    }
    gnutls_free(cert.data);
    creds_free(c);
    return NULL;
}

struct http_tls *http_tls_new(const char *cert_file, const char *key_file, const char *cert_setting,
                              const char *key_setting, char *err, size_t errlen)
{
    struct http_tls *t = calloc(1, sizeof(*t));
    struct creds *c;

    if (t == NULL) {
        snprintf(err, errlen, "out of memory for %s", cert_setting);
        return NULL;
    }
    *t = (struct http_tls){cert_file, key_file, cert_setting, key_setting, NULL};
    if ((c = creds_load(t, err, errlen)) == NULL) {
        free(t);
        return NULL;
    }
    atomic_store(&t->current, c);
    return t;
}

int http_tls_reload(struct http_tls *t, char *err, size_t errlen)
{
    struct creds *c = creds_load(t, err, errlen);

    if (c == NULL)
        return -1;
    c->older = atomic_load(&t->current);
    atomic_store(&t->current, c);
    return 0;
}

void http_tls_bind_thread(struct http_tls *t)
{
    thread_tls = t;
}

int http_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                      unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    struct creds *c = thread_tls != NULL ? atomic_load(&thread_tls->current) : NULL;
    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;

    if (c == NULL)
        return -1; /* a handshake on a thread of no TLS listener: a broken invariant, refused */
    /* GnuTLS neither frees nor changes what it is given here. */
    *pcert = c->pcert;
    *pcert_length = c->n;
    *privkey = c->key;
    return 0;
}

void http_tls_free(struct http_tls *t)
{
    if (t == NULL)
        return;
    for (struct creds *c = atomic_load(&t->current), *older; c != NULL; c = older) {
        older = c->older;
        creds_free(c);
    }
    free(t);
}
