/* config.c - load settings from defaults, REVOKD_* variables and --flags,
 * and check every one by its type (config.h).
 *
 * Everything is driven by the rows of config_table.h: a value that fails
 * its type's check stops start-up with one line naming the setting, as
 * redis does, before any module sees it. */
#include "revokd/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "revokd/url.h"
#include "revokd/utf8.h"

struct row {
    const char *name;
    enum config_type type;
    const char *def;
    long long min, max;
    const char *choices; /* ENUM */
    const char *help;
    size_t offset;        /* the value: char * or long long */
    size_t parsed_offset; /* LISTEN, REDIS_URL, ENDPOINTS: what was parsed out of it */
};

#define PARSED_TEXT(name) 0
#define PARSED_IP(name) 0
#define PARSED_NAME(name) 0
#define PARSED_ENUM(name) 0
#define PARSED_FILE(name) 0
#define PARSED_INT(name) 0
#define PARSED_MS(name) 0
#define PARSED_SECONDS(name) 0
#define PARSED_BYTES(name) 0
#define PARSED_LISTEN(name) offsetof(struct config, name##_addr)
#define PARSED_REDIS_URL(name) offsetof(struct config, name##_parsed)
#define PARSED_ENDPOINTS(name) offsetof(struct config, name##_parsed)
#define PARSED_URL(name) 0
#define ROW(name, type, def, min, max, choices, help)                                            \
    {#name, CONFIG_##type, def, min, max, choices, help, offsetof(struct config, name), PARSED_##type(name)},
static const struct row rows[] = {REVOKD_CONFIG_TABLE(ROW)};
#undef ROW
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static bool is_integer(enum config_type t)
{
    return t == CONFIG_INT || t == CONFIG_MS || t == CONFIG_SECONDS || t == CONFIG_BYTES;
}

static const char *unit(enum config_type t)
{
    return t == CONFIG_MS ? " ms" : t == CONFIG_SECONDS ? " s" : t == CONFIG_BYTES ? " bytes" : "";
}

/* "REVOKD_LEEWAY" or "--leeway" for a row. */
static void env_name(const struct row *r, char *out, size_t len)
{
    size_t i = (size_t)snprintf(out, len, "REVOKD_");
    for (const char *p = r->name; *p && i + 1 < len; p++)
        out[i++] = (char)toupper((unsigned char)*p);
    out[i] = '\0';
}

static void flag_name(const struct row *r, char *out, size_t len)
{
    size_t i = (size_t)snprintf(out, len, "--");
    for (const char *p = r->name; *p && i + 1 < len; p++)
        out[i++] = *p == '_' ? '-' : *p;
    out[i] = '\0';
}

/* ---- addresses ---- */

/* "host:port" or "[v6]:port" into ep; port defaults to def. */
static int parse_endpoint(const char *s, size_t len, int def, struct config_endpoint *ep)
{
    const char *end = s + len, *colon;
    size_t hostlen;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -1;
        hostlen = (size_t)(close - s - 1);
        memcpy(ep->host, s + 1, hostlen < CONFIG_HOST_MAX ? hostlen : 0);
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (close + 1 != end && colon == NULL)
            return -1;
    } else {
        colon = memchr(s, ':', len);
        hostlen = colon ? (size_t)(colon - s) : len;
        if (hostlen < CONFIG_HOST_MAX)
            memcpy(ep->host, s, hostlen);
    }
    if (hostlen == 0 || hostlen >= CONFIG_HOST_MAX)
        return -1;
    ep->host[hostlen] = '\0';
    ep->port = def;
    if (colon != NULL) {
        char digits[8];
        size_t n = (size_t)(end - colon - 1);
        char *stop;
        if (n == 0 || n >= sizeof(digits))
            return -1;
        memcpy(digits, colon + 1, n);
        digits[n] = '\0';
        long p = strtol(digits, &stop, 10);
        if (*stop != '\0' || p < 1 || p > 65535)
            return -1;
        ep->port = (int)p;
    }
    return 0;
}

