/* jwt.c - parse a compact JWS strictly, verify it, check its claims.
 *
 * Order matters: the length is capped before anything is decoded, the header
 * picks a key whose pinned algorithm must match, the signature is verified
 * before the payload is parsed, and each claim's JSON type is checked here
 * rather than coerced (libjwt reads a string exp as 0). */
#include "revokd/jwt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "revokd/b64url.h"
#include "revokd/sha256.h"
#include "revokd/utf8.h"

/* 9999-12-31T23:59:59Z: any NumericDate beyond is nonsense. */
#define NUMERICDATE_MAX 253402300799.0

#define JWT_REASON_NAME(name, text) #name,
#define JWT_REASON_TEXT(name, text) text,
static const char *const reason_names[] = {"ok", JWT_REASON_TABLE(JWT_REASON_NAME)};
static const char *const reason_texts[] = {"ok", JWT_REASON_TABLE(JWT_REASON_TEXT)};

const char *jwt_reason_name(int reason)
{
    reason = abs(reason);
    return reason < JWT_REASON_COUNT ? reason_names[reason] : "unknown";
}

const char *jwt_reason_text(int reason)
{
    reason = abs(reason);
    return reason < JWT_REASON_COUNT ? reason_texts[reason] : "unknown";
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* RFC 7515 4: a JOSE header with duplicate member names must be rejected;
 * the same goes for claims, since two parsers could pick different ones. */
static int has_duplicates(const cJSON *obj)
{
    int n = cJSON_GetArraySize(obj), dup = 0;
    const char **names = n > 1 ? malloc((size_t)n * sizeof(*names)) : NULL;
    const cJSON *item;
    int i = 0;

    if (n <= 1)
        return 0;
    if (names == NULL)
        return 1;
    cJSON_ArrayForEach(item, obj) names[i++] = item->string;
    qsort(names, (size_t)n, sizeof(*names), cmp_names);
    for (i = 1; i < n && !dup; i++)
        dup = strcmp(names[i - 1], names[i]) == 0;
    free(names);
    return dup;
}

/* Decodes one segment and parses it as a JSON object. Refuses embedded NULs
 * (C strings would silently cut a claim short), trailing bytes and duplicate
 * members; text that is not UTF-8 is refused with not_utf8 (the JSON it
 * would be echoed in could not be parsed). Returns 0 with *obj set (caller
 * frees with cJSON_Delete), or -JWT_malformed or -not_utf8. */
static int decode_object(const char *seg, size_t len, unsigned char *buf, int not_utf8, cJSON **obj)
{
    long n = b64url_decode(seg, len, buf);
    const char *end = NULL;

    *obj = NULL;
    if (n <= 0)
        return -JWT_malformed;
    buf[n] = '\0';
    if (strlen((char *)buf) != (size_t)n || strcasestr((char *)buf, "\\u0000") != NULL)
        return -JWT_malformed;
    if (!utf8_valid((char *)buf, (size_t)n))
        return not_utf8;
    *obj = cJSON_ParseWithOpts((char *)buf, &end, 1);
    if (!cJSON_IsObject(*obj) || has_duplicates(*obj)) {
        cJSON_Delete(*obj);
        *obj = NULL;
        return -JWT_malformed;
    }
    return 0;
}

/* 0 when member is absent (*present false), 1 when a valid string was copied,
 * -1 when present but not a string of 1..max bytes of text (no control
 * character: it may be echoed into a log line or a header). */
static int get_text(const cJSON *obj, const char *name, size_t max, char *out, bool *present)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    *present = m != NULL;
    if (m == NULL)
        return 0;
    if (!cJSON_IsString(m))
        return -1;
    size_t len = strlen(m->valuestring);
    if (len == 0 || len > max || !utf8_is_text(m->valuestring, len))
        return -1;
    memcpy(out, m->valuestring, len + 1);
    return 1;
}

static int get_string(const cJSON *obj, const char *name, char *out, bool *present)
{
    return get_text(obj, name, JWT_STR_MAX, out, present);
}

/* Like get_string for a NumericDate: a JSON number within range. RFC 7519
 * allows fractions; they are truncated, which can only shorten validity for
 * exp by less than a second and is irrelevant at second resolution. */
static int get_time(const cJSON *obj, const char *name, int64_t *out, bool *present)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    *present = m != NULL;
    if (m == NULL)
        return 0;
    if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble) || m->valuedouble < 0 ||
        m->valuedouble > NUMERICDATE_MAX)
        return -1;
    *out = (int64_t)m->valuedouble;
    return 1;
}

