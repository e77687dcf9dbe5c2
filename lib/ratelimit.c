/* ratelimit.c — see ratelimit.h. Token buckets keyed by a string.
 *
 * A bucket holds `tokens` as of `last`; it refills lazily, at rate per second
 * up to burst, when its key is next seen, so idle keys cost no timer. Buckets
 * sit in a chained hash table and in a list in order of last use, oldest
 * first. A bucket idle long enough to be full again is the same as no bucket
 * at all, so those are dropped from the old end as new keys come (a few per
 * call, amortised O(1)); when max_keys is reached anyway, the oldest goes and
 * its key starts afresh with a full bucket next time.
 *
 * Keys come from clients (session identifiers, addresses), so the table is
 * hashed with SipHash-2-4 under a random key: nobody can pick keys that pile
 * into one chain. Out of memory, a new key is let through (fails open): the
 * limiter protects the service, it must not be what takes it down. */
#include "ratelimit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cleanup.h"

/* Idle full buckets dropped per call on the way; more when at max_keys. */
#define RL_SWEEP 2
/* A client that waits exactly retry_after must get its token, whatever the
 * rounding of (now - last) * rate: a token short by less than this counts. */
#define RL_EPSILON 1e-9

struct rl_bucket {
	struct rl_bucket *chain;	 /* next in the hash slot */
	struct rl_bucket *older, *newer; /* use order */
	uint64_t hash;
	double tokens, last;
	char key[];
};

struct ratelimit {
	double rate, burst;
	size_t max_keys, n;
	struct rl_bucket **table;
	size_t table_cap; /* a power of two */
	struct rl_bucket *oldest, *newest;
	uint64_t k0, k1; /* SipHash key */
};

#define RL_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define RL_SIPROUND                                                                                                    \
	do {                                                                                                           \
		v0 += v1, v1 = RL_ROTL(v1, 13), v1 ^= v0, v0 = RL_ROTL(v0, 32);                                        \
		v2 += v3, v3 = RL_ROTL(v3, 16), v3 ^= v2;                                                              \
		v0 += v3, v3 = RL_ROTL(v3, 21), v3 ^= v0;                                                              \
		v2 += v1, v1 = RL_ROTL(v1, 17), v1 ^= v2, v2 = RL_ROTL(v2, 32);                                        \
	} while (0)

