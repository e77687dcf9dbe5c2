/* metrics.c — see metrics.h. The registry behind every daemon's /metrics.
 *
 * A registry holds its families in registration order; a family holds its
 * series in an array in insertion order (so the output is stable from one
 * scrape to the next) plus an open-addressing index from label values to a
 * position in that array, so finding a series stays O(1) with the few
 * thousand of pool × verdict × route. Histogram series count per bucket and
 * are made cumulative only when rendered.
 *
 * Registration happens once at start-up, so its failures are bugs or a host
 * unfit to run: an invalid metric or label name, a counter not named *_total,
 * a histogram label called "le", a name registered twice, bounds not strictly
 * ascending, or out of memory print a line on stderr and abort(). Updates never
 * abort: a NULL family is ignored, a sample that cannot get memory is dropped,
 * a negative or NaN counter increment and an update of the wrong kind (inc/set
 * on a histogram, observe on a counter or gauge) do nothing.
 *
 * Numbers: integral values below 2^53 print as integers ("3", not "3e+00"),
 * others with the shortest %.15g/%.16g/%.17g that reads back to the same
 * double (le="0.1", not "0.10000000000000001"); +Inf, -Inf and NaN as
 * Prometheus spells them. */
#include "metrics.h"

#include <dirent.h>
#include <math.h> /* isnan, isinf: macros, no libm */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cleanup.h"

const double metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					  0.25,	  0.5,	 1,	 2.5,	5,    10,    30};
const size_t metrics_latency_buckets_n = ARRAY_SIZE(metrics_latency_buckets);

struct series {
	char *key; /* the label values packed: "v1\0v2\0", key_len bytes */
	size_t key_len;
	uint32_t hash;
	double value;	    /* counter, gauge */
	double sum;	    /* histogram */
	uint64_t count;	    /* histogram */
	uint64_t buckets[]; /* histogram: n_bounds + 1, the last is +Inf; not cumulative */
};

struct metric {
	char *name, *help;
	enum metric_type type;
	char **labels; /* n_labels names */
	size_t n_labels;
	double *bounds; /* histogram upper bounds without +Inf */
	size_t n_bounds;
	struct series **series; /* insertion order */
	size_t n_series, cap_series;
	uint32_t *index;  /* 0: empty, else a position in series + 1 */
	size_t index_cap; /* a power of two */
};

struct collector {
	void (*fn)(void *data);
	void *data;
};

struct metrics {
	struct metric **families;
	size_t n_families, cap_families;
	struct collector *collectors;
	size_t n_collectors, cap_collectors;
};

__attribute__((noreturn, format(printf, 1, 2))) static void metrics_die(const char *fmt, ...)
{
	va_list ap;
	fputs("metrics: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (a bug in the caller)\n", stderr);
	abort();
}

/* Make room for one more element in *arr. */
static int metrics_grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	void **pa = arr;
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	p = reallocarray(*pa, ncap, elem);
	if (!p)
		return -ENOMEM;
	*pa = p;
	*cap = ncap;
	return 0;
}

static bool metrics_valid_name(const char *s, bool label)
{
	if (!s || !*s)
		return false;
	if (label && s[0] == '_' && s[1] == '_') /* reserved for Prometheus */
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':') ||
			  (p != s && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static bool metrics_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

static const char *metrics_value_at(const char *const *values, size_t i)
{
	return values && values[i] ? values[i] : "";
}

/* FNV-1a over the packed values. Label values come from the program (pool
 * names, verdicts, routes), not from clients, so no keyed hash is needed. */
static uint32_t metrics_hash(const char *const *values, size_t n, size_t *len)
{
	uint32_t h = 2166136261u;
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const char *v = metrics_value_at(values, i);
		do {
			h = (h ^ (unsigned char)*v) * 16777619u;
			total++;
		} while (*v++);
	}
	*len = total;
	return h;
}

/* Called with equal packed lengths, so the walk stays inside s->key. */
static bool metrics_key_equal(const struct series *s, const char *const *values, size_t n)
{
	const char *k = s->key;

	for (size_t i = 0; i < n; i++) {
		const char *v = metrics_value_at(values, i);
		size_t l = strlen(v) + 1;
		if (memcmp(k, v, l) != 0)
			return false;
		k += l;
	}
	return true;
}

static void metrics_index_put(uint32_t *index, size_t cap, uint32_t hash, uint32_t pos)
{
	size_t i = hash & (cap - 1);
	while (index[i])
		i = (i + 1) & (cap - 1);
	index[i] = pos + 1;
}

