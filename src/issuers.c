/* issuers.c - read the issuers revokd trusts from the settings or from
 * REVOKD_ISSUERS_FILE, and check them; see issuers.h.
 *
 * The file is JSON: cJSON is already a dependency, JSON has one spelling
 * for a string and a number (YAML's implicit typing turns `no` into false
 * and `1e3` into a number), and every identity provider's own documents
 * (discovery, JWKS) are JSON too. A member the format does not know is a
 * mistake, so a misspelt "audience" is not silently ignored. */
#include "revokd/issuers.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "revokd/file.h"
#include "revokd/jwks.h"
#include "revokd/jwt.h"
#include "revokd/url.h"
#include "revokd/utf8.h"

#define MAX_ISSUERS_FILE (1024 * 1024)

void issuers_mistake(struct issuers_mistakes *m, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    m->count++;
    /* Whole lines only, with room kept for issuers_mistakes_end()'s. */
    if (n < 0 || m->used + (size_t)n + 2 + 64 > m->size) {
        m->omitted++;
        return;
    }
    if (m->used > 0)
        m->err[m->used++] = '\n';
    memcpy(m->err + m->used, line, (size_t)n + 1);
    m->used += (size_t)n;
}

void issuers_mistakes_end(struct issuers_mistakes *m)
{
    if (m->omitted > 0 && m->used + 64 <= m->size)
        m->used += (size_t)snprintf(m->err + m->used, m->size - m->used, "%s... and %d more mistake(s)",
                                    m->used > 0 ? "\n" : "", m->omitted);
}

static void conf_clear(struct issuer_conf *c)
{
    free(c->iss);
    for (size_t i = 0; i < c->n_audiences; i++)
        free(c->audiences[i]);
    free(c->jwks_url);
    free(c->jwks_file);
    free(c->public_key_file);
    free(c->public_key_alg);
    free(c->hmac_secret_file);
    free(c->hmac_alg);
    memset(c, 0, sizeof(*c));
}

void issuers_free(struct issuers *is)
{
    for (size_t i = 0; is->at != NULL && i < is->n; i++)
        conf_clear(&is->at[i]);
    free(is->at);
    is->at = NULL;
    is->n = 0;
}

bool issuers_remote(const struct issuer_conf *c)
{
    return c->jwks_url != NULL || c->discovery;
}

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool issuers_same_remote(const struct issuer_conf *a, const struct issuer_conf *b)
{
    return issuers_remote(a) && issuers_remote(b) && strcmp(a->iss, b->iss) == 0 &&
           same(a->jwks_url, b->jwks_url) && a->discovery == b->discovery && a->algs == b->algs;
}

/* NULL for "" (a setting left empty), else a copy; *oom set when the copy
 * fails. */
static char *dup_set(const char *s, bool *oom)
{
    char *d;

    if (s == NULL || s[0] == '\0')
        return NULL;
    if ((d = strdup(s)) == NULL)
        *oom = true;
    return d;
}

/* The rules every issuer meets, however it was given. where prefixes each
 * mistake ("REVOKD_ISSUERS_FILE: issuers[2]"). */
static void check_conf(const struct issuer_conf *c, const char *where, struct issuers_mistakes *m)
{
    char why[256];
    int locals = (c->jwks_file != NULL) + (c->public_key_file != NULL) + (c->hmac_secret_file != NULL);

    if (c->jwks_url != NULL && c->discovery)
        issuers_mistake(m, "%s: give jwks_url or discovery, not both", where);
    if (issuers_remote(c) && locals > 0)
        issuers_mistake(m, "%s: a remote key set (jwks_url, discovery) cannot be combined with key files", where);
    if (!issuers_remote(c) && locals == 0)
        issuers_mistake(m, "%s: no keys: give jwks_url, discovery, jwks_file, public_key_file or hmac_secret_file", where);
    if (c->jwks_url != NULL && url_fetchable(c->jwks_url, why, sizeof(why)) < 0)
        issuers_mistake(m, "%s: jwks_url: %s", where, why);
    if (c->discovery && c->iss[0] == '\0')
        issuers_mistake(m, "%s: discovery needs the issuer's URL as iss", where);
    else if (c->discovery && url_fetchable(c->iss, why, sizeof(why)) < 0)
        issuers_mistake(m, "%s: discovery from iss: %s", where, why);
}