/* SipHash-2-4 (Aumasson and Bernstein), 64-bit output. */
static uint64_t rl_siphash(uint64_t k0, uint64_t k1, const unsigned char *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, full = len - len % 8;

	for (i = 0; i < full; i += 8) {
		m = 0;
		for (int j = 7; j >= 0; j--)
			m = m << 8 | in[i + j];
		v3 ^= m;
		RL_SIPROUND;
		RL_SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	RL_SIPROUND;
	RL_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	RL_SIPROUND;
	RL_SIPROUND;
	RL_SIPROUND;
	RL_SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t rl_hash(const struct ratelimit *r, const char *key)
{
	return rl_siphash(r->k0, r->k1, (const unsigned char *)key, strlen(key));
}

static struct rl_bucket *rl_find(const struct ratelimit *r, const char *key, uint64_t h)
{
	for (struct rl_bucket *b = r->table[h & (r->table_cap - 1)]; b; b = b->chain)
		if (b->hash == h && strcmp(b->key, key) == 0)
			return b;
	return NULL;
}

static void rl_list_unlink(struct ratelimit *r, struct rl_bucket *b)
{
	if (b->older)
		b->older->newer = b->newer;
	else
		r->oldest = b->newer;
	if (b->newer)
		b->newer->older = b->older;
	else
		r->newest = b->older;
	b->older = b->newer = NULL;
}

static void rl_list_append(struct ratelimit *r, struct rl_bucket *b)
{
	b->older = r->newest;
	b->newer = NULL;
	if (r->newest)
		r->newest->newer = b;
	else
		r->oldest = b;
	r->newest = b;
}

static void rl_drop(struct ratelimit *r, struct rl_bucket *b)
{
	struct rl_bucket **pp = &r->table[b->hash & (r->table_cap - 1)];

	while (*pp != b)
		pp = &(*pp)->chain;
	*pp = b->chain;
	rl_list_unlink(r, b);
	free(b);
	r->n--;
}

static void rl_clear(struct ratelimit *r)
{
	while (r->oldest)
		rl_drop(r, r->oldest);
}

/* Would this bucket be full by now? Then forgetting it changes nothing. */
static bool rl_full(const struct ratelimit *r, const struct rl_bucket *b, double now)
{
	double idle = now > b->last ? now - b->last : 0;
	return b->tokens + idle * r->rate >= r->burst;
}

/* Drop idle full buckets from the old end, at most max, stopping at the
 * first one still refilling. */
static void rl_sweep(struct ratelimit *r, double now, size_t max)
{
	while (max-- && r->oldest && rl_full(r, r->oldest, now))
		rl_drop(r, r->oldest);
}

static int rl_table_grow(struct ratelimit *r)
{
	size_t ncap = r->table_cap * 2;
	struct rl_bucket **t;

	if ((r->n + 1) * 4 <= r->table_cap * 3)
		return 0;
	t = calloc(ncap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (struct rl_bucket *b = r->oldest; b; b = b->newer) {
		struct rl_bucket **slot = &t[b->hash & (ncap - 1)];
		b->chain = *slot;
		*slot = b;
	}
	free(r->table);
	r->table = t;
	r->table_cap = ncap;
	return 0;
}

static struct rl_bucket *rl_insert(struct ratelimit *r, const char *key, uint64_t h, double now)
{
	size_t len = strlen(key);
	struct rl_bucket *b, **slot;

	if (rl_table_grow(r) < 0)
		return NULL;
	b = malloc(sizeof(*b) + len + 1);
	if (!b)
		return NULL;
	memcpy(b->key, key, len + 1);
	b->hash = h;
	b->tokens = r->burst;
	b->last = now;
	slot = &r->table[h & (r->table_cap - 1)];
	b->chain = *slot;
	*slot = b;
	rl_list_append(r, b);
	r->n++;
	return b;
}

static void rl_seed(struct ratelimit *r)
{
	uint64_t k[2];

	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
		/* Early boot without entropy: weaker, still not guessable offline. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)r;
		k[1] = (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
	}
	r->k0 = k[0];
	r->k1 = k[1];
}

struct ratelimit *ratelimit_new(double rate, double burst, size_t max_keys)
{
	struct ratelimit *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->table_cap = 16;
	r->table = calloc(r->table_cap, sizeof(*r->table));
	if (!r->table) {
		free(r);
		return NULL;
	}
	r->max_keys = max_keys ? max_keys : 1;
	rl_seed(r);
	ratelimit_set(r, rate, burst);
	return r;
}

void ratelimit_free(struct ratelimit *r)
{
	if (!r)
		return;
	rl_clear(r);
	free(r->table);
	free(r);
}

void ratelimit_set(struct ratelimit *r, double rate, double burst)
{
	/* A bucket smaller than one token would never let anything through. */
	r->rate = rate > 0 ? rate : 0;
	r->burst = burst >= 1 ? burst : 1;
	if (r->rate == 0) {
		rl_clear(r);
		return;
	}
	for (struct rl_bucket *b = r->oldest; b; b = b->newer)
		if (b->tokens > r->burst)
			b->tokens = r->burst;
}

bool ratelimit_take(struct ratelimit *r, const char *key, double now, double *retry_after)
{
	struct rl_bucket *b;
	uint64_t h;

	if (retry_after)
		*retry_after = 0;
	if (r->rate == 0)
		return true;
	rl_sweep(r, now, RL_SWEEP);
	h = rl_hash(r, key);
	b = rl_find(r, key, h);
	if (!b) {
		if (r->n >= r->max_keys)
			rl_sweep(r, now, SIZE_MAX);
		if (r->n >= r->max_keys)
			rl_drop(r, r->oldest);
		b = rl_insert(r, key, h, now);
		if (!b)
			return true;
	} else {
		if (now > b->last) {
			b->tokens += (now - b->last) * r->rate;
			if (b->tokens > r->burst)
				b->tokens = r->burst;
			b->last = now;
		}
		rl_list_unlink(r, b);
		rl_list_append(r, b);
	}
	if (b->tokens >= 1 - RL_EPSILON) {
		b->tokens -= 1;
		return true;
	}
	if (retry_after)
		*retry_after = (1 - b->tokens) / r->rate;
	return false;
}

size_t ratelimit_keys(const struct ratelimit *r)
{
	return r ? r->n : 0;
}