static int metrics_index_grow(struct metric *f)
{
	size_t ncap;
	uint32_t *index;

	if ((f->n_series + 1) * 4 <= f->index_cap * 3)
		return 0;
	if (f->n_series >= UINT32_MAX - 1)
		return -ENOMEM;
	ncap = f->index_cap ? f->index_cap * 2 : 16;
	index = calloc(ncap, sizeof(*index));
	if (!index)
		return -ENOMEM;
	for (size_t i = 0; i < f->n_series; i++)
		metrics_index_put(index, ncap, f->series[i]->hash, (uint32_t)i);
	free(f->index);
	f->index = index;
	f->index_cap = ncap;
	return 0;
}

/* The series for these label values, created on first use; NULL without memory. */
static struct series *metrics_series(struct metric *f, const char *const *values)
{
	size_t len, nb = f->type == METRIC_HISTOGRAM ? f->n_bounds + 1 : 0;
	uint32_t h = metrics_hash(values, f->n_labels, &len);
	struct series *s;
	char *k;

	if (f->index_cap) {
		for (size_t i = h & (f->index_cap - 1); f->index[i]; i = (i + 1) & (f->index_cap - 1)) {
			s = f->series[f->index[i] - 1];
			if (s->hash == h && s->key_len == len && metrics_key_equal(s, values, f->n_labels))
				return s;
		}
	}
	if (metrics_index_grow(f) < 0 || metrics_grow(&f->series, &f->cap_series, f->n_series, sizeof(s)) < 0)
		return NULL;
	s = calloc(1, sizeof(*s) + nb * sizeof(s->buckets[0]) + len);
	if (!s)
		return NULL;
	s->key = k = (char *)&s->buckets[nb];
	for (size_t i = 0; i < f->n_labels; i++) {
		const char *v = metrics_value_at(values, i);
		size_t l = strlen(v) + 1;
		memcpy(k, v, l);
		k += l;
	}
	s->key_len = len;
	s->hash = h;
	metrics_index_put(f->index, f->index_cap, h, (uint32_t)f->n_series);
	f->series[f->n_series++] = s;
	return s;
}

