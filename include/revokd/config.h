/* config.h - revokd's settings, from REVOKD_* variables and --flags.
 *
 * The rows live in config_table.h; each has a type, and config.c parses and
 * checks every value by its type, so that a setting that passes
 * config_load() is one the rest of revokd can use as it is: a text within
 * its bounds, an address already parsed, a file that can be read. What a
 * file holds (keys, admin keys) is checked by the module that reads it. */
#ifndef REVOKD_CONFIG_H
#define REVOKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "revokd/config_table.h"

enum config_type {
    CONFIG_TEXT,      /* min..max bytes of UTF-8 text without control characters */
    CONFIG_NAME,      /* min..max bytes of printable ASCII without spaces */
    CONFIG_ENUM,      /* one of the row's choices */
    CONFIG_FILE,      /* "" (none), or a path of at most max bytes to a readable file */
    CONFIG_INT,       /* an integer in min..max */
    CONFIG_MS,        /* the same, in milliseconds */
    CONFIG_SECONDS,   /* the same, in seconds */
    CONFIG_BYTES,     /* the same, in bytes */
    CONFIG_LISTEN,    /* IP:port or [IPv6]:port, parsed into NAME_addr */
    CONFIG_REDIS_URL, /* a Redis URL, parsed into NAME_parsed */
    CONFIG_ENDPOINTS, /* host:port,... (at most CONFIG_ENDPOINTS_MAX), parsed into NAME_parsed */
    CONFIG_URL,       /* "" (none), or a URL revokd may fetch from (url_fetchable()) */
    CONFIG_IP,        /* "" (none), or an IPv4 or IPv6 address */
};

#define CONFIG_HOST_MAX 256
#define CONFIG_ENDPOINTS_MAX 8

struct config_endpoint {
    char host[CONFIG_HOST_MAX];
    int port;
};

/* A listening address. */
struct config_addr {
    struct sockaddr_storage ss;
    char host[64]; /* the address without brackets */
};

/* redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]. */
struct config_redis {
    struct config_endpoint endpoint; /* when unix_path is NULL */
    char *unix_path;
    char *username, *password; /* percent-decoded; NULL when absent */
    int db;
};

struct config_endpoints {
    struct config_endpoint at[CONFIG_ENDPOINTS_MAX];
    int n;
};

#define CFG_FIELD_TEXT(name) char *name;
#define CFG_FIELD_NAME(name) char *name;
#define CFG_FIELD_ENUM(name) char *name;
#define CFG_FIELD_FILE(name) char *name;
#define CFG_FIELD_INT(name) long long name;
#define CFG_FIELD_MS(name) long long name;
#define CFG_FIELD_SECONDS(name) long long name;
#define CFG_FIELD_BYTES(name) long long name;
#define CFG_FIELD_LISTEN(name) char *name; struct config_addr name##_addr;
#define CFG_FIELD_REDIS_URL(name) char *name; struct config_redis name##_parsed;
#define CFG_FIELD_ENDPOINTS(name) char *name; struct config_endpoints name##_parsed;
#define CFG_FIELD_URL(name) char *name;
#define CFG_FIELD_IP(name) char *name;
#define CFG_FIELD(name, type, def, min, max, choices, help) CFG_FIELD_##type(name)

struct config {
    REVOKD_CONFIG_TABLE(CFG_FIELD)
};

#undef CFG_FIELD

/* Fill cfg from the defaults, then the environment, then argv[1..argc-1]
 * (--name=value or --name value). Returns 0, or -1 with one line naming the
 * setting in err. Arguments that are not flags are an error too. The caller
 * frees with config_free(), after either. */
int config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
void config_free(struct config *cfg);

/* The bounds of the integer setting name ("leeway"), for values of the same
 * meaning given elsewhere (an issuer in REVOKD_ISSUERS_FILE). -1 when name
 * is not an integer setting. */
int config_bounds(const char *name, long long *min, long long *max);

/* --help. */
void config_print_help(FILE *out);
/* The README's configuration table, so the two cannot drift apart. */
void config_print_markdown(FILE *out);
/* An environment file for systemd's EnvironmentFile=, every setting with
 * its help as a comment: the ones in set (NULL-terminated "REVOKD_X=value"
 * strings) with their value, the others commented out at their default. */
void config_print_env(FILE *out, char *const *set);
/* Every setting as JSON: [{"env", "flag", "type", "default", "min", "max",
 * "choices", "help"}], for tools and tests. */
void config_print_json(FILE *out);

#endif
