/* config.h — value parsers shared by every INI file warmpool reads (inih
 * does the file syntax). Each returns 0 or -EINVAL / -ERANGE. */
#ifndef WARMPOOL_CONFIG_H
#define WARMPOOL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/* "4096", "64k", "16M", "1G" (binary units, case-insensitive, optional "iB"/"B"). */
int config_parse_size(const char *s, uint64_t *out);
/* "1500ms", "10s", "5m", "2h", a bare number is seconds; result in ms. */
int config_parse_duration_ms(const char *s, uint64_t *out);
int config_parse_bool(const char *s, bool *out);
/* Decimal integer within [min, max]. */
int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Split a command line on blanks, honouring '…' and "…" quotes. argv is
 * NULL-terminated; free with config_argv_free. */
int config_split_argv(const char *s, char ***argv_out);
void config_argv_free(char **argv);
#include "error.h"

/* Parse an INI file with inih, calling fn for every key. fn returns 0, or
 * -ENOENT for a key it does not know, or another -errno for a bad value; it
 * may fill err itself for a better message. The first failure stops the
 * parse and ends up in err as "file: unknown key `k` in [s]" or
 * "file: [s] k: bad value `v`". Returns 0, -ENOENT (no file) or -EINVAL. */
typedef int (*config_key_fn)(void *ctx, const char *section, const char *key, const char *value, struct wp_error *err);
int config_load_ini(const char *path, config_key_fn fn, void *ctx, struct wp_error *err);

/* Replace *dst with a copy of v (the old string is freed). 0 or -ENOMEM. */
int config_set_str(char **dst, const char *v);

#endif