/* "host:port" or "[v6]:port", the host an IP address, the port 0..65535. */
static int parse_listen(const char *s, struct config_addr *a)
{
    const char *colon = strrchr(s, ':');
    size_t hl;
    char *end;

    if (colon == NULL)
        return -1;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        s++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(a->host))
        return -1;
    memcpy(a->host, s, hl);
    a->host[hl] = '\0';
    memset(&a->ss, 0, sizeof(a->ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
    if (inet_pton(AF_INET, a->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, a->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000)
        return -1;
    *db = (int)v;
    return 0;
}

static void redis_clear(struct config_redis *r)
{
    free(r->unix_path);
    free(r->username);
    free(r->password);
    memset(r, 0, sizeof(*r));
}

/* A percent-decoded copy of len bytes of s, NULL when empty or bad. */
static char *decoded(const char *s, size_t len, int *bad)
{
    char *out = malloc(len + 1);
    long n = out != NULL ? url_decode(s, len, out, len + 1) : -1;
    if (n <= 0) {
        *bad |= n < 0;
        free(out);
        return NULL;
    }
    return out;
}

/* redis://[[user]:password@]host[:port][/db]  or  unix:///path[?db=N] */
static int parse_redis_url(const char *url, struct config_redis *r)
{
    int bad = 0;

    redis_clear(r);
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7, *q = strstr(path, "?db=");
        size_t len = q ? (size_t)(q - path) : strlen(path);
        if (path[0] != '/' || len < 2 || (q != NULL && parse_db(q + 4, &r->db) < 0))
            return -1;
        r->unix_path = strndup(path, len);
        return r->unix_path ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *rest = url + 8, *at = strrchr(rest, '@');
    if (at != NULL) {
        /* Credentials are percent-encoded in a URL ("p%40ss" is "p@ss"). */
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon == NULL)
            return -1;
        r->username = decoded(rest, (size_t)(colon - rest), &bad);
        r->password = decoded(colon + 1, (size_t)(at - colon - 1), &bad);
        if (bad)
            return -1;
        rest = at + 1;
    }
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (parse_endpoint(rest, hostlen, 6379, &r->endpoint) < 0)
        return -1;
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &r->db) < 0)
        return -1;
    return 0;
}

static int parse_endpoints(const char *list, struct config_endpoints *e)
{
    e->n = 0;
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (e->n == CONFIG_ENDPOINTS_MAX || parse_endpoint(p, len, 26379, &e->at[e->n]) < 0)
            return -1;
        e->n++;
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

/* ---- one value ---- */

static bool choice_ok(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return true;
        if (bar == NULL)
            return false;
        p = bar + 1;
    }
}

static bool name_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s <= ' ' || *s > '~')
            return false;
    return true;
}

/* Checks a text value by its row's type, parsing what there is to parse.
 * Returns NULL, or what is wrong with it. */
static const char *check_text(struct config *cfg, const struct row *r, const char *value, char *why,
                              size_t size)
{
    size_t n = strlen(value);
    void *parsed = (char *)cfg + r->parsed_offset;
    struct stat st;

    if (n > (size_t)r->max) {
        snprintf(why, size, "%zu bytes long; at most %lld allowed", n, r->max);
        return why;
    }
    if (n < (size_t)r->min)
        return "must not be empty";
    switch (r->type) {
    case CONFIG_TEXT:
        return utf8_is_text(value, n) ? NULL : "must be UTF-8 text without control characters";
    case CONFIG_NAME:
        return name_ok(value) ? NULL : "must be printable ASCII without spaces";
    case CONFIG_ENUM:
        if (choice_ok(r->choices, value))
            return NULL;
        snprintf(why, size, "\"%.32s\" is not one of %s", value, r->choices);
        return why;
    case CONFIG_FILE:
        if (n == 0 || (stat(value, &st) == 0 && S_ISREG(st.st_mode) && access(value, R_OK) == 0))
            return NULL;
        snprintf(why, size, "cannot read \"%.200s\": %s", value,
                 errno != 0 ? strerror(errno) : "not a regular file");
        return why;
    case CONFIG_LISTEN:
        if (n == 0) { /* none, when min is 0 */
            memset(parsed, 0, sizeof(struct config_addr));
            return NULL;
        }
        if (parse_listen(value, parsed) == 0)
            return NULL;
        snprintf(why, size, "expected IP:port or [IPv6]:port, got \"%.64s\"", value);
        return why;
    case CONFIG_REDIS_URL:
        return parse_redis_url(value, parsed) == 0
                   ? NULL
                   : "expected redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]";
    case CONFIG_ENDPOINTS:
        if (parse_endpoints(value, parsed) == 0)
            return NULL;
        snprintf(why, size, "expected host:port[,host:port...] (at most %d)", CONFIG_ENDPOINTS_MAX);
        return why;
    case CONFIG_URL:
        return n == 0 || url_fetchable(value, why, size) == 0 ? NULL : why;
    case CONFIG_IP: {
        unsigned char ip[sizeof(struct in6_addr)];
        return n == 0 || inet_pton(AF_INET, value, ip) == 1 || inet_pton(AF_INET6, value, ip) == 1
                   ? NULL
                   : "expected an IPv4 or IPv6 address";
    }
    default:
        return "not a text setting";
    }
}

