/* certs.h — poold's certificates: the TLS context of its public listeners
 * (listen_tls, tls_cert, tls_key), made again on SIGHUP, and the expiry of
 * every certificate poold uses or sees in /metrics:
 *
 *   warmpool_tls_cert_expiry_timestamp_seconds{daemon, role, node, file}
 *
 * role "listener" (poold's public certificate), "node_client" (poold's client
 * certificate for a node), "node_ca" (the CA a node's certificate is checked
 * against), and "node_server" (daemon="sandboxd": the certificate a node
 * serves, as its GET /v1/info reports it). deploy/prometheus/alerts.yml
 * warns 14 days before any of them ends. */
#ifndef POOLD_CERTS_H
#define POOLD_CERTS_H

#include "metrics.h"
#include "settings.h"

struct http_server;

/* The public context (when listen_tls is set) and the gauge. cfg must live
 * as long as poold (its node tls_* strings are read at each scrape). */
int certs_init(const struct psettings *cfg, struct metrics *m, struct wp_error *err);
/* TLS on s with the current public context. */
int certs_apply(struct http_server *s);
/* SIGHUP: read tls_cert and tls_key again and apply them to the servers
 * given (their open connections keep the old context). A file that does
 * not load keeps the old context (logged). */
void certs_reload(struct http_server *const *servers, size_t n);
void certs_free(void);

#endif
