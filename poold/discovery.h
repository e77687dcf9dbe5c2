/* discovery.h — nodes found through DNS: a `[node:NAME] dns = HOST:PORT`
 * section is a group of nodes, one per address HOST resolves to (node.c
 * keeps them with the configured ones; discovery.c says which exist). */
#ifndef POOLD_DISCOVERY_H
#define POOLD_DISCOVERY_H

#include <ev.h>

#include "error.h"
#include "settings.h"

/* Resolve nc's HOST now (before the loop runs: poold waits for the nodes
 * it finds) and every dns_interval from then on. */
int discovery_add(struct ev_loop *loop, const struct node_conf *nc, struct wp_error *err);
/* Stop resolving (poold stopping): timers off, a running resolver killed. */
void discovery_stop(void);

#endif
