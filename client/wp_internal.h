/* wp_internal.h — what warmpool.c (the handle and HTTP) and results.c (the
 * objects handed to callers) share. Not installed. */
#ifndef WARMPOOL_INTERNAL_H
#define WARMPOOL_INTERNAL_H

#include <jansson.h>
#include <stdlib.h>

#include "warmpool.h"

#define WP_MAGIC 0x77706f62u /* "wpob" */

enum wp_obj_type {
	WP_OBJ_CLIENT = 1,
	WP_OBJ_RUN_REQUEST,
	WP_OBJ_RUN,
	WP_OBJ_EXEC,
	WP_OBJ_SESSION,
	WP_OBJ_SESSIONS,
	WP_OBJ_POOL,
	WP_OBJ_POOLS,
	WP_OBJ_NODE,
	WP_OBJ_NODES,
	WP_OBJ_LANGUAGE,
	WP_OBJ_LANGUAGES,
	WP_OBJ_FILES,
};

/* First member of every object, so that wp_free() and wp_json() take any. */
struct wp_obj {
	unsigned magic;
	enum wp_obj_type type;
	bool item;    /* an element of a list: the list owns it */
	json_t *json; /* owned, except by items (borrowed from the list's) */
	char *text;   /* wp_json()'s text, made on first use */
};

struct wp_run_request {
	struct wp_obj o; /* o.json is the request body */
};

void wp_client_destroy(struct wp_client *c);

/* Objects from an answer; each takes the reference to j (also on failure).
 * NULL when out of memory. */
struct wp_run_result *wp_run_result_from_json(json_t *j);
struct wp_exec_result *wp_exec_result_from_json(json_t *j);
struct wp_session *wp_session_from_json(json_t *j);
struct wp_sessions *wp_sessions_from_json(json_t *j);
struct wp_pool *wp_pool_from_json(json_t *j);
struct wp_pools *wp_pools_from_json(json_t *j);
struct wp_nodes *wp_nodes_from_json(json_t *j);
struct wp_languages *wp_languages_from_json(json_t *j);
struct wp_files *wp_files_from_json(json_t *j);

/* cleanup helpers (the client stands alone: no lib/cleanup.h) */
static inline void wp_freep(void *p)
{
	free(*(void **)p);
}
static inline void wp_json_decrefp(json_t **j)
{
	json_decref(*j);
}
#define cleanup_free __attribute__((cleanup(wp_freep)))
#define cleanup_json __attribute__((cleanup(wp_json_decrefp)))

static inline void *wp_steal_pointer_(void **pp)
{
	void *p = *pp;
	*pp = NULL;
	return p;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))wp_steal_pointer_((void **)(pp)))

#endif
