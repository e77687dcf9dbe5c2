/* settings.c — poold.conf through inih (see settings.h). Sections may come
 * in any order; [node:*] and [pool:*] repeat. Every bad value is an error
 * naming the section and key: poold refuses to start on a config it only
 * half understands. */
#include "settings.h"

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config.h"
#include "tls.h"

static bool name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len < 1 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_'))
			return false;
	return true;
}

/* `dns = HOST:PORT`: a DNS name (letters, digits, '-', '_', '.'; at most 253)
 * and a port 1–65535. */
static bool dns_target_valid(const char *v)
{
	const char *colon = strrchr(v, ':');
	size_t hlen;
	uint64_t port;

	if (!colon || config_parse_u64(colon + 1, 1, 65535, &port) < 0)
		return false;
	hlen = (size_t)(colon - v);
	if (hlen < 1 || hlen > 253)
		return false;
	for (size_t i = 0; i < hlen; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') ||
		      v[i] == '-' || v[i] == '_' || v[i] == '.'))
			return false;
	return true;
}

static struct pool_conf *pool_conf_get(struct psettings *s, const char *name)
{
	struct pool_conf **pp = &s->pools;
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0)
			return *pp;
	struct pool_conf *p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(name)) || !(p->limits = json_object())) {
		if (p)
			free(p->name);
		free(p);
		return NULL;
	}
	p->warm = 2;
	p->max = 64;
	p->idle_timeout_ms = 5 * 60 * 1000;
	p->max_lifetime_ms = 4 * 3600 * 1000;
	*pp = p;
	s->n_pools++;
	return p;
}

static struct node_conf *node_conf_get(struct psettings *s, const char *name)
{
	struct node_conf **pp = &s->nodes;
	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0)
			return *pp;
	struct node_conf *n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	n->dns_interval_ms = 10000;
	*pp = n;
	return n;
}

/* A pool's warm: a number, "auto" (the run_slots of the nodes with its
 * language) or "N%" (N% of their capacity, 1-100, at least what auto
 * gives: pool.c auto_size). */
static int pool_warm_parse(struct pool_conf *p, const char *v, struct wp_error *err)
{
	size_t n = strlen(v);
	char pct[4] = "";
	uint64_t u;
	int r;

	p->warm_pct = 0;
	p->warm_auto = strcmp(v, "auto") == 0;
	if (p->warm_auto)
		return 0;
	if (n < 2 || v[n - 1] != '%')
		r = config_parse_u64(v, 0, 100000, &p->warm);
	else if (n - 1 < sizeof(pct)) {
		memcpy(pct, v, n - 1);
		r = config_parse_u64(pct, 1, 100, &u);
	} else
		r = -ERANGE;
	if (r < 0)
		return wp_error_set(err, -r,
				    "[pool:%s] warm = %s: want a number of slots (0-100000), auto (one per judged "
				    "run its nodes start at once) or N%% of its nodes' capacity (1%%-100%%)",
				    p->name, v);
	if (pct[0]) {
		p->warm_auto = true;
		p->warm_pct = (unsigned)u;
	}
	return 0;
}

/* Per-run limits of a pool, passed to sandboxd as its "limits" object. */
static int pool_limit(struct pool_conf *p, const char *key, const char *v)
{
	static const struct {
		const char *key, *json;
		int kind; /* 0 duration → ms, 1 size → kb, 2 size → bytes, 3 count */
	} map[] = {{"cpu", "cpu_ms", 0}, {"wall", "wall_ms", 0},	{"memory", "memory_kb", 1},
		   {"pids", "pids", 3},	 {"output", "output_bytes", 2}, {"fsize", "fsize_bytes", 2}};
	uint64_t val;
	int r = -ENOENT;

	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (strcmp(key, map[i].key) != 0)
			continue;
		if (map[i].kind == 0)
			r = config_parse_duration_ms(v, &val);
		else if (map[i].kind == 3)
			r = config_parse_u64(v, 1, 1u << 20, &val);
		else
			r = config_parse_size(v, &val);
		if (r == 0 && map[i].kind == 1)
			val = (val + 1023) / 1024;
		if (r == 0 && val == 0)
			r = -ERANGE;
		if (r == 0)
			json_object_set_new(p->limits, map[i].json, json_integer((json_int_t)val));
		return r;
	}
	return r;
}

