/* telemetry.c — see telemetry.h. */
#include "telemetry.h"

#include <stdio.h>

#include "http_server.h"
#include "lease.h"
#include "node.h"
#include "ops.h"
#include "pool.h"

static struct metrics *reg;
static struct metric *m_ready, *m_leased, *m_creating, *m_max, *m_warm, *m_queued, *m_draining;
static struct metric *m_create_failures, *m_created, *m_node_up, *m_node_slots, *m_node_capacity;
static struct metric *m_sessions, *m_http, *m_exec, *m_lease_wait, *m_conn_refused;
static struct metric *m_exec_queued, *m_exec_running, *m_queue_wait, *m_drain, *m_queue_len;
static struct metric *m_node_runs, *m_node_run_slots, *m_warm_short, *m_short_events;
static struct metric *m_http_duration, *m_refused, *m_interp;

static void collect(void *data)
{
	for (struct pool *p = pool_first(); p; p = p->next) {
		const char *l[] = {p->name, p->language};
		metric_set(m_ready, l, (double)p->n_ready);
		metric_set(m_leased, l, (double)p->n_leased);
		metric_set(m_creating, l, (double)(p->n_creating + p->n_creating_direct));
		metric_set(m_max, l, (double)p->max);
		metric_set(m_warm, l, (double)p->warm);
		metric_set(m_queued, l, (double)p->n_waiting);
		metric_set(m_draining, l, p->draining);
		metric_set(m_exec_queued, l, (double)p->n_judge_queued);
		metric_set(m_exec_running, l, (double)p->n_judge_running);
		size_t have = p->n_ready + p->n_creating;
		metric_set(m_warm_short, l, p->warm > have ? (double)(p->warm - have) : 0);
	}
	metric_set(m_queue_len, NULL, (double)ops_queue_length());
	metric_set(m_drain, NULL, ops_queue_drain_rate());
	/* counters kept by the pools themselves */
	metric_reset(m_create_failures);
	metric_reset(m_created);
	for (struct pool *p = pool_first(); p; p = p->next) {
		const char *l[] = {p->name, p->language};
		metric_inc(m_create_failures, l, (double)p->create_failures);
		metric_inc(m_created, l, (double)p->created);
	}
	metric_reset(m_short_events);
	for (struct pool *p = pool_first(); p; p = p->next) {
		const char *l[] = {p->name, p->language};
		metric_inc(m_short_events, l, (double)p->short_events);
	}
	metric_reset(m_node_up); /* nodes come and go (DNS discovery) */
	metric_reset(m_node_slots);
	metric_reset(m_node_capacity);
	metric_reset(m_node_runs);
	metric_reset(m_node_run_slots);
	for (struct node *n = node_first(); n; n = n->next) {
		const char *l[] = {n->name};
		metric_set(m_node_runs, l, (double)ops_node_runs(n));
		metric_set(m_node_run_slots, l, (double)pool_node_run_slots(n));
		metric_set(m_node_up, l, n->up);
		metric_set(m_node_slots, l, (double)n->slots);
		metric_set(m_node_capacity, l, (double)n->capacity);
	}
	metric_reset(m_sessions);
	for (struct pool *p = pool_first(); p; p = p->next)
		metric_set(m_sessions, (const char *const[]){p->name, p->language}, 0);
	for (struct lease *l = lease_first(); l; l = l->next)
		metric_inc(m_sessions, (const char *const[]){l->pool->name, l->pool->language}, 1);
	struct http_server_refusals rf;
	http_server_refusals(NULL, &rf); /* kept by the HTTP servers */
	metric_set(m_conn_refused, (const char *const[]){"client_cap"}, (double)rf.client_cap);
	metric_set(m_conn_refused, (const char *const[]){"total_cap"}, (double)rf.total_cap);
	metric_set(m_conn_refused, (const char *const[]){"idle_closed"}, (double)rf.evicted);
}

struct metrics *telemetry_init(void)
{
	static const char *const pool_l[] = {"pool", "language", NULL};
	static const char *const node_l[] = {"node", NULL};

