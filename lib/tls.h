/* tls.h — the TLS both daemons serve (OpenSSL): a server context made from
 * certificate, key and (for mutual TLS) client CA files, and what the rest
 * of the code wants to know about a certificate.
 *
 * The handshake and the encrypted I/O are in http_server.c, non-blocking on
 * its libev loop; this module only builds and describes contexts. A context
 * is an OpenSSL SSL_CTX (reference counted by OpenSSL): a listener holds one,
 * each connection takes its own reference at accept, so a context replaced
 * on SIGHUP stays alive for the connections made with it.
 *
 * Mutual TLS (sandboxd's TCP listener): TLS 1.3 only, a client certificate
 * signed by the CA is required, optionally carrying a given DNS name (SAN,
 * or the subject CN when it has no SAN). Server TLS alone (poold's public
 * listener): TLS 1.2 or 1.3 (clients behind old proxies and load balancers
 * still speak 1.2), no client certificate. */
#ifndef WARMPOOL_TLS_H
#define WARMPOOL_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct ssl_ctx_st;

struct tls_server_conf {
	const char *cert_file;	 /* PEM: the certificate, then its chain */
	const char *key_file;	 /* PEM: its private key */
	const char *client_ca;	 /* PEM CA file: clients must present a certificate it signed; NULL: none asked */
	const char *client_name; /* optional: the client certificate must carry this DNS name */
	bool tls13_only;	 /* else TLS 1.2 and 1.3 */
};

/* A new context, or NULL with err filled (which file, what OpenSSL said). */
struct ssl_ctx_st *tls_server_ctx_new(const struct tls_server_conf *conf, struct wp_error *err);
void tls_ctx_free(struct ssl_ctx_st *ctx); /* accepts NULL */

/* Not-after of the context's certificate as a Unix time, or of the first
 * certificate of a PEM file. */
int tls_ctx_not_after(struct ssl_ctx_st *ctx, int64_t *out);
int tls_file_not_after(const char *pem_file, int64_t *out, struct wp_error *err);

/* The last OpenSSL error queued on this thread as text ("certificate has
 * expired", "peer did not return a certificate"), the queue emptied; buf. */
const char *tls_last_error(char *buf, size_t len);

/* A plain-text request's first byte on a TLS port: TLS records start with
 * 0x16 (handshake); letters mean HTTP. */
bool tls_looks_like_plain_http(const unsigned char *buf, size_t len);

/* "127.0.0.1:9091", "[::1]:9091", "localhost:9091", "unix:…": a listener
 * only this host reaches. */
bool tls_address_is_loopback(const char *address);

#endif
