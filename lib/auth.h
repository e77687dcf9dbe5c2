/* auth.h — bearer tokens with roles. Tokens are stored only as SHA-256 hex
 * digests (config: `token = <sha256 hex> <role> [name]`); a presented token
 * is hashed and compared with CRYPTO_memcmp against every stored digest, so
 * timing reveals nothing of which digest or how much of it matched.
 * Roles do not nest, except admin: a metrics token reads /metrics only, an
 * executor token runs code but may not read /metrics, admin may do all.
 * With no token configured auth_check refuses everything (-EACCES); whether
 * auth is on at all is the caller's call (auth_count() == 0). */
#ifndef WARMPOOL_AUTH_H
#define WARMPOOL_AUTH_H

#include <stdbool.h>
#include <stddef.h>

enum auth_role {
	AUTH_METRICS = 1,  /* scrape /metrics only */
	AUTH_EXECUTOR = 2, /* run code: /execute, sessions, Azure routes */
	AUTH_ADMIN = 4,	   /* everything */
};

/* A presented token longer than this is refused (-EACCES) without hashing. */
#define AUTH_TOKEN_MAX 4096

struct auth;

struct auth *auth_new(void);
void auth_free(struct auth *a);
/* "sha256hex role [name]" as in the config; -EINVAL on a malformed line. */
int auth_add_line(struct auth *a, const char *line);
/* Hex in either case; role one of the three; name (for logs; printable ASCII
 * without spaces, 64 bytes at most) may be NULL: "sha256:<8 hex>" then.
 * -EINVAL bad digest, role or name; -EEXIST the digest is already there. */
int auth_add(struct auth *a, const char *sha256_hex, enum auth_role role, const char *name);
size_t auth_count(const struct auth *a);
int auth_parse_role(const char *s, enum auth_role *out);
const char *auth_role_name(enum auth_role r);

/* Check an Authorization header value ("Bearer <token>", may be NULL)
 * against the role a route needs. Admin satisfies every role.
 * Returns 0 (ok; *who = the token's name), -EACCES (missing or unknown
 * token: answer 401) or -EPERM (valid token, wrong role: answer 403).
 * needed may OR several roles, any of which will do. *who is also set on
 * -EPERM (for the log), NULL on -EACCES; it lives as long as a. */
int auth_check(const struct auth *a, const char *authorization, enum auth_role needed, const char **who);

/* SHA-256 hex of a token (65 bytes out), for `poold --hash-token`. */
void auth_hash_token(const char *token, size_t len, char out[65]);

#endif
