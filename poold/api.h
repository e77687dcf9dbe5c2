/* api.h — poold's HTTP routes (docs/api.md is the reference). */
#ifndef POOLD_API_H
#define POOLD_API_H

#include "http_server.h"
#include "metrics.h"
#include "settings.h"

void api_init(struct ev_loop *loop, const struct psettings *st, struct metrics *m);
void api_handle(struct http_request *req, void *data);
void api_stop(void);
/* After SIGHUP changed the settings: rate limits. */
void api_reload(void);

/* A value of the client's, fit to quote in an error message: at most
 * API_ECHO_MAX bytes of it (then "..."), bytes outside printable ASCII and
 * the backslash written \xNN. out holds API_ECHO_SIZE. */
#define API_ECHO_MAX  64
#define API_ECHO_SIZE (API_ECHO_MAX * 4 + 8)
void api_echo(const char *in, char *out, size_t size);
/* 405 MethodNotAllowed with "Allow: <allow>" (e.g. "GET, DELETE"). */
void api_not_allowed(struct http_request *req, const char *allow);
/* The languages of the pools, ", "-separated, each once. */
void api_languages(char *out, size_t size);

#endif