	reg = metrics_new();
	m_ready = metrics_gauge(reg, "warmpool_pool_ready_slots", "Slots ready to be leased.", pool_l);
	m_leased = metrics_gauge(reg, "warmpool_pool_leased_slots", "Slots leased to a session.", pool_l);
	m_creating = metrics_gauge(reg, "warmpool_pool_creating_slots", "Slots being created.", pool_l);
	m_warm = metrics_gauge(reg, "warmpool_pool_warm_slots", "Configured number of ready slots to keep.", pool_l);
	m_max = metrics_gauge(reg, "warmpool_pool_max_slots", "Configured maximum of slots (ready + leased).", pool_l);
	m_queued = metrics_gauge(reg, "warmpool_pool_queued_requests", "Lease requests waiting for a slot.", pool_l);
	m_draining = metrics_gauge(reg, "warmpool_pool_draining", "1 while the pool refuses new leases.", pool_l);
	m_create_failures =
	    metrics_counter(reg, "warmpool_slot_create_failures_total", "Slot creations that failed.", pool_l);
	m_created = metrics_counter(reg, "warmpool_slots_created_total", "Slots created.", pool_l);
	m_node_up = metrics_gauge(reg, "warmpool_node_up", "1 when the sandboxd node answers.", node_l);
	m_node_slots = metrics_gauge(reg, "warmpool_node_slots", "Slots the node holds.", node_l);
	m_node_capacity = metrics_gauge(reg, "warmpool_node_capacity_slots", "Slots the node can hold.", node_l);
	m_sessions = metrics_gauge(reg, "warmpool_sessions", "Sessions in the lease table, by pool.", pool_l);
	m_http = metrics_counter(reg, "warmpool_http_requests_total", "HTTP requests answered, by route and status.",
				 (const char *const[]){"route", "status", NULL});
	m_http_duration =
	    metrics_histogram(reg, "warmpool_http_request_duration_seconds",
			      "Time from a whole request received to its answer, by route.",
			      (const char *const[]){"route", NULL}, metrics_latency_buckets, metrics_latency_buckets_n);
	m_refused = metrics_counter(
	    reg, "warmpool_requests_refused_total",
	    "Session leases, executions and judged submissions refused for lack of room or time (429, 503), by "
	    "pool and reason (the error code: PoolExhausted, QueueFull, TooManyQueued, QueueTimeout, ...).",
	    (const char *const[]){"pool", "reason", NULL});
	m_conn_refused =
	    metrics_counter(reg, "warmpool_http_connections_refused_total",
			    "Connections turned away: over max_connections_per_client (client_cap), over "
			    "max_connections with none idle "
			    "to close (total_cap), or idle ones closed to admit another client (idle_closed).",
			    (const char *const[]){"reason", NULL});
	m_exec = metrics_histogram(
	    reg, "warmpool_execution_duration_seconds",
	    "Judged executions (/execute, /v1 runs with tests), from request to answer, by verdict.",
	    (const char *const[]){"language", "verdict", NULL}, metrics_latency_buckets, metrics_latency_buckets_n);
	m_interp = metrics_histogram(
	    reg, "warmpool_interpreter_execution_duration_seconds",
	    "Interpreter executions (the Azure-compatible routes), from request to answer, by the interpreter's status "
	    "(ok, error, timeout).",
	    (const char *const[]){"language", "status", NULL}, metrics_latency_buckets, metrics_latency_buckets_n);
	m_lease_wait =
	    metrics_histogram(reg, "warmpool_lease_wait_seconds",
			      "Time a new session, or a judged submission once admitted, waited for its slot.",
			      (const char *const[]){"pool", NULL}, metrics_latency_buckets, metrics_latency_buckets_n);
	m_exec_queued =
	    metrics_gauge(reg, "warmpool_execute_queued",
			  "Judged submissions (/execute) waiting in the fair queue for their turn.", pool_l);
	m_exec_running = metrics_gauge(reg, "warmpool_execute_running",
				       "Judged submissions running (holding a node's run budget).", pool_l);
	m_queue_len = metrics_gauge(reg, "warmpool_execute_queue_length",
				    "Judged submissions in the fair queue, all pools.", NULL);
	m_drain = metrics_gauge(reg, "warmpool_execute_queue_drain_rate",
				"Submissions leaving the fair queue per second (recent window).", NULL);
	m_queue_wait = metrics_histogram(
	    reg, "warmpool_execute_queue_wait_seconds", "Time a judged submission waited in the fair queue.",
	    (const char *const[]){"pool", NULL}, metrics_latency_buckets, metrics_latency_buckets_n);
	m_node_runs =
	    metrics_gauge(reg, "warmpool_node_runs", "Judged runs poold has in progress on the node.", node_l);
	m_node_run_slots =
	    metrics_gauge(reg, "warmpool_node_run_slots", "Judged runs the node runs at once (its run_slots).", node_l);
	m_warm_short = metrics_gauge(reg, "warmpool_pool_warm_shortfall",
				     "Warm slots the pool misses (warm minus ready and creating).", pool_l);
	m_short_events = metrics_counter(
	    reg, "warmpool_pool_no_room_total",
	    "Times the pool could not reach warm or serve a waiter for lack of room (see its last_error).", pool_l);
	metrics_on_collect(reg, collect, NULL);
	metrics_process(reg, "warmpool_build_info", WARMPOOL_VERSION);
	return reg;
}

void telemetry_http(const char *route, int status, double seconds)
{
	char s[8];
	snprintf(s, sizeof(s), "%d", status);
	metric_inc(m_http, (const char *const[]){route, s}, 1);
	metric_observe(m_http_duration, (const char *const[]){route}, seconds > 0 ? seconds : 0);
}

void telemetry_refused(const char *pool, const char *reason)
{
	metric_inc(m_refused, (const char *const[]){pool, reason}, 1);
}

void telemetry_interpreter(const char *language, const char *status, double seconds)
{
	metric_observe(m_interp, (const char *const[]){language, status}, seconds);
}

void telemetry_execution(const char *language, const char *verdict, double seconds)
{
	metric_observe(m_exec, (const char *const[]){language, verdict}, seconds);
}

void telemetry_queue_wait(const char *pool, double seconds)
{
	metric_observe(m_queue_wait, (const char *const[]){pool}, seconds);
}

void telemetry_lease_wait(const char *pool, double seconds)
{
	metric_observe(m_lease_wait, (const char *const[]){pool}, seconds);
}
