/* ratelimit.h — token buckets keyed by a string (a session identifier, a
 * client address). Bounded: at most max_keys buckets; idle full buckets are
 * evicted first, and past the bound the oldest bucket goes. */
#ifndef WARMPOOL_RATELIMIT_H
#define WARMPOOL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct ratelimit;

/* rate: tokens per second; burst: bucket size. rate 0 = unlimited (no key
 * is stored). burst below 1 is taken as 1, max_keys 0 as 1. A new key starts
 * with a full bucket. NULL without memory. ratelimit_set keeps the buckets
 * (their tokens capped at the new burst) unless the new rate is 0. */
struct ratelimit *ratelimit_new(double rate, double burst, size_t max_keys);
void ratelimit_free(struct ratelimit *r);
void ratelimit_set(struct ratelimit *r, double rate, double burst);
/* Take one token for key at time now (seconds). False: over the limit, and
 * *retry_after (seconds until a token is there) is set when not NULL.
 * now: any clock that does not go back (CLOCK_MONOTONIC, ev_now); key is
 * copied. Without memory for a new key the call succeeds (fails open). */
bool ratelimit_take(struct ratelimit *r, const char *key, double now, double *retry_after);
size_t ratelimit_keys(const struct ratelimit *r);

#endif