/* ---- the settings' single issuer ---- */

static int from_settings(struct issuers *out, const struct config *cfg, struct issuers_mistakes *m)
{
    struct issuer_conf *c = calloc(1, sizeof(*c));
    bool oom = false;
    char why[256];

    if (c == NULL)
        return -1;
    out->at = c;
    out->n = 1;
    c->iss = strdup(cfg->issuer);
    oom = c->iss == NULL;
    if ((c->audiences[0] = dup_set(cfg->audience, &oom)) != NULL)
        c->n_audiences = 1;
    c->leeway = cfg->leeway;
    c->max_lifetime = cfg->max_token_lifetime;
    c->jwks_url = dup_set(cfg->jwks_url, &oom);
    c->discovery = strcmp(cfg->oidc_discovery, "1") == 0;
    c->jwks_file = dup_set(cfg->jwks_file, &oom);
    c->public_key_file = dup_set(cfg->jwt_public_key_file, &oom);
    c->public_key_alg = dup_set(cfg->jwt_public_key_alg, &oom);
    c->hmac_secret_file = dup_set(cfg->jwt_hmac_secret_file, &oom);
    c->hmac_alg = dup_set(cfg->jwt_hmac_alg, &oom);
    if (oom)
        return -1;
    if (jwks_algs_parse(cfg->algorithms, &c->algs, why, sizeof(why)) < 0)
        issuers_mistake(m, "REVOKD_ALGORITHMS: %s", why);
    if (c->discovery && c->iss[0] == '\0')
        issuers_mistake(m, "REVOKD_OIDC_DISCOVERY: needs REVOKD_ISSUER, the issuer's URL");
    else if (c->jwks_url == NULL && !c->discovery && c->jwks_file == NULL && c->public_key_file == NULL &&
             c->hmac_secret_file == NULL)
        issuers_mistake(m, "no verification key: set REVOKD_JWKS_URL, REVOKD_OIDC_DISCOVERY=1, REVOKD_JWKS_FILE, "
                   "REVOKD_JWT_PUBLIC_KEY_FILE, REVOKD_JWT_HMAC_SECRET_FILE or REVOKD_ISSUERS_FILE");
    else
        check_conf(c, "REVOKD_JWKS_URL, REVOKD_OIDC_DISCOVERY and the key files", m);
    return 0;
}

/* ---- REVOKD_ISSUERS_FILE ---- */

/* A copy of path, taken relative to dir when it is relative. */
static char *resolve(const char *dir, const char *path)
{
    char *out;

    if (path[0] == '/')
        return strdup(path);
    if ((out = malloc(strlen(dir) + strlen(path) + 2)) != NULL)
        sprintf(out, "%s/%s", dir, path);
    return out;
}

static const char *const members[] = {
    "iss", "jwks_url", "discovery", "jwks_file", "public_key_file", "public_key_alg",
    "hmac_secret_file", "hmac_alg", "audiences", "algorithms", "leeway", "max_token_lifetime",
};

static bool known_member(const char *name)
{
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
        if (strcmp(name, members[i]) == 0)
            return true;
    return false;
}

/* A member that must be a string of text (1..max bytes) when present: 1
 * with *out set to a copy, 0 when absent, -1 after a mistake. */
static int text_member(const cJSON *o, const char *name, size_t max, char **out, const char *where,
                       struct issuers_mistakes *m)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (v == NULL)
        return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > max ||
        !utf8_is_text(v->valuestring, strlen(v->valuestring))) {
        issuers_mistake(m, "%s: %s must be a string of 1 to %zu bytes of text", where, name, max);
        return -1;
    }
    if ((*out = strdup(v->valuestring)) == NULL)
        return -1;
    return 1;
}

/* A key file member: its path resolved against dir, and readable. */
static void file_member(const cJSON *o, const char *name, const char *dir, char **out, const char *where,
                        struct issuers_mistakes *m)
{
    char *given = NULL;
    struct stat st;

    if (text_member(o, name, CONFIG_PATH_MAX, &given, where, m) <= 0)
        return;
    *out = resolve(dir, given);
    free(given);
    if (*out != NULL && !(stat(*out, &st) == 0 && S_ISREG(st.st_mode) && access(*out, R_OK) == 0))
        issuers_mistake(m, "%s: %s: cannot read \"%.200s\"", where, name, *out);
}

