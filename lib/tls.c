/* tls.c — server contexts and certificate facts (see tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"

/* One message for the caller: the file and OpenSSL's reason. */
static int ssl_fail(struct wp_error *err, const char *what, const char *file)
{
	char reason[256];

	tls_last_error(reason, sizeof(reason));
	return wp_error_set(err, EINVAL, "%s `%s`: %s", what, file ? file : "", reason);
}

const char *tls_last_error(char *buf, size_t len)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()))
		last = e;
	if (!last) {
		snprintf(buf, len, "no reason given");
		return buf;
	}
	if (ERR_reason_error_string(last))
		snprintf(buf, len, "%s", ERR_reason_error_string(last));
	else
		ERR_error_string_n(last, buf, len);
	return buf;
}

bool tls_looks_like_plain_http(const unsigned char *buf, size_t len)
{
	return len > 0 && buf[0] != 0x16 && buf[0] >= 'A' && buf[0] <= 'Z';
}

static int asn1_to_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm = {0};

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int tls_ctx_not_after(SSL_CTX *ctx, int64_t *out)
{
	X509 *x = ctx ? SSL_CTX_get0_certificate(ctx) : NULL;

	if (!x)
		return -ENOENT;
	return asn1_to_unix(X509_get0_notAfter(x), out);
}

int tls_file_not_after(const char *pem_file, int64_t *out, struct wp_error *err)
{
	FILE *f = fopen(pem_file, "re");
	X509 *x;
	int r;

	if (!f)
		return wp_error_errno(err, "open `%s`", pem_file);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		return ssl_fail(err, "no PEM certificate in", pem_file);
	r = asn1_to_unix(X509_get0_notAfter(x), out);
	X509_free(x);
	if (r < 0)
		return wp_error_set(err, EINVAL, "`%s`: unreadable notAfter", pem_file);
	return 0;
}

static int ctx_fill(SSL_CTX *ctx, const struct tls_server_conf *conf, struct wp_error *err)
{
	if (SSL_CTX_set_min_proto_version(ctx, conf->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION) != 1)
		return ssl_fail(err, "TLS version", "");
	/* TLS 1.2 (public listener only): forward-secret AEAD suites, nothing else */
	if (!conf->tls13_only &&
	    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!RSA") != 1)
		return ssl_fail(err, "cipher list", "");
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	if (!conf->cert_file || !conf->key_file)
		return wp_error_set(err, EINVAL, "a TLS listener needs a certificate and a key file");
	if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert_file) != 1)
		return ssl_fail(err, "certificate", conf->cert_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, conf->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char reason[200];
		tls_last_error(reason, sizeof(reason));
		return wp_error_set(err, EINVAL, "private key `%s`: %s (is it the key of `%s`? it does not match)",
				    conf->key_file, reason, conf->cert_file);
	}
	if (!conf->client_ca)
		return 0;
	if (SSL_CTX_load_verify_locations(ctx, conf->client_ca, NULL) != 1)
		return ssl_fail(err, "client CA", conf->client_ca);
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->client_ca);
	if (!names)
		return ssl_fail(err, "client CA names", conf->client_ca);
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	if (conf->client_name && conf->client_name[0]) {
		X509_VERIFY_PARAM *p = SSL_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (X509_VERIFY_PARAM_set1_host(p, conf->client_name, 0) != 1)
			return ssl_fail(err, "client name", conf->client_name);
	}
	/* resumed sessions skip the certificate check: keep them on this
	 * context only (a reloaded CA starts afresh) */
	static const unsigned char sid_ctx[] = "warmpool-mtls";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	return 0;
}

SSL_CTX *tls_server_ctx_new(const struct tls_server_conf *conf, struct wp_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		ssl_fail(err, "SSL_CTX_new", "");
		return NULL;
	}
	if (ctx_fill(ctx, conf, err) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

bool tls_address_is_loopback(const char *address)
{
	char host[128];
	struct in_addr a4;
	const char *colon;

	if (strncmp(address, "unix:", 5) == 0)
		return true;
	if (address[0] == '[')
		return strncmp(address, "[::1]:", 6) == 0;
	colon = strrchr(address, ':');
	if (!colon || (size_t)(colon - address) >= sizeof(host))
		return false;
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	if (strcmp(host, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}