static int set_value(struct config *cfg, const struct row *r, const char *value, char *err, size_t errlen)
{
    char *field = (char *)cfg + r->offset;
    char env[64], why[320];

    env_name(r, env, sizeof(env));
    if (!is_integer(r->type)) {
        const char *wrong;
        errno = 0;
        if ((wrong = check_text(cfg, r, value, why, sizeof(why))) != NULL) {
            snprintf(err, errlen, "%s: %s", env, wrong);
            return -1;
        }
        char *copy = strdup(value);
        if (copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }

    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    /* strtoll would also take " 30" and "+30"; a setting is digits only. */
    if (!isdigit((unsigned char)value[0]) && !(value[0] == '-' && isdigit((unsigned char)value[1])))
        end = (char *)value;
    if (errno != 0 || end == value || *end != '\0' || v < r->min || v > r->max) {
        snprintf(err, errlen, "%s: not an integer in [%lld, %lld]%s: \"%.64s\"", env, r->min, r->max,
                 unit(r->type), value);
        return -1;
    }
    *(long long *)field = v;
    return 0;
}

static const struct row *find_flag(const char *arg, size_t len)
{
    char flag[64];
    for (size_t i = 0; i < NROWS; i++) {
        flag_name(&rows[i], flag, sizeof(flag));
        if (strlen(flag) == len && memcmp(flag, arg, len) == 0)
            return &rows[i];
    }
    return NULL;
}

/* The settings of REVOKD_MODE=edge, which hold only together: the feed
 * and its key, central's admin listener as an address alone, and a stream
 * silence well within the staleness bound. A central node given them would
 * silently ignore them. */
static int check_mode(const struct config *cfg, char *err, size_t errlen)
{
    static const char suffix[] = "/v1/events";
    size_t n = strlen(cfg->feed_url), slen = sizeof(suffix) - 1;
    const char *admin = strstr(cfg->central_admin_url, "://");

    if (strcmp(cfg->mode, "edge") != 0) {
        if (cfg->feed_url[0] != '\0' || cfg->feed_key_file[0] != '\0' || cfg->central_admin_url[0] != '\0') {
            snprintf(err, errlen, "REVOKD_FEED_URL, REVOKD_FEED_KEY_FILE and REVOKD_CENTRAL_ADMIN_URL are for REVOKD_MODE=edge");
            return -1;
        }
        return 0;
    }
    if (n == 0)
        snprintf(err, errlen, "REVOKD_FEED_URL: REVOKD_MODE=edge needs the central service's /v1/events URL");
    else if (n < slen || strcmp(cfg->feed_url + n - slen, suffix) != 0 || strchr(cfg->feed_url, '?') != NULL)
        snprintf(err, errlen, "REVOKD_FEED_URL: must end with %s, without a query", suffix);
    else if (cfg->central_admin_url[0] != '\0' && (admin == NULL || admin[3 + strcspn(admin + 3, "/?#")] != '\0'))
        snprintf(err, errlen, "REVOKD_CENTRAL_ADMIN_URL: scheme://host:port only, without a path or query");
    else if (cfg->feed_key_file[0] == '\0')
        snprintf(err, errlen, "REVOKD_FEED_KEY_FILE: REVOKD_MODE=edge needs the key central accepts for its feed");
    else if (cfg->edge_poll_wait * 1000 * 2 > cfg->edge_max_staleness_ms)
        snprintf(err, errlen,
                 "REVOKD_EDGE_POLL_WAIT: %lld s is more than half of REVOKD_EDGE_MAX_STALENESS_MS (%lld ms): a "
                 "quiet feed must answer well within it",
                 cfg->edge_poll_wait, cfg->edge_max_staleness_ms);
    else
        return 0;
    return -1;
}

int config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    char env[64];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NROWS; i++) {
        env_name(&rows[i], env, sizeof(env));
        const char *v = getenv(env);
        if (set_value(cfg, &rows[i], rows[i].def, err, errlen) < 0 ||
            (v != NULL && set_value(cfg, &rows[i], v, err, errlen) < 0))
            return -1;
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct row *r = strncmp(arg, "--", 2) == 0 ? find_flag(arg, len) : NULL;
        const char *value;

        if (r == NULL) {
            snprintf(err, errlen, "unknown argument \"%.64s\" (see --help)", arg);
            return -1;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "%.64s needs a value", arg);
            return -1;
        }
        if (set_value(cfg, r, value, err, errlen) < 0)
            return -1;
    }
    return check_mode(cfg, err, errlen);
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (is_integer(rows[i].type))
            continue;
        char **field = (char **)((char *)cfg + rows[i].offset);
        free(*field);
        *field = NULL;
        if (rows[i].type == CONFIG_REDIS_URL)
            redis_clear((struct config_redis *)((char *)cfg + rows[i].parsed_offset));
    }
}

/* ---- what the table says ---- */

int config_bounds(const char *name, long long *min, long long *max)
{
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(rows[i].name, name) == 0 && is_integer(rows[i].type)) {
            *min = rows[i].min;
            *max = rows[i].max;
            return 0;
        }
    return -1;
}

