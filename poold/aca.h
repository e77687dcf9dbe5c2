/* aca.h — the Azure Container Apps dynamic sessions API (docs/api.md), so
 * that LangChain, Semantic Kernel and AutoGen work by changing their pool
 * endpoint URL to poold's: `code/execute` and `executions` run code in the
 * session's stateful interpreter (or, in a shell pool, a command as one
 * run in its slot), synchronously or not (`executions/{id}`), `files…`
 * reach its /mnt/data and directories below, `session`, `listSessions`,
 * `metadata` and `.management/stopSession` manage sessions. Every route exists at `/…` (the default pool) and at
 * `/pools/{name}/…`. docs/api.md ("Azure dynamic sessions") is the
 * reference. */
#ifndef POOLD_ACA_H
#define POOLD_ACA_H

#include <stdbool.h>

#include "http_path.h"
#include "http_server.h"
#include "settings.h"

/* rate_ok: the per-identifier rate limit of api.c; answers 429 itself and
 * returns false when the request must stop. */
void aca_init(struct ev_loop *l, const struct psettings *st,
	      bool (*rate_ok)(struct http_request *req, const char *ident));
/* True when the path is one of the Azure routes: the request is then
 * answered (now or later). False: not ours, nothing answered. */
bool aca_route(struct http_request *req, const struct http_path *p);

#endif