static void metrics_family_free(struct metric *f)
{
	if (!f)
		return;
	metric_reset(f);
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
	free(f->labels);
	free(f->series);
	free(f->index);
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

static struct metric *metrics_family(struct metrics *m, const char *name, const char *help, enum metric_type type,
				     const char *const *label_names, const double *bounds, size_t n_bounds)
{
	struct metric *f;
	size_t n_labels = 0;

	if (!m)
		metrics_die("registering `%s` in a NULL registry", name ? name : "(null)");
	if (!metrics_valid_name(name, false))
		metrics_die("invalid metric name `%s`", name ? name : "(null)");
	if (type == METRIC_COUNTER && !metrics_has_suffix(name, "_total"))
		metrics_die("counter `%s` must be named *_total", name);
	for (size_t i = 0; i < m->n_families; i++)
		if (strcmp(m->families[i]->name, name) == 0)
			metrics_die("metric `%s` registered twice", name);
	for (; label_names && label_names[n_labels]; n_labels++) {
		const char *l = label_names[n_labels];
		if (!metrics_valid_name(l, true))
			metrics_die("invalid label name `%s` for `%s`", l, name);
		if (type == METRIC_HISTOGRAM && strcmp(l, "le") == 0)
			metrics_die("histogram `%s` may not have a label `le`", name);
		for (size_t j = 0; j < n_labels; j++)
			if (strcmp(label_names[j], l) == 0)
				metrics_die("label `%s` twice in `%s`", l, name);
	}
	/* A trailing +Inf is implicit anyway: drop it. */
	if (n_bounds && isinf(bounds[n_bounds - 1]) && bounds[n_bounds - 1] > 0)
		n_bounds--;
	for (size_t i = 0; i < n_bounds; i++)
		if (isnan(bounds[i]) || isinf(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
			metrics_die("histogram `%s`: buckets not finite and strictly ascending", name);

	f = calloc(1, sizeof(*f));
	if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help ? help : "")) ||
	    !(f->labels = calloc(n_labels + 1, sizeof(*f->labels))) ||
	    (n_bounds && !(f->bounds = malloc(n_bounds * sizeof(*bounds)))))
		metrics_die("out of memory registering `%s`", name);
	f->type = type;
	for (size_t i = 0; i < n_labels; i++) {
		if (!(f->labels[i] = strdup(label_names[i])))
			metrics_die("out of memory registering `%s`", name);
		f->n_labels++;
	}
	if (n_bounds)
		memcpy(f->bounds, bounds, n_bounds * sizeof(*bounds));
	f->n_bounds = n_bounds;
	/* A family without labels has its one series, at zero, from the start:
	 * a counter that never moved still shows, and rate() sees the first step. */
	if (n_labels == 0 && !metrics_series(f, NULL))
		metrics_die("out of memory registering `%s`", name);
	if (metrics_grow(&m->families, &m->cap_families, m->n_families, sizeof(f)) < 0)
		metrics_die("out of memory registering `%s`", name);
	m->families[m->n_families++] = f;
	return f;
}

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help, const char *const *label_names)
{
	return metrics_family(m, name, help, METRIC_COUNTER, label_names, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help, const char *const *label_names)
{
	return metrics_family(m, name, help, METRIC_GAUGE, label_names, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help, const char *const *label_names,
				 const double *buckets, size_t n_buckets)
{
	return metrics_family(m, name, help, METRIC_HISTOGRAM, label_names, buckets, n_buckets);
}

void metric_inc(struct metric *f, const char *const *label_values, double delta)
{
	struct series *s;

	if (!f || f->type == METRIC_HISTOGRAM || (f->type == METRIC_COUNTER && !(delta >= 0)))
		return;
	s = metrics_series(f, label_values);
	if (s)
		s->value += delta;
}

void metric_set(struct metric *f, const char *const *label_values, double value)
{
	struct series *s;

	if (!f || f->type == METRIC_HISTOGRAM)
		return;
	s = metrics_series(f, label_values);
	if (s)
		s->value = value;
}

void metric_observe(struct metric *f, const char *const *label_values, double value)
{
	struct series *s;
	size_t i = 0;

	if (!f || f->type != METRIC_HISTOGRAM)
		return;
	s = metrics_series(f, label_values);
	if (!s)
		return;
	/* NaN compares false with every bound and lands in +Inf, as in client_golang. */
	while (i < f->n_bounds && !(value <= f->bounds[i]))
		i++;
	s->buckets[i]++;
	s->count++;
	s->sum += value;
}

void metric_reset(struct metric *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_series; i++)
		free(f->series[i]);
	f->n_series = 0;
	if (f->index)
		memset(f->index, 0, f->index_cap * sizeof(*f->index));
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_families; i++)
		metrics_family_free(m->families[i]);
	free(m->families);
	free(m->collectors);
	free(m);
}

void metrics_on_collect(struct metrics *m, void (*fn)(void *data), void *data)
{
	if (metrics_grow(&m->collectors, &m->cap_collectors, m->n_collectors, sizeof(*m->collectors)) < 0)
		metrics_die("out of memory adding a collector");
	m->collectors[m->n_collectors++] = (struct collector){fn, data};
}