/* ---- TLS: [poold] keys and the rules at the end of the load ---- */

static int psettings_tls_key(struct psettings *s, const char *key, const char *v)
{
	if (strcmp(key, "listen_tls") == 0) {
		if (s->n_listen_tls == ARRAY_SIZE(s->listen_tls))
			return -E2BIG;
		if (strncmp(v, "unix:", 5) == 0)
			return -EINVAL;
		return (s->listen_tls[s->n_listen_tls++] = strdup(v)) ? 0 : -ENOMEM;
	}
	if (strcmp(key, "tls_terminated_by_proxy") == 0)
		return config_parse_bool(v, &s->tls_terminated_by_proxy);
	char **dst = strcmp(key, "tls_cert") == 0	 ? &s->tls_cert
		     : strcmp(key, "tls_key") == 0	 ? &s->tls_key
		     : strcmp(key, "node_tls_ca") == 0	 ? &s->node_tls_ca
		     : strcmp(key, "node_tls_cert") == 0 ? &s->node_tls_cert
		     : strcmp(key, "node_tls_key") == 0	 ? &s->node_tls_key
							 : NULL;
	if (!dst)
		return -ENOENT;
	return v[0] ? config_set_str(dst, v) : -EINVAL;
}

static int psettings_tls_check(const char *path, struct psettings *s, struct wp_error *err)
{
	if (s->n_listen_tls && (!s->tls_cert || !s->tls_key))
		return wp_error_set(err, EINVAL, "%s: listen_tls needs tls_cert and tls_key in [poold]", path);
	/* Bearer tokens, code and files must not cross a network in clear */
	for (size_t i = 0; i < s->n_listen; i++)
		if (!tls_address_is_loopback(s->listen[i]) && auth_count(s->auth) > 0 && !s->tls_terminated_by_proxy)
			return wp_error_set(
			    err, EPERM,
			    "%s: listen `%s` is not loopback and has no TLS: tokens and code would cross the network "
			    "in "
			    "clear. Use `listen_tls = %s` with tls_cert and tls_key, or, when a proxy in front "
			    "terminates TLS, say so with `tls_terminated_by_proxy = yes`",
			    path, s->listen[i], s->listen[i]);
	for (struct node_conf *n = s->nodes; n; n = n->next) {
		bool https = n->url && (strncmp(n->url, "https://", 8) == 0 || n->dns_tls);
		if (!https) {
			if (n->tls_ca || n->tls_cert || n->tls_key)
				return wp_error_set(err, EINVAL,
						    "%s: [node:%s] has tls_* keys but its url is not https://", path,
						    n->name);
			continue;
		}
		if (!n->tls_ca && s->node_tls_ca && !(n->tls_ca = strdup(s->node_tls_ca)))
			return wp_error_set(err, ENOMEM, "out of memory");
		if (!n->tls_cert && s->node_tls_cert && !(n->tls_cert = strdup(s->node_tls_cert)))
			return wp_error_set(err, ENOMEM, "out of memory");
		if (!n->tls_key && s->node_tls_key && !(n->tls_key = strdup(s->node_tls_key)))
			return wp_error_set(err, ENOMEM, "out of memory");
		if (!n->tls_ca || !n->tls_cert || !n->tls_key)
			return wp_error_set(
			    err, EINVAL,
			    "%s: [node:%s] %s needs tls_ca, tls_cert and tls_key (in the section, or "
			    "node_tls_ca, node_tls_cert and node_tls_key in [poold]): sandboxd asks for "
			    "poold's client certificate",
			    path, n->name, n->url);
	}
	return 0;
}

