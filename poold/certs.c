/* certs.c — poold's certificates (see certs.h). */
#include "certs.h"

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <time.h>

#include "http_server.h"
#include "log.h"
#include "node.h"
#include "tls.h"

static const struct psettings *cfg;
static SSL_CTX *public_ctx;
static struct metric *expiry;

static SSL_CTX *public_make(struct wp_error *err)
{
	const struct tls_server_conf tc = {.cert_file = cfg->tls_cert, .key_file = cfg->tls_key, .tls13_only = false};
	return tls_server_ctx_new(&tc, err);
}

static void set_file(const char *role, const char *node, const char *file)
{
	int64_t t;

	if (file && tls_file_not_after(file, &t, NULL) == 0)
		metric_set(expiry, (const char *const[]){"poold", role, node, file}, (double)t);
}

/* At each scrape: the files are small and in the page cache; a rotated file
 * shows at once. */
static void collect(void *data)
{
	int64_t t;

	metric_reset(expiry);
	if (public_ctx && tls_ctx_not_after(public_ctx, &t) == 0)
		metric_set(expiry, (const char *const[]){"poold", "listener", "", cfg->tls_cert}, (double)t);
	for (const struct node_conf *nc = cfg->nodes; nc; nc = nc->next) {
		set_file("node_client", nc->name, nc->tls_cert);
		set_file("node_ca", nc->name, nc->tls_ca);
	}
	for (struct node *n = node_first(); n; n = n->next) {
		json_t *v = n->info ? json_object_get(n->info, "tls_not_after") : NULL;
		if (json_is_integer(v))
			metric_set(expiry, (const char *const[]){"sandboxd", "node_server", n->name, ""},
				   (double)json_integer_value(v));
	}
}

int certs_init(const struct psettings *c, struct metrics *m, struct wp_error *err)
{
	static const char *const labels[] = {"daemon", "role", "node", "file", NULL};

	cfg = c;
	expiry = metrics_gauge(m, "warmpool_tls_cert_expiry_timestamp_seconds",
			       "Not-after time (Unix seconds) of each TLS certificate poold uses or its nodes serve",
			       labels);
	metrics_on_collect(m, collect, NULL);
	for (const struct node_conf *nc = cfg->nodes; nc; nc = nc->next) {
		int64_t t;
		const char *files[] = {nc->tls_ca, nc->tls_cert, nc->tls_key};
		for (size_t i = 0; i < 3; i++) {
			FILE *f = files[i] ? fopen(files[i], "re") : NULL;
			if (files[i] && !f)
				return wp_error_errno(err, "[node:%s] TLS file `%s`", nc->name, files[i]);
			if (f)
				fclose(f);
		}
		if (nc->tls_cert && tls_file_not_after(nc->tls_cert, &t, err) < 0)
			return -EINVAL;
	}
	if (cfg->n_listen_tls == 0)
		return 0;
	if (!(public_ctx = public_make(err)))
		return -EINVAL;
	return 0;
}

int certs_apply(struct http_server *s)
{
	return http_server_set_tls(s, public_ctx);
}

void certs_reload(struct http_server *const *servers, size_t n)
{
	struct wp_error err = {0};
	SSL_CTX *fresh;

	if (!public_ctx)
		return;
	if (!(fresh = public_make(&err))) {
		log_error("reload: TLS certificate not reloaded, the old one stays: %s", err.msg);
		return;
	}
	tls_ctx_free(public_ctx);
	public_ctx = fresh;
	for (size_t i = 0; i < n; i++)
		http_server_set_tls(servers[i], public_ctx);
	log_info("reload: TLS certificate %s reloaded", cfg->tls_cert);
}

void certs_free(void)
{
	tls_ctx_free(public_ctx);
	public_ctx = NULL;
}
