/* metrics.h — a small Prometheus registry: counters, gauges and histograms
 * with labels, rendered in the text exposition format (version 0.0.4).
 * Names follow Prometheus conventions (snake_case, unit suffix, _total for
 * counters); the caller picks them. Not thread-safe: one loop per daemon. */
#ifndef WARMPOOL_METRICS_H
#define WARMPOOL_METRICS_H

#include <stddef.h>

struct metrics;
struct metric; /* a family: one name, help, type, label names */

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* label_names: NULL-terminated, may be NULL for none. buckets: ascending
 * upper bounds for histograms (+Inf is implicit), n_buckets of them.
 * Registration is for start-up and never returns NULL: an invalid name
 * (metric [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]* not
 * starting with __), a counter not named *_total, a histogram label "le",
 * a name registered twice, buckets not finite and strictly ascending, or no
 * memory is a bug: a line on stderr, then abort(). A family without labels
 * shows its one series at 0 from the start. Families are rendered in
 * registration order, series in order of first use. */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help, const char *const *label_names);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help, const char *const *label_names);
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help, const char *const *label_names,
				 const double *buckets, size_t n_buckets);

/* label_values: as many as the family has label names (NULL when none;
 * a NULL array or entry counts as ""). Values are escaped on output (\\, \",
 * \n). Updates never abort: a NULL family, inc/set on a histogram, observe on
 * a counter or gauge, a negative or NaN counter delta do nothing, and a new
 * series without memory is dropped. set works on counters too (mirroring a
 * count kept elsewhere). */
void metric_inc(struct metric *f, const char *const *label_values, double delta);
void metric_set(struct metric *f, const char *const *label_values, double value);
void metric_observe(struct metric *f, const char *const *label_values, double value);
/* Drop every series of the family (for gauges recomputed at scrape time). */
void metric_reset(struct metric *f);

/* Called at the start of metrics_render, to refresh gauges; several may be
 * added, they run in the order added. */
void metrics_on_collect(struct metrics *m, void (*fn)(void *data), void *data);
/* The whole exposition; malloc'd, caller frees; NULL without memory. */
char *metrics_render(struct metrics *m, size_t *len);

/* The process_* families of Prometheus' client libraries (CPU seconds,
 * resident and virtual memory, open and maximum fds, start time), read from
 * /proc/self at scrape time, and a gauge named build_info (e.g.
 * "warmpool_build_info") at 1 with the version in a label. Once per registry. */
void metrics_process(struct metrics *m, const char *build_info, const char *version);

/* Default latency buckets in seconds, 0.5 ms … 30 s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_buckets_n;

#endif