static int pkey(void *ctx, const char *section, const char *key, const char *v, struct wp_error *err)
{
	struct psettings *s = ctx;

	if (strcmp(section, "poold") == 0) {
		if (strcmp(key, "listen") == 0) {
			if (s->n_listen == ARRAY_SIZE(s->listen))
				return -E2BIG;
			return (s->listen[s->n_listen++] = strdup(v)) ? 0 : -ENOMEM;
		}
		if (strncmp(key, "tls_", 4) == 0 || strncmp(key, "node_tls_", 9) == 0 || strcmp(key, "listen_tls") == 0)
			return psettings_tls_key(s, key, v);
		if (strcmp(key, "log_level") == 0)
			return log_parse_level(v, &s->log_level);
		if (strcmp(key, "default_pool") == 0)
			return config_set_str(&s->default_pool, v);
		if (strcmp(key, "max_body") == 0)
			return config_parse_size(v, &s->max_body);
		if (strcmp(key, "max_upload") == 0)
			return config_parse_size(v, &s->max_upload);
		if (strcmp(key, "max_connections") == 0)
			return config_parse_u64(v, 16, 1000000, &s->max_connections);
		if (strcmp(key, "max_connections_per_client") == 0)
			return config_parse_u64(v, 0, 1000000, &s->max_connections_per_client);
		if (strcmp(key, "max_tests") == 0)
			return config_parse_u64(v, 1, 10000, &s->max_tests);
		if (strcmp(key, "max_queue") == 0)
			return config_parse_u64(v, 0, 1000000, &s->max_queue);
		if (strcmp(key, "queue_timeout") == 0)
			return config_parse_duration_ms(v, &s->queue_timeout_ms);
		if (strcmp(key, "execute_max_queue") == 0)
			return config_parse_u64(v, 1, 1000000, &s->execute_max_queue);
		if (strcmp(key, "execute_user_queue") == 0)
			return config_parse_u64(v, 1, 1000000, &s->execute_user_queue);
		if (strcmp(key, "execute_queue_timeout") == 0) {
			int r = config_parse_duration_ms(v, &s->execute_queue_timeout_ms);
			return r < 0 ? r : s->execute_queue_timeout_ms < 1000 ? -ERANGE : 0;
		}
		if (strcmp(key, "session_queue") == 0)
			return config_parse_u64(v, 1, 10000, &s->session_queue);
		/* Azure routes: asynchronous executions' results (aca_exec.h) */
		if (strcmp(key, "async_result_ttl") == 0)
			return config_parse_duration_ms(v, &s->async_result_ttl_ms);
		if (strcmp(key, "async_results_per_session") == 0)
			return config_parse_u64(v, 1, 100000, &s->async_results_per_session);
		if (strcmp(key, "async_results_dir") == 0)
			return v[0] == '/' ? config_set_str(&s->async_results_dir, v) : -EINVAL;
		if (strcmp(key, "node_timeout") == 0)
			return config_parse_duration_ms(v, &s->node_timeout_ms);
		if (strcmp(key, "health_interval") == 0)
			return config_parse_duration_ms(v, &s->health_interval_ms);
	} else if (strcmp(section, "rate_limit") == 0) {
		double *dst = strcmp(key, "session_rate") == 0	  ? &s->session_rate
			      : strcmp(key, "session_burst") == 0 ? &s->session_burst
			      : strcmp(key, "client_rate") == 0	  ? &s->client_rate
			      : strcmp(key, "client_burst") == 0  ? &s->client_burst
								  : NULL;
		char *end;
		if (!dst)
			return -ENOENT;
		*dst = strtod(v, &end);
		return (*end || *dst < 0 || *dst > 1e6) ? -EINVAL : 0;
	} else if (strcmp(section, "auth") == 0) {
		if (strcmp(key, "token") == 0)
			return auth_add_line(s->auth, v);
	} else if (strncmp(section, "node:", 5) == 0) {
		if (!name_valid(section + 5))
			return -EINVAL;
		struct node_conf *n = node_conf_get(s, section + 5);
		if (!n)
			return -ENOMEM;
		if (strcmp(key, "url") == 0) {
			if (strncmp(v, "unix:/", 6) && strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
				return -EINVAL;
			if (n->url && strncmp(n->url, "dns:", 4) == 0)
				return wp_error_set(err, EALREADY, "[%s] has both url and dns: give one", section);
			return config_set_str(&n->url, v);
		}
		if (strcmp(key, "dns") == 0) {
			char buf[300];
			if ((n->dns_tls = strncmp(v, "https://", 8) == 0))
				v += 8;
			if (!dns_target_valid(v))
				return -EINVAL;
			if (n->url && strncmp(n->url, "dns:", 4) != 0)
				return wp_error_set(err, EALREADY, "[%s] has both url and dns: give one", section);
			snprintf(buf, sizeof(buf), "dns:%s", v);
			return config_set_str(&n->url, buf);
		}
		if (strcmp(key, "tls_ca") == 0)
			return v[0] ? config_set_str(&n->tls_ca, v) : -EINVAL;
		if (strcmp(key, "tls_cert") == 0)
			return v[0] ? config_set_str(&n->tls_cert, v) : -EINVAL;
		if (strcmp(key, "tls_key") == 0)
			return v[0] ? config_set_str(&n->tls_key, v) : -EINVAL;
		if (strcmp(key, "dns_interval") == 0) {
			int r = config_parse_duration_ms(v, &n->dns_interval_ms);
			return r < 0 ? r : (n->dns_interval_ms < 1000 || n->dns_interval_ms > 3600000) ? -ERANGE : 0;
		}
	} else if (strncmp(section, "pool:", 5) == 0) {
		if (!name_valid(section + 5))
			return -EINVAL;
		struct pool_conf *p = pool_conf_get(s, section + 5);
		if (!p)
			return -ENOMEM;
		if (strcmp(key, "language") == 0)
			return config_set_str(&p->language, v);
		if (strcmp(key, "warm") == 0)
			return pool_warm_parse(p, v, err);
		if (strcmp(key, "max") == 0) {
			p->max_auto = strcmp(v, "auto") == 0;
			return p->max_auto ? 0 : config_parse_u64(v, 1, 100000, &p->max);
		}
		if (strcmp(key, "idle_timeout") == 0)
			return config_parse_duration_ms(v, &p->idle_timeout_ms);
		if (strcmp(key, "max_lifetime") == 0)
			return config_parse_duration_ms(v, &p->max_lifetime_ms);
		if (strcmp(key, "stateful") == 0)
			return config_parse_bool(v, &p->stateful);
		return pool_limit(p, key, v);
	}
	return -ENOENT;
}

int psettings_load(const char *path, struct psettings *s, struct wp_error *err)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->log_level = LOG_INFO;
	s->max_body = 16u << 20;
	s->max_upload = 128u << 20;
	s->max_tests = 100;
	s->max_connections = UINT64_MAX;	    /* unset: see below */
	s->max_connections_per_client = UINT64_MAX; /* unset: see below */
	s->max_queue = 1000;
	s->queue_timeout_ms = 10000;
	s->session_queue = 16;
	s->async_result_ttl_ms = 10 * 60 * 1000;
	s->async_results_per_session = 100;
	s->execute_max_queue = 10000;
	s->execute_user_queue = 100;
	s->execute_queue_timeout_ms = 15 * 60 * 1000;
	s->node_timeout_ms = 10000;
	s->health_interval_ms = 2000;
	s->session_rate = 20;
	s->session_burst = 40;
	s->client_rate = 0;
	s->client_burst = 0;
	if (!(s->auth = auth_new()))
		return wp_error_set(err, ENOMEM, "out of memory");

	if ((r = config_load_ini(path, pkey, s, err)) < 0)
		return r;
	/* Every queued judged submission holds its connection: room for the
	 * whole queue and then some (main raises the fd limit to match). */
	if (s->max_connections == UINT64_MAX)
		s->max_connections = s->execute_max_queue + 1024;
	/* One client (a backend, a proxy: every user behind one address) may
	 * take most connections, never the last quarter: the rest of the world
	 * and the health checks keep a way in. */
	if (s->max_connections_per_client == UINT64_MAX)
		s->max_connections_per_client = s->max_connections - s->max_connections / 4;
	if (s->n_listen == 0 && s->n_listen_tls == 0 && !(s->listen[s->n_listen++] = strdup("127.0.0.1:8080")))
		return wp_error_set(err, ENOMEM, "out of memory");
	if (!s->nodes)
		return wp_error_set(err, EINVAL, "%s: no [node:NAME] section: poold needs at least one sandboxd", path);
	for (struct node_conf *n = s->nodes; n; n = n->next)
		if (!n->url)
			return wp_error_set(err, EINVAL, "%s: [node:%s] has no url (or dns)", path, n->name);
	if (!s->pools)
		return wp_error_set(err, EINVAL, "%s: no [pool:NAME] section", path);
	for (struct pool_conf *p = s->pools; p; p = p->next) {
		if (!p->language)
			return wp_error_set(err, EINVAL, "%s: [pool:%s] has no language", path, p->name);
		if (!p->warm_auto && !p->max_auto && p->warm > p->max)
			return wp_error_set(err, EINVAL, "%s: [pool:%s] warm %llu is above max %llu", path, p->name,
					    (unsigned long long)p->warm, (unsigned long long)p->max);
		if (p->idle_timeout_ms < 1000)
			return wp_error_set(err, EINVAL, "%s: [pool:%s] idle_timeout below 1s", path, p->name);
	}
	if (s->default_pool) {
		bool found = false;
		for (struct pool_conf *p = s->pools; p; p = p->next)
			found |= strcmp(p->name, s->default_pool) == 0;
		if (!found)
			return wp_error_set(err, EINVAL, "%s: default_pool `%s` is not a [pool:…]", path,
					    s->default_pool);
	} else if (!(s->default_pool = strdup(s->pools->name))) {
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	if ((r = psettings_tls_check(path, s, err)) < 0)
		return r;
	/* no auth only on loopback (docs/security.md): anything else needs tokens */
	for (size_t i = 0; i < s->n_listen_tls; i++)
		if (!tls_address_is_loopback(s->listen_tls[i]) && auth_count(s->auth) == 0)
			return wp_error_set(
			    err, EPERM,
			    "%s: listen_tls `%s` is not loopback and [auth] has no token: refusing to serve "
			    "code execution to the network without authentication",
			    path, s->listen_tls[i]);
	for (size_t i = 0; i < s->n_listen; i++)
		if (!tls_address_is_loopback(s->listen[i]) && auth_count(s->auth) == 0)
			return wp_error_set(
			    err, EPERM,
			    "%s: listen `%s` is not loopback and [auth] has no token: refusing to serve "
			    "code execution to the network without authentication",
			    path, s->listen[i]);
	return 0;
}

void psettings_free(struct psettings *s)
{
	for (size_t i = 0; i < s->n_listen; i++)
		free(s->listen[i]);
	for (size_t i = 0; i < s->n_listen_tls; i++)
		free(s->listen_tls[i]);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->node_tls_ca);
	free(s->node_tls_cert);
	free(s->node_tls_key);
	free(s->default_pool);
	free(s->async_results_dir);
	auth_free(s->auth);
	for (struct node_conf *n = s->nodes, *nx; n; n = nx) {
		nx = n->next;
		free(n->name);
		free(n->url);
		free(n->tls_ca);
		free(n->tls_cert);
		free(n->tls_key);
		free(n);
	}
	for (struct pool_conf *p = s->pools, *nx; p; p = nx) {
		nx = p->next;
		free(p->name);
		free(p->language);
		json_decref(p->limits);
		free(p);
	}
	memset(s, 0, sizeof(*s));
}
