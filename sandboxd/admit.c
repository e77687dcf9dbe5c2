/* admit.c — see admit.h. A run is counted from its start until its slot's
 * s->run is no longer that run (finished, failed, aborted, slot destroyed):
 * the table is pruned lazily on every look, so run.c needs no hook, and a
 * run that ended is never counted a moment longer than the next look. */
#include "admit.h"

#include <ev.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

#define ADMIT_MAX 4096

struct admitted {
	char id[17];	  /* the slot */
	const void *run;  /* its s->run when admitted; identity only */
	uint64_t need_kb; /* memory counted for it */
};

static struct admitted table[ADMIT_MAX];
static size_t n_table;
static admit_find_fn find_slot = slot_find;
static double last_full = -INFINITY; /* a look found every run slot in use */

static double loop_now(void)
{
	return ev_now(EV_DEFAULT);
}

static admit_clock_fn clock_now = loop_now;

void admit_set_find(admit_find_fn fn)
{
	find_slot = fn ? fn : slot_find;
}

void admit_set_clock(admit_clock_fn fn)
{
	clock_now = fn ? fn : loop_now;
	last_full = -INFINITY;
}

static bool full(void)
{
	return n_table >= sandboxd_settings->run_slots || n_table >= ADMIT_MAX;
}

static void prune(void)
{
	for (size_t i = 0; i < n_table;) {
		struct slot *s = find_slot(table[i].id);
		if (s && s->run && (const void *)s->run == table[i].run) {
			i++;
			continue;
		}
		table[i] = table[--n_table];
	}
}

static uint64_t in_use_kb(void)
{
	uint64_t kb = 0;
	for (size_t i = 0; i < n_table; i++)
		kb += table[i].need_kb;
	return kb;
}

/* The memory a run may take at most: its limit, or its compile's when it
 * compiles and that is larger (they run one after the other). */
static uint64_t need_of(const struct slot *s, json_t *body)
{
	json_t *lim = json_object_get(body, "limits"), *clim = json_object_get(body, "compile_limits");
	json_t *m = json_object_get(lim, "memory_kb"), *cm = json_object_get(clim, "memory_kb");
	uint64_t run = json_is_integer(m) && json_integer_value(m) > 0 ? (uint64_t)json_integer_value(m)
								       : s->lang->limits.memory_kb;
	uint64_t comp = json_is_integer(cm) && json_integer_value(cm) > 0 ? (uint64_t)json_integer_value(cm)
									  : s->lang->compile_limits.memory_kb;
	bool compiles = s->lang->compile_argv && !json_is_false(json_object_get(body, "compile"));
	return compiles && comp > run ? comp : run;
}

bool admit_run(struct http_request *req, struct slot *s, json_t *body, uint64_t *need_kb)
{
	const struct settings *cfg = sandboxd_settings;
	uint64_t budget_kb = cfg->run_memory / 1024, need = need_of(s, body), used;

	*need_kb = need;
	prune();
	used = in_use_kb();
	if (full()) {
		http_respond_error_retry(req, 503, 1, "NodeBusy",
					 "this node runs %zu judged runs, its run_slots: retry when one ends (poold "
					 "queues the run again)",
					 n_table);
		return false;
	}
	if (n_table > 0 && used + need > budget_kb) {
		http_respond_error_retry(req, 503, 1, "NodeBusy",
					 "this run's memory limit (%llu kB) does not fit the node's run_memory beside "
					 "the %zu runs in progress (%llu of %llu kB): retry when one ends",
					 (unsigned long long)need, n_table, (unsigned long long)used,
					 (unsigned long long)budget_kb);
		return false;
	}
	return true;
}

void admit_track(struct slot *s, uint64_t need_kb)
{
	if (!s->run || n_table >= ADMIT_MAX)
		return;
	for (size_t i = 0; i < n_table; i++)
		if (strcmp(table[i].id, s->id) == 0) {
			/* the run counted already: this request's run was refused
			 * (the slot was busy with it), which keeps its own count */
			if (table[i].run == (const void *)s->run)
				return;
			table[i] = table[--n_table];
			break;
		}
	memcpy(table[n_table].id, s->id, sizeof(table[n_table].id));
	table[n_table].run = s->run;
	table[n_table].need_kb = need_kb;
	n_table++;
	if (full())
		last_full = clock_now();
}

double admit_quiet_for(void)
{
	double now = clock_now();

	prune();
	if (full()) {
		last_full = now;
		return 0;
	}
	return now - last_full;
}

json_t *admit_info(void)
{
	const struct settings *cfg = sandboxd_settings;

	prune();
	return json_pack("{s:I, s:I, s:I, s:I}", "slots", (json_int_t)cfg->run_slots, "active", (json_int_t)n_table,
			 "memory_kb", (json_int_t)(cfg->run_memory / 1024), "memory_in_use_kb",
			 (json_int_t)in_use_kb());
}