static void seconds_member(const cJSON *o, const char *name, const char *setting, int64_t *out,
                           const char *where, struct issuers_mistakes *m)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    long long min = 0, max = 0;

    if (v == NULL)
        return;
    config_bounds(setting, &min, &max);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble ||
        v->valuedouble < (double)min || v->valuedouble > (double)max) {
        issuers_mistake(m, "%s: %s must be a whole number of seconds in %lld..%lld", where, name, min, max);
        return;
    }
    *out = (int64_t)v->valuedouble;
}

static void audiences_member(const cJSON *o, struct issuer_conf *c, const char *where, struct issuers_mistakes *m)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "audiences"), *a;

    if (v == NULL)
        return;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > ISSUER_AUDIENCES_MAX) {
        issuers_mistake(m, "%s: audiences must be a list of 1 to %d strings", where, ISSUER_AUDIENCES_MAX);
        return;
    }
    cJSON_ArrayForEach(a, v) {
        if (!cJSON_IsString(a) || a->valuestring[0] == '\0' || strlen(a->valuestring) > JWT_STR_MAX ||
            !utf8_is_text(a->valuestring, strlen(a->valuestring))) {
            issuers_mistake(m, "%s: every audience must be a string of 1 to %d bytes of text", where, JWT_STR_MAX);
            return;
        }
        if ((c->audiences[c->n_audiences] = strdup(a->valuestring)) != NULL)
            c->n_audiences++;
    }
}

static void algorithms_member(const cJSON *o, struct issuer_conf *c, const char *where, struct issuers_mistakes *m)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "algorithms"), *a;
    char why[160];
    unsigned bit;

    if (v == NULL)
        return;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1) {
        issuers_mistake(m, "%s: algorithms must be a non-empty list of names such as \"RS256\"", where);
        return;
    }
    cJSON_ArrayForEach(a, v) {
        if (!cJSON_IsString(a) || strchr(a->valuestring, ',') != NULL ||
            jwks_algs_parse(a->valuestring, &bit, why, sizeof(why)) < 0 || bit == 0) {
            issuers_mistake(m, "%s: algorithms: %s", where, cJSON_IsString(a) ? why : "each must be a string");
            return;
        }
        c->algs |= bit;
    }
}

static void alg_member(const cJSON *o, const char *name, char **out, const char *where, struct issuers_mistakes *m)
{
    char why[160];
    unsigned bit;

    if (text_member(o, name, 16, out, where, m) > 0 && jwks_algs_parse(*out, &bit, why, sizeof(why)) < 0)
        issuers_mistake(m, "%s: %s: %s", where, name, why);
}

static void one_issuer(const cJSON *o, const char *dir, const struct config *cfg, struct issuer_conf *c,
                       const char *where, struct issuers_mistakes *m)
{
    const cJSON *item, *disc = cJSON_GetObjectItemCaseSensitive(o, "discovery");

    cJSON_ArrayForEach(item, o) if (!known_member(item->string))
        issuers_mistake(m, "%s: unknown member \"%.32s\"", where, item->string);
    c->leeway = cfg->leeway;
    c->max_lifetime = cfg->max_token_lifetime;
    if (text_member(o, "iss", JWT_STR_MAX, &c->iss, where, m) == 0)
        issuers_mistake(m, "%s: iss is required", where);
    if (c->iss == NULL)
        return;
    text_member(o, "jwks_url", 2048, &c->jwks_url, where, m);
    if (disc != NULL && !cJSON_IsBool(disc))
        issuers_mistake(m, "%s: discovery must be true or false", where);
    c->discovery = cJSON_IsTrue(disc);
    file_member(o, "jwks_file", dir, &c->jwks_file, where, m);
    file_member(o, "public_key_file", dir, &c->public_key_file, where, m);
    alg_member(o, "public_key_alg", &c->public_key_alg, where, m);
    file_member(o, "hmac_secret_file", dir, &c->hmac_secret_file, where, m);
    alg_member(o, "hmac_alg", &c->hmac_alg, where, m);
    if (c->hmac_secret_file != NULL && c->hmac_alg == NULL)
        c->hmac_alg = strdup("HS256");
    audiences_member(o, c, where, m);
    algorithms_member(o, c, where, m);
    seconds_member(o, "leeway", "leeway", &c->leeway, where, m);
    seconds_member(o, "max_token_lifetime", "max_token_lifetime", &c->max_lifetime, where, m);
    check_conf(c, where, m);
}