static void metrics_put_number(FILE *out, double v)
{
	char buf[40];

	if (isnan(v) || isinf(v))
		snprintf(buf, sizeof(buf), "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
		snprintf(buf, sizeof(buf), "%lld", (long long)v); /* also -0 as 0 */
	else
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	fputs(buf, out);
}

/* Label values escape \, " and newline; HELP text escapes \ and newline. */
static void metrics_put_escaped(FILE *out, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (quote && *s == '"')
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

/* "{a="x",b="y"}" with le last for a histogram bucket; nothing when empty. */
static void metrics_put_labels(FILE *out, const struct metric *f, const struct series *s, const double *le)
{
	const char *k = s->key;

	if (!f->n_labels && !le)
		return;
	fputc('{', out);
	for (size_t i = 0; i < f->n_labels; i++) {
		fprintf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		metrics_put_escaped(out, k, true);
		fputc('"', out);
		k += strlen(k) + 1;
	}
	if (le) {
		fprintf(out, "%sle=\"", f->n_labels ? "," : "");
		metrics_put_number(out, *le);
		fputc('"', out);
	}
	fputc('}', out);
}

static void metrics_put_sample(FILE *out, const struct metric *f, const char *suffix, const struct series *s,
			       const double *le, double v)
{
	fputs(f->name, out);
	fputs(suffix, out);
	metrics_put_labels(out, f, s, le);
	fputc(' ', out);
	metrics_put_number(out, v);
	fputc('\n', out);
}

static void metrics_put_family(FILE *out, const struct metric *f)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	static const double inf = INFINITY;

	fprintf(out, "# HELP %s ", f->name);
	metrics_put_escaped(out, f->help, false);
	fprintf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
	for (size_t i = 0; i < f->n_series; i++) {
		const struct series *s = f->series[i];
		uint64_t cum = 0;

		if (f->type != METRIC_HISTOGRAM) {
			metrics_put_sample(out, f, "", s, NULL, s->value);
			continue;
		}
		for (size_t b = 0; b < f->n_bounds; b++) {
			cum += s->buckets[b];
			metrics_put_sample(out, f, "_bucket", s, &f->bounds[b], (double)cum);
		}
		metrics_put_sample(out, f, "_bucket", s, &inf, (double)s->count);
		metrics_put_sample(out, f, "_sum", s, NULL, s->sum);
		metrics_put_sample(out, f, "_count", s, NULL, (double)s->count);
	}
}

char *metrics_render(struct metrics *m, size_t *len)
{
	cleanup_free char *buf = NULL;
	size_t size = 0;
	FILE *out;
	int bad;

	for (size_t i = 0; i < m->n_collectors; i++)
		m->collectors[i].fn(m->collectors[i].data);
	out = open_memstream(&buf, &size);
	if (!out)
		return NULL;
	for (size_t i = 0; i < m->n_families; i++)
		metrics_put_family(out, m->families[i]);
	bad = ferror(out);
	if (fclose(out) != 0 || bad)
		return NULL;
	if (len)
		*len = size;
	return steal_pointer(&buf);
}

/* ---- process_* (the names of Prometheus' client libraries) */

struct process_metrics {
	struct metric *cpu, *rss, *vsize, *fds, *max_fds, *start;
	double boot_time; /* s since the epoch */
	long ticks, page;
};

static double process_boot_time(void)
{
	cleanup_fclose FILE *f = fopen("/proc/stat", "re");
	char line[256];
	unsigned long long bt;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &bt) == 1)
			return (double)bt;
	return 0;
}

static void process_collect(void *data)
{
	struct process_metrics *pm = data;
	char buf[2048];
	size_t n = 0;
	struct rlimit rl;

	{
		cleanup_fclose FILE *f = fopen("/proc/self/stat", "re");
		if (f)
			n = fread(buf, 1, sizeof(buf) - 1, f);
	}
	buf[n] = '\0';
	/* fields after the command, which may hold spaces and parentheses */
	const char *p = strrchr(buf, ')');
	unsigned long long utime, stime, start, vsize;
	long long rss;
	if (p && sscanf(p + 2,
			"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
			&utime, &stime, &start, &vsize, &rss) == 5) {
		metric_set(pm->cpu, NULL, (double)(utime + stime) / (double)pm->ticks);
		metric_set(pm->start, NULL, pm->boot_time + (double)start / (double)pm->ticks);
		metric_set(pm->vsize, NULL, (double)vsize);
		metric_set(pm->rss, NULL, (double)rss * (double)pm->page);
	}
	cleanup_dir DIR *d = opendir("/proc/self/fd");
	double fds = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		fds += e->d_name[0] != '.';
	metric_set(pm->fds, NULL, fds > 0 ? fds - 1 : 0); /* less the one reading the directory */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metric_set(pm->max_fds, NULL, rl.rlim_cur == RLIM_INFINITY ? (double)INT64_MAX : (double)rl.rlim_cur);
}

void metrics_process(struct metrics *m, const char *build_info, const char *version)
{
	static struct process_metrics pm;

	pm.ticks = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
	pm.page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
	pm.boot_time = process_boot_time();
	pm.cpu =
	    metrics_counter(m, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", NULL);
	pm.rss = metrics_gauge(m, "process_resident_memory_bytes", "Resident memory size in bytes.", NULL);
	pm.vsize = metrics_gauge(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL);
	pm.fds = metrics_gauge(m, "process_open_fds", "Number of open file descriptors.", NULL);
	pm.max_fds = metrics_gauge(m, "process_max_fds", "Maximum number of open file descriptors.", NULL);
	pm.start = metrics_gauge(m, "process_start_time_seconds",
				 "Start time of the process since unix epoch in seconds.", NULL);
	struct metric *bi = metrics_gauge(m, build_info, "Always 1; the version of the running binary in a label.",
					  (const char *const[]){"version", NULL});
	metric_set(bi, (const char *const[]){version}, 1);
	metrics_on_collect(m, process_collect, &pm);
}
