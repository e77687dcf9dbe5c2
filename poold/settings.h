/* settings.h — poold.conf (see config/poold.conf for every key, commented).
 *
 *   [poold]        listen, log level, bounds, default pool, queueing
 *   [rate_limit]   per session identifier and per client address
 *   [auth]         token = <sha256 hex> <role> [name]   (repeatable)
 *   [node:NAME]    url = unix:/run/warmpool/sandboxd.sock | http://host:port
 *                  or dns = host:port [dns_interval = 10s]: one node per A/AAAA record
 *   [pool:NAME]    language, warm, max, idle_timeout, max_lifetime, stateful, limits */
#ifndef POOLD_SETTINGS_H
#define POOLD_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "error.h"
#include "log.h"

struct pool_conf {
	char *name;
	char *language;
	uint64_t warm;
	uint64_t max;
	bool warm_auto;	   /* warm = auto: the run_slots of the nodes with the language */
	unsigned warm_pct; /* warm = N% (1-100): N% of their capacity, at least auto (warm_auto set) */
	bool max_auto;	   /* max = auto: the capacity of the nodes with the language */
	uint64_t idle_timeout_ms;
	uint64_t max_lifetime_ms;
	json_t *limits; /* per-run limits sent to sandboxd ({"cpu_ms": …}), may be empty */
	bool stateful;	/* slots start the language's interpreter (Azure code/execute) */
	struct pool_conf *next;
};

struct node_conf {
	char *name;
	char *url;		  /* "dns:HOST:PORT" for a DNS-discovered group (discovery.c) */
	uint64_t dns_interval_ms; /* re-resolution period of a dns group */
	/* https:// url: mutual TLS (the [poold] node_tls_* when unset here) */
	char *tls_ca;		  /* PEM CA the node's certificate must be signed by */
	char *tls_cert, *tls_key; /* PEM: poold's client certificate and key */
	bool dns_tls;		  /* dns = https://HOST:PORT: every address over mutual TLS, verified as HOST */
	struct node_conf *next;
};

struct psettings {
	char *listen[8];
	size_t n_listen;
	enum log_level log_level;
	char *default_pool;
	uint64_t max_body;   /* JSON bodies */
	uint64_t max_upload; /* file uploads (Azure: 128 MiB) */
	uint64_t max_tests;
	uint64_t max_queue;	   /* lease requests waiting per pool */
	uint64_t queue_timeout_ms; /* how long one may wait at max */
	uint64_t session_queue;	   /* executions waiting per session */
	/* Azure asynchronous executions: a result is kept this long after it
	 * finished; a session holds at most this many, running or kept */
	uint64_t async_result_ttl_ms;
	uint64_t async_results_per_session;
	char *async_results_dir; /* where they are kept across restarts, or NULL (memory only) */
	/* judged submissions (POST /execute): the fair queue (queue.h) */
	uint64_t execute_max_queue;	   /* submissions queued in all */
	uint64_t execute_user_queue;	   /* … of one user_id */
	uint64_t execute_queue_timeout_ms; /* the longest one waits for its turn */
	uint64_t node_timeout_ms;	   /* sandboxd calls other than runs */
	uint64_t health_interval_ms;

	uint64_t max_connections;	     /* open at once on each listener */
	uint64_t max_connections_per_client; /* from one TCP peer address; 0 = no cap; default 3/4 of max_connections */

	double session_rate, session_burst;
	double client_rate, client_burst;
	/* TLS (see psettings_tls_check): the public listeners with TLS, their
	 * certificate; the defaults of the [node:*] tls_* keys */
	char *listen_tls[8];
	size_t n_listen_tls;
	char *tls_cert, *tls_key;
	bool tls_terminated_by_proxy; /* a proxy in front terminates TLS: plain listen allowed anywhere */
	char *node_tls_ca, *node_tls_cert, *node_tls_key;

	struct auth *auth;
	struct node_conf *nodes;
	struct pool_conf *pools;
	size_t n_pools;
};

int psettings_load(const char *path, struct psettings *s, struct wp_error *err);
void psettings_free(struct psettings *s);

#endif
