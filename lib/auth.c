/* auth.c — see auth.h. Bearer tokens for poold's API.
 *
 * Only SHA-256 digests of tokens are held, so a leaked config does not leak
 * a usable token. A presented token is hashed once; its digest is then
 * compared with CRYPTO_memcmp against every stored digest, and the matching
 * entry is picked with a mask rather than a branch, so neither how many bytes
 * of a digest matched nor where in the list the match sits shows in the time
 * taken. The role is looked at only after the whole scan. */
#include "hex.h"
#include "auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cleanup.h"

#define AUTH_DIGEST_LEN 32
#define AUTH_NAME_MAX	64

struct auth_token {
	unsigned char digest[AUTH_DIGEST_LEN];
	enum auth_role role;
	char *name;
};

struct auth {
	struct auth_token *tokens;
	size_t n, cap;
};

static const struct {
	enum auth_role role;
	const char *name;
} auth_roles[] = {
    {AUTH_METRICS, "metrics"},
    {AUTH_EXECUTOR, "executor"},
    {AUTH_ADMIN, "admin"},
};

static int auth_sha256(const void *data, size_t len, unsigned char out[AUTH_DIGEST_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != AUTH_DIGEST_LEN)
		return -EIO;
	return 0;
}

static int auth_parse_digest(const char *hex, unsigned char out[AUTH_DIGEST_LEN])
{
	if (!hex || strlen(hex) != 2 * AUTH_DIGEST_LEN)
		return -EINVAL;
	for (size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void auth_to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Names go into logs: printable ASCII without spaces, bounded. */
static bool auth_valid_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= AUTH_NAME_MAX || (unsigned char)s[n] <= ' ' || (unsigned char)s[n] > '~')
			return false;
	return n > 0;
}

struct auth *auth_new(void)
{
	return calloc(1, sizeof(struct auth));
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->tokens[i].name);
	free(a->tokens);
	free(a);
}

size_t auth_count(const struct auth *a)
{
	return a ? a->n : 0;
}

int auth_parse_role(const char *s, enum auth_role *out)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(auth_roles); i++) {
		if (strcasecmp(s, auth_roles[i].name) == 0) {
			*out = auth_roles[i].role;
			return 0;
		}
	}
	return -EINVAL;
}

const char *auth_role_name(enum auth_role r)
{
	for (size_t i = 0; i < ARRAY_SIZE(auth_roles); i++)
		if (auth_roles[i].role == r)
			return auth_roles[i].name;
	return "unknown";
}

int auth_add(struct auth *a, const char *sha256_hex, enum auth_role role, const char *name)
{
	unsigned char d[AUTH_DIGEST_LEN];
	char fallback[16];
	struct auth_token *t;
	char *copy;

	if (auth_parse_digest(sha256_hex, d) < 0 || strcmp(auth_role_name(role), "unknown") == 0)
		return -EINVAL;
	if (name && *name && !auth_valid_name(name))
		return -EINVAL;
	for (size_t i = 0; i < a->n; i++)
		if (memcmp(a->tokens[i].digest, d, sizeof(d)) == 0)
			return -EEXIST;
	if (!name || !*name) {
		/* Unnamed: the digest's first 4 bytes tell tokens apart in logs. */
		memcpy(fallback, "sha256:", 7);
		auth_to_hex(d, 4, fallback + 7);
		name = fallback;
	}
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 4;
		t = reallocarray(a->tokens, ncap, sizeof(*t));
		if (!t)
			return -ENOMEM;
		a->tokens = t;
		a->cap = ncap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	t = &a->tokens[a->n++];
	memcpy(t->digest, d, sizeof(d));
	t->role = role;
	t->name = copy;
	return 0;
}

int auth_add_line(struct auth *a, const char *line)
{
	static const char ws[] = " \t\r\n";
	cleanup_free char *copy = line ? strdup(line) : NULL;
	char *save = NULL, *hex, *role, *name;
	enum auth_role r;

	if (!line)
		return -EINVAL;
	if (!copy)
		return -ENOMEM;
	hex = strtok_r(copy, ws, &save);
	role = strtok_r(NULL, ws, &save);
	name = strtok_r(NULL, ws, &save);
	if (!hex || !role || strtok_r(NULL, ws, &save))
		return -EINVAL;
	if (auth_parse_role(role, &r) < 0)
		return -EINVAL;
	return auth_add(a, hex, r, name);
}

/* "Bearer <token>": the scheme in any case (RFC 7235), one or more spaces,
 * then a token of visible ASCII, AUTH_TOKEN_MAX bytes at most. */
static int auth_parse_bearer(const char *h, const char **tok, size_t *len)
{
	const char *end;

	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return -EACCES;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	/* Look no further than one byte past the limit, then trim trailing blanks. */
	end = h + strnlen(h, AUTH_TOKEN_MAX + 1);
	while (end > h && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end == h || (size_t)(end - h) > AUTH_TOKEN_MAX || end[strspn(end, " \t")] != '\0')
		return -EACCES;
	for (const unsigned char *p = (const unsigned char *)h; p < (const unsigned char *)end; p++)
		if (*p <= ' ' || *p > '~')
			return -EACCES;
	*tok = h;
	*len = (size_t)(end - h);
	return 0;
}

int auth_check(const struct auth *a, const char *authorization, enum auth_role needed, const char **who)
{
	unsigned char d[AUTH_DIGEST_LEN];
	const struct auth_token *t;
	const char *tok;
	size_t len, found = 0;
	unsigned int hit = 0;

	if (who)
		*who = NULL;
	if (!a || !authorization || auth_parse_bearer(authorization, &tok, &len) < 0)
		return -EACCES;
	if (auth_sha256(tok, len, d) < 0)
		return -EACCES;
	for (size_t i = 0; i < a->n; i++) {
		/* eq is 1 or 0 and selects i through a mask: no branch on the outcome. */
		unsigned int eq = CRYPTO_memcmp(d, a->tokens[i].digest, sizeof(d)) == 0;
		size_t mask = (size_t)0 - eq;
		found = (found & ~mask) | (i & mask);
		hit |= eq;
	}
	OPENSSL_cleanse(d, sizeof(d));
	if (!hit)
		return -EACCES;
	t = &a->tokens[found];
	if (who)
		*who = t->name;
	if (t->role != AUTH_ADMIN && !(t->role & needed))
		return -EPERM;
	return 0;
}

void auth_hash_token(const char *token, size_t len, char out[65])
{
	unsigned char d[AUTH_DIGEST_LEN];

	if (auth_sha256(token, len, d) < 0) {
		out[0] = '\0';
		return;
	}
	auth_to_hex(d, sizeof(d), out);
}
