/* config.h - revokd's settings, from REVOKD_* variables and --flags.
 *
 * The rows live in config_table.h; this header only exposes the struct they
 * generate and the loader. Semantic checks of a value (is the URL a URL, does
 * the key file parse) belong to the module that uses it. */
#ifndef REVOKD_CONFIG_H
#define REVOKD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "revokd/config_table.h"

#define CFG_TYPE_STR char *
#define CFG_TYPE_INT long long
#define CFG_FIELD(name, type, def, min, max, help) CFG_TYPE_##type name;

struct config {
    REVOKD_CONFIG_TABLE(CFG_FIELD)
};

#undef CFG_FIELD

/* Fill cfg from the defaults, then the environment, then argv[1..argc-1]
 * (--name=value or --name value). Returns 0, or -1 with one line naming the
 * setting in err. Arguments that are not flags are an error too. The caller
 * frees with config_free(). */
int config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
void config_free(struct config *cfg);

void config_print_help(FILE *out);
/* The README's configuration table, so the two cannot drift apart. */
void config_print_markdown(FILE *out);

#endif
