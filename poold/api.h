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

#endif
