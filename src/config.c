/* config.c - load settings from defaults, REVOKD_* variables and --flags.
 *
 * Everything is driven by the rows of config_table.h. A value that fails to
 * parse stops start-up with one line naming the setting, as redis does. */
#include "revokd/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum row_type { ROW_STR, ROW_INT };

struct row {
    const char *name;
    enum row_type type;
    const char *def;
    long long min, max;
    const char *help;
    size_t offset;
};

#define ROW(name, type, def, min, max, help) \
    {#name, ROW_##type, def, min, max, help, offsetof(struct config, name)},
static const struct row rows[] = {REVOKD_CONFIG_TABLE(ROW)};
#undef ROW
#define NROWS (sizeof(rows) / sizeof(rows[0]))

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

static int set_value(struct config *cfg, const struct row *r, const char *value,
                     char *err, size_t errlen)
{
    char *field = (char *)cfg + r->offset;
    char env[64];

    if (r->type == ROW_STR) {
        size_t n = strlen(value);
        if (n < (size_t)r->min || n > (size_t)r->max) {
            env_name(r, env, sizeof(env));
            if (n == 0)
                snprintf(err, errlen, "%s: must not be empty", env);
            else
                snprintf(err, errlen, "%s: %zu bytes long; at most %lld allowed", env, n, r->max);
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
        env_name(r, env, sizeof(env));
        snprintf(err, errlen, "%s: not an integer in [%lld, %lld]: \"%.64s\"", env, r->min,
                 r->max, value);
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
    return 0;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].type == ROW_STR) {
            char **field = (char **)((char *)cfg + rows[i].offset);
            free(*field);
            *field = NULL;
        }
    }
}

void config_print_help(FILE *out)
{
    char env[64], flag[64];

    fprintf(out, "usage: revokd [--setting value ...]\n\n"
                 "Every setting is an environment variable and a flag; a flag wins.\n\n");
    for (size_t i = 0; i < NROWS; i++) {
        env_name(&rows[i], env, sizeof(env));
        flag_name(&rows[i], flag, sizeof(flag));
        fprintf(out, "  %s, %s\n      %s (default: \"%s\"", env, flag, rows[i].help, rows[i].def);
        if (rows[i].type == ROW_INT)
            fprintf(out, ", range %lld..%lld", rows[i].min, rows[i].max);
        else
            fprintf(out, ", at most %lld bytes", rows[i].max);
        fprintf(out, ")\n");
    }
    fprintf(out, "\nOther modes:\n"
                 "  --version                    print the version\n"
                 "  --routes                     print the route table (method path)\n"
                 "  --config-markdown            print the settings as a Markdown table\n"
                 "  --key-name jti|sub ISS ID    print the Redis key for a jti or subject\n");
}

void config_print_markdown(FILE *out)
{
    char env[64], flag[64];

    fprintf(out, "| Variable | Flag | Default | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NROWS; i++) {
        env_name(&rows[i], env, sizeof(env));
        flag_name(&rows[i], flag, sizeof(flag));
        if (rows[i].def[0] != '\0')
            fprintf(out, "| `%s` | `%s` | `%s` | %s", env, flag, rows[i].def, rows[i].help);
        else
            fprintf(out, "| `%s` | `%s` | (none) | %s", env, flag, rows[i].help);
        if (rows[i].type == ROW_INT)
            fprintf(out, " (%lld..%lld)", rows[i].min, rows[i].max);
        else
            fprintf(out, " (at most %lld bytes)", rows[i].max);
        fprintf(out, " |\n");
    }
}
