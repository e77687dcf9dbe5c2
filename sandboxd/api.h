/* api.h — sandboxd's HTTP routes. */
#ifndef SANDBOXD_API_H
#define SANDBOXD_API_H

#include <stddef.h>

#include "http_server.h"
#include "language.h"
#include "settings.h"

struct cgroup_root;

struct api_ctx {
	struct language **languages;
	size_t n_languages;
	struct cgroup_root *cgroot;
	const char *node_name;
};

void api_init(struct api_ctx *ctx);
void api_handle(struct http_request *req, void *data);

#endif