static bool typ_ok(const cJSON *typ)
{
    static const char *const allowed[] = {"JWT", "application/jwt", "at+jwt", "application/at+jwt"};
    if (typ == NULL)
        return true;
    if (!cJSON_IsString(typ))
        return false;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (strcasecmp(typ->valuestring, allowed[i]) == 0)
            return true;
    return false;
}

/* The token's issuer: the one whose iss it carries, else the one that
 * takes any iss. Returns its index, or -1. */
static int find_issuer(const struct jwt_trust *t, const struct jwt_claims *c)
{
    int any = -1;

    for (size_t i = 0; i < t->n; i++) {
        const char *iss = t->issuers[i].issuer;
        if (iss[0] == '\0')
            any = (int)i;
        else if (c->has_iss && strcmp(iss, c->iss) == 0)
            return (int)i;
    }
    return any;
}

/* The header alone: a supported alg, a typ of a JWT, no crit. */
static int check_header(const cJSON *hdr)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");

    if (!cJSON_IsString(alg) || !typ_ok(cJSON_GetObjectItemCaseSensitive(hdr, "typ")) ||
        cJSON_GetObjectItemCaseSensitive(hdr, "crit") != NULL)
        return -JWT_malformed;
    if (jwks_alg_parse(alg->valuestring) < 0)
        return -JWT_algorithm_not_allowed; /* "none", "ES256K", ... */
    return 0;
}

/* Header to key: the key is found by kid among the issuer's, and its
 * pinned algorithm must equal the header's alg (check_header() passed). */
static int pick_key(const struct jwt_policy *p, const cJSON *hdr, const struct jwk **key)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    char kid[JWT_STR_MAX + 1];
    bool has_kid;

    if (get_string(hdr, "kid", kid, &has_kid) < 0)
        return -JWT_malformed;
    if (p->keys == NULL)
        return -JWT_ENOKEYS;
    switch (jwks_select(p->keys, has_kid ? kid : NULL, jwks_alg_parse(alg->valuestring), key)) {
    case 0:
        return 0;
    case -JWKS_EALG:
        return -JWT_algorithm_not_allowed;
    default:
        return -JWT_unknown_key;
    }
}

/* Whether want is one of the words of list, separated by sep. */
static bool list_has(const char *list, char sep, const char *want, size_t wlen)
{
    for (const char *p = list; *p != '\0';) {
        const char *end = strchr(p, sep);
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == wlen && memcmp(p, want, len) == 0)
            return true;
        p += len + (end != NULL);
    }
    return false;
}

bool jwt_audience_has(const struct jwt_claims *c, const char *aud)
{
    return list_has(c->aud, '\n', aud, strlen(aud));
}

bool jwt_scope_has(const struct jwt_claims *c, const char *scope, size_t len)
{
    return list_has(c->scope, ' ', scope, len);
}

static bool audience_ok(const struct jwt_claims *c, const struct jwt_policy *p)
{
    for (size_t i = 0; i < p->n_audiences; i++)
        if (jwt_audience_has(c, p->audiences[i]))
            return true;
    return p->n_audiences == 0;
}

/* aud, a string or an array of strings, joined by '\n' into out
 * (JWT_AUD_MAX + 1 bytes). false when it has another type, or a member that
 * is not text (a '\n' in one would split it), or is too long in all. */
static bool read_audience(const cJSON *aud, char *out)
{
    const cJSON *item;
    size_t used = 0;

    out[0] = '\0';
    if (aud == NULL)
        return true;
    if (!cJSON_IsString(aud) && !cJSON_IsArray(aud))
        return false;
    for (item = cJSON_IsString(aud) ? aud : aud->child; item != NULL; item = cJSON_IsString(aud) ? NULL : item->next) {
        size_t len = cJSON_IsString(item) ? strlen(item->valuestring) : 0;
        if (!cJSON_IsString(item) || !utf8_is_text(item->valuestring, len) || used + len + 1 > JWT_AUD_MAX + 1)
            return false;
        if (used > 0)
            out[used - 1] = '\n';
        memcpy(out + used, item->valuestring, len + 1);
        used += len + 1;
    }
    return true;
}

/* iss first: it chooses the issuer, and so the key. */
static int read_issuer(const cJSON *pl, struct jwt_claims *c)
{
    return get_string(pl, "iss", c->iss, &c->has_iss) < 0 ? -JWT_invalid_claims : 0;
}