/* The bounds of a row, as help shows them, in out. */
static const char *bounds(const struct row *r, char *out, size_t size)
{
    if (is_integer(r->type))
        snprintf(out, size, "%lld..%lld%s", r->min, r->max, unit(r->type));
    else if (r->type == CONFIG_ENUM)
        snprintf(out, size, "one of %s", r->choices[0] == '|' ? r->choices + 1 : r->choices);
    else
        snprintf(out, size, "at most %lld bytes", r->max);
    return out;
}

void config_print_help(FILE *out)
{
    char env[64], flag[64], b[160];

    fprintf(out, "usage: revokd [--setting value ...]\n\n"
                 "Every setting is an environment variable and a flag; a flag wins.\n\n");
    for (size_t i = 0; i < NROWS; i++) {
        env_name(&rows[i], env, sizeof(env));
        flag_name(&rows[i], flag, sizeof(flag));
        fprintf(out, "  %s, %s\n      %s (default: \"%s\", %s)\n", env, flag, rows[i].help,
                rows[i].def, bounds(&rows[i], b, sizeof(b)));
    }
    fprintf(out, "\nOther modes:\n"
                 "  --version                    print the version\n"
                 "  --routes                     print the route table (method path)\n"
                 "  --config-markdown            print the settings as a Markdown table\n"
                 "  --config-env [REVOKD_X=v...] print an environment file of every setting\n"
                 "  --config-json                print the settings as JSON\n"
                 "  --key-name jti|sub ISS ID    print the Redis key for a jti or subject\n");
}

void config_print_markdown(FILE *out)
{
    char env[64], flag[64], b[160];

    fprintf(out, "| Variable | Flag | Default | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NROWS; i++) {
        env_name(&rows[i], env, sizeof(env));
        flag_name(&rows[i], flag, sizeof(flag));
        fprintf(out, "| `%s` | `%s` | ", env, flag);
        if (rows[i].def[0] != '\0')
            fprintf(out, "`%s`", rows[i].def);
        else
            fprintf(out, "(none)");
        fprintf(out, " | %s (%s) |\n", rows[i].help, bounds(&rows[i], b, sizeof(b)));
    }
}

void config_print_env(FILE *out, char *const *set)
{
    char env[64], b[160];

    fprintf(out, "# revokd's settings, for systemd's EnvironmentFile= (KEY=value, no quotes, no\n"
                 "# expansion, '#' only at the start of a line). Written by `revokd --config-env`\n"
                 "# with the values set below; every other setting is shown commented out at its\n"
                 "# default. Each can also be given as a flag (revokd --help). A bad value stops\n"
                 "# revokd with status 2 and one line naming the setting.\n");
    for (size_t i = 0; i < NROWS; i++) {
        const char *value = NULL;
        env_name(&rows[i], env, sizeof(env));
        size_t n = strlen(env);
        for (char *const *s = set; s != NULL && *s != NULL; s++)
            if (strncmp(*s, env, n) == 0 && (*s)[n] == '=')
                value = *s + n + 1;
        fprintf(out, "\n# %s (%s)\n", rows[i].help, bounds(&rows[i], b, sizeof(b)));
        if (value != NULL)
            fprintf(out, "%s=%s\n", env, value);
        else
            fprintf(out, "#%s=%s\n", env, rows[i].def);
    }
}

void config_print_json(FILE *out)
{
    static const char *const types[] = {
        [CONFIG_TEXT] = "text", [CONFIG_NAME] = "name", [CONFIG_ENUM] = "enum",
        [CONFIG_FILE] = "file", [CONFIG_INT] = "integer", [CONFIG_MS] = "milliseconds",
        [CONFIG_SECONDS] = "seconds", [CONFIG_BYTES] = "bytes", [CONFIG_LISTEN] = "listen",
        [CONFIG_REDIS_URL] = "redis_url", [CONFIG_ENDPOINTS] = "endpoints", [CONFIG_URL] = "url",
        [CONFIG_IP] = "ip",
    };
    char env[64], flag[64];
    cJSON *all = cJSON_CreateArray();

    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        env_name(r, env, sizeof(env));
        flag_name(r, flag, sizeof(flag));
        cJSON_AddStringToObject(o, "env", env);
        cJSON_AddStringToObject(o, "flag", flag);
        cJSON_AddStringToObject(o, "type", types[r->type]);
        cJSON_AddStringToObject(o, "default", r->def);
        cJSON_AddNumberToObject(o, "min", (double)r->min);
        cJSON_AddNumberToObject(o, "max", (double)r->max);
        if (r->choices != NULL)
            cJSON_AddStringToObject(o, "choices", r->choices);
        cJSON_AddStringToObject(o, "help", r->help);
        cJSON_AddItemToArray(all, o);
    }
    char *text = cJSON_Print(all);
    if (text != NULL)
        fprintf(out, "%s\n", text);
    free(text);
    cJSON_Delete(all);
}