/* Settings that the file replaces must be left empty: two places for one
 * thing would leave a reader guessing which wins. */
static void check_replaced(const struct config *cfg, struct issuers_mistakes *m)
{
    const struct {
        const char *env, *value;
    } replaced[] = {
        {"REVOKD_ISSUER", cfg->issuer},
        {"REVOKD_AUDIENCE", cfg->audience},
        {"REVOKD_ALGORITHMS", cfg->algorithms},
        {"REVOKD_JWKS_URL", cfg->jwks_url},
        {"REVOKD_JWKS_FILE", cfg->jwks_file},
        {"REVOKD_JWT_PUBLIC_KEY_FILE", cfg->jwt_public_key_file},
        {"REVOKD_JWT_HMAC_SECRET_FILE", cfg->jwt_hmac_secret_file},
    };

    for (size_t i = 0; i < sizeof(replaced) / sizeof(replaced[0]); i++)
        if (replaced[i].value[0] != '\0')
            issuers_mistake(m, "%s: not used with REVOKD_ISSUERS_FILE; give it in the file", replaced[i].env);
    if (strcmp(cfg->oidc_discovery, "1") == 0)
        issuers_mistake(m, "REVOKD_OIDC_DISCOVERY: not used with REVOKD_ISSUERS_FILE; give it in the file");
}

static int from_file(struct issuers *out, const struct config *cfg, struct issuers_mistakes *m)
{
    const char *path = cfg->issuers_file;
    char why[256], where[320];
    size_t len = 0;
    char *text = file_read(path, MAX_ISSUERS_FILE, &len, why, sizeof(why));
    char *pathcopy = strdup(path);
    const char *dir = pathcopy != NULL ? dirname(pathcopy) : ".";
    cJSON *doc = NULL;
    const cJSON *list, *o;
    size_t i = 0;
    int rc = -1;

    check_replaced(cfg, m);
    if (text == NULL) {
        issuers_mistake(m, "REVOKD_ISSUERS_FILE: %s", why);
        goto out;
    }
    doc = cJSON_ParseWithLength(text, len);
    list = cJSON_GetObjectItemCaseSensitive(doc, "issuers");
    if (!cJSON_IsObject(doc) || !cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1 ||
        cJSON_GetArraySize(list) > ISSUERS_MAX) {
        issuers_mistake(m, "REVOKD_ISSUERS_FILE: \"%.200s\" is not JSON of the form {\"issuers\": [{...}, ...]} "
                   "with 1 to %d issuers", path, ISSUERS_MAX);
        rc = 0;
        goto out;
    }
    if ((out->at = calloc((size_t)cJSON_GetArraySize(list), sizeof(*out->at))) == NULL)
        goto out;
    cJSON_ArrayForEach(o, list) {
        struct issuer_conf *c = &out->at[out->n++];
        snprintf(where, sizeof(where), "REVOKD_ISSUERS_FILE: issuers[%zu]", i++);
        if (!cJSON_IsObject(o)) {
            issuers_mistake(m, "%s: must be an object", where);
            continue;
        }
        one_issuer(o, dir, cfg, c, where, m);
        for (size_t j = 0; c->iss != NULL && j + 1 < out->n; j++)
            if (out->at[j].iss != NULL && strcmp(out->at[j].iss, c->iss) == 0)
                issuers_mistake(m, "%s: iss \"%.64s\" is also issuers[%zu]", where, c->iss, j);
    }
    rc = 0;
out:
    cJSON_Delete(doc);
    if (text != NULL)
        file_free(text, len);
    free(pathcopy);
    return rc;
}

int issuers_load(struct issuers *out, const struct config *cfg, char *err, size_t errlen)
{
    struct issuers_mistakes m = {err, errlen, 0, 0, 0};
    int rc;

    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    rc = cfg->issuers_file[0] != '\0' ? from_file(out, cfg, &m) : from_settings(out, cfg, &m);
    if (rc < 0 && m.count == 0)
        issuers_mistake(&m, "out of memory reading the issuers");
    issuers_mistakes_end(&m);
    if (rc < 0 || m.count > 0) {
        issuers_free(out);
        return -1;
    }
    return 0;
}