static int check_claims(const struct jwt_policy *p, const cJSON *pl, struct jwt_claims *c)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(pl, "aud");
    bool has_exp, has_iat, has_jti, present;
    char jti[JWT_STR_MAX + 1];

    if (get_string(pl, "jti", jti, &has_jti) < 0 || get_string(pl, "sub", c->sub, &c->has_sub) < 0 ||
        get_time(pl, "exp", &c->exp, &has_exp) < 0 || get_time(pl, "iat", &c->iat, &has_iat) < 0 ||
        get_time(pl, "nbf", &c->nbf, &c->has_nbf) < 0 || !has_exp || !has_iat || c->exp < c->iat ||
        !read_audience(aud, c->aud) || get_text(pl, "scope", JWT_SCOPE_MAX, c->scope, &present) < 0 ||
        get_string(pl, "client_id", c->client_id, &present) < 0 ||
        (!present && get_string(pl, "azp", c->client_id, &present) < 0))
        return -JWT_invalid_claims;
    if (has_jti)
        memcpy(c->jti, jti, sizeof(jti));
    if (!audience_ok(c, p))
        return -JWT_invalid_audience;
    /* A revoke-all record lives max_lifetime + leeway; a longer-lived token
     * would outlive it and come back to life, so it is refused outright. */
    if (c->exp - c->iat > p->max_lifetime)
        return -JWT_lifetime_exceeded;
    c->leeway = p->leeway;
    return 0;
}

int jwt_verify(const struct jwt_trust *t, const char *token, size_t len, struct jwt_claims *out)
{
    const char *dot1, *dot2;
    unsigned char *buf = NULL, digest[SHA256_BYTES];
    cJSON *hdr = NULL, *payload = NULL;
    const struct jwt_policy *p;
    const struct jwk *key = NULL;
    long siglen;
    int rc;

    memset(out, 0, sizeof(*out));
    out->issuer = -1;
    if (len == 0)
        return -JWT_missing_token;
    /* Bound everything that follows before decoding a byte. */
    if (len > t->max_token_bytes)
        return -JWT_malformed;
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL ||
        dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + len)
        return -JWT_malformed;

    buf = malloc(len + 1); /* any segment decodes to fewer bytes than the token */
    if (buf == NULL)
        return -JWT_malformed;

    /* The payload is read before the signature is checked, but only its iss
     * is used, to pick the issuer and so the key; nothing else in it counts
     * until the signature has verified. */
    if ((rc = decode_object(token, (size_t)(dot1 - token), buf, -JWT_malformed, &hdr)) < 0 ||
        (rc = check_header(hdr)) < 0 ||
        (rc = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf, -JWT_invalid_claims, &payload)) < 0 ||
        (rc = read_issuer(payload, out)) < 0)
        goto out;
    rc = -JWT_invalid_issuer;
    if ((out->issuer = find_issuer(t, out)) < 0)
        goto out;
    p = &t->issuers[out->issuer];
    if ((rc = pick_key(p, hdr, &key)) < 0)
        goto out;

    rc = -JWT_malformed;
    siglen = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), buf);
    if (siglen <= 0)
        goto out;
    rc = -JWT_invalid_signature;
    if (jwks_verify(key, (const unsigned char *)token, (size_t)(dot2 - token), buf,
                   (size_t)siglen) < 0)
        goto out;
    rc = check_claims(p, payload, out);
    /* Some providers omit jti: the token is then named by what its issuer
     * signed, the signing input (header.payload), never by the signature.
     * An ECDSA signature (r, s) has a twin (r, n - s) that verifies too, so
     * anyone holding a token could mint a second spelling of it; the signed
     * bytes only its issuer can change, and strict base64url gives them one
     * spelling. High-S signatures are accepted: JOSE does not ask for low S,
     * common signers produce both, and with this id a twin names the same
     * token. */
    if (out->jti[0] == '\0') {
        sha256(token, (size_t)(dot2 - token), digest);
        memcpy(out->jti, JWT_DERIVED_PREFIX, sizeof(JWT_DERIVED_PREFIX) - 1);
        b64url_encode(digest, sizeof(digest), out->jti + sizeof(JWT_DERIVED_PREFIX) - 1);
        out->jti_derived = true;
    }

out:
    cJSON_Delete(hdr);
    cJSON_Delete(payload);
    free(buf);
    return rc;
}

int jwt_check_times(const struct jwt_claims *c, int64_t now)
{
    /* RFC 7519: reject at or after exp; leeway absorbs clock skew. */
    if (now >= c->exp + c->leeway)
        return -JWT_expired;
    if ((c->has_nbf && c->nbf > now + c->leeway) || c->iat > now + c->leeway)
        return -JWT_not_yet_valid;
    return 0;
}
