/* settings.c — sandboxd.conf through inih; every value checked with the
 * offending key and line in the message. */
#include "settings.h"

#include <libgen.h>
#include <sched.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "tls.h"

const struct settings *sandboxd_settings;

/* ---- TLS: the keys and the rule for TCP listeners ---- */

static int settings_tls_key(struct settings *s, const char *key, const char *v)
{
	if (strcmp(key, "tls_cert") == 0)
		return v[0] ? config_set_str(&s->tls_cert, v) : -EINVAL;
	if (strcmp(key, "tls_key") == 0)
		return v[0] ? config_set_str(&s->tls_key, v) : -EINVAL;
	if (strcmp(key, "tls_client_ca") == 0)
		return v[0] ? config_set_str(&s->tls_client_ca, v) : -EINVAL;
	if (strcmp(key, "tls_client_name") == 0)
		return v[0] && strlen(v) <= 253 ? config_set_str(&s->tls_client_name, v) : -EINVAL;
	if (strcmp(key, "insecure") == 0)
		return config_parse_bool(v, &s->insecure);
	return -ENOENT;
}

/* One listener address: strip tls:// (or https://) and say whether it was
 * there; a plain TCP address is refused unless loopback and insecure. */
static int settings_tls_listener(struct settings *s, const char *path, const char *key, char **addr, bool *is_tls,
				 struct wp_error *err)
{
	const char *a = *addr;
	size_t skip = strncmp(a, "tls://", 6) == 0 ? 6 : strncmp(a, "https://", 8) == 0 ? 8 : 0;

	if (skip) {
		memmove(*addr, a + skip, strlen(a + skip) + 1);
		*is_tls = true;
		if (!s->tls_cert || !s->tls_key || !s->tls_client_ca)
			return wp_error_set(err, EINVAL,
					    "%s: %s = tls://%s needs tls_cert, tls_key and tls_client_ca (the CA "
					    "that signed poold's client certificate; deploy/tools/make-certs.sh "
					    "makes them)",
					    path, key, *addr);
		return 0;
	}
	if (strncmp(a, "unix:", 5) == 0)
		return 0;
	if (!tls_address_is_loopback(a))
		return wp_error_set(err, EPERM,
				    "%s: %s = %s is TCP without TLS on a non-loopback address: whoever reaches it "
				    "runs code as root's sandboxd and reads every session. Use %s = tls://%s with "
				    "tls_cert, tls_key and tls_client_ca (mutual TLS; see docs/security.md, TLS)",
				    path, key, a, key, a);
	if (!s->insecure)
		return wp_error_set(err, EPERM,
				    "%s: %s = %s is TCP without TLS: use %s = tls://%s with tls_cert, tls_key and "
				    "tls_client_ca, or, on loopback only, add `insecure = yes` to [sandboxd]",
				    path, key, a, key, a);
	return 0;
}

static int settings_tls_check(struct settings *s, const char *path, struct wp_error *err)
{
	int r;

	if (s->listen) {
		r = settings_tls_listener(s, path, "listen", &s->listen, &s->listen_is_tls, err);
		if (r < 0)
			return r;
	}
	if (s->listen_tcp) {
		r = settings_tls_listener(s, path, "listen_tcp", &s->listen_tcp, &s->listen_tcp_is_tls, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int settings_key(void *ctx, const char *section, const char *key, const char *v, struct wp_error *err)
{
	struct settings *s = ctx;
	if (strcmp(section, "sandboxd") == 0) {
		if (strcmp(key, "listen") == 0)
			return config_set_str(&s->listen, v);
		if (strcmp(key, "listen_tcp") == 0)
			return config_set_str(&s->listen_tcp, v);
		if (strncmp(key, "tls_", 4) == 0 || strcmp(key, "insecure") == 0)
			return settings_tls_key(s, key, v);
		if (strcmp(key, "state_dir") == 0)
			return v[0] == '/' ? config_set_str(&s->state_dir, v) : -EINVAL;
		if (strcmp(key, "languages") == 0)
			return config_set_str(&s->languages_dir, v);
		if (strcmp(key, "runtimes_dir") == 0)
			return v[0] ? config_set_str(&s->runtimes_dir, v) : -EINVAL;
		if (strcmp(key, "cgroup") == 0) {
			if (strcmp(v, "auto") && strcmp(v, "v1") && strcmp(v, "v2"))
				return -EINVAL;
			return config_set_str(&s->cgroup_mode, v);
		}
		if (strcmp(key, "cgroup_name") == 0) {
			if (!v[0] || strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
				return -EINVAL;
			return config_set_str(&s->cgroup_name, v);
		}
		if (strcmp(key, "capacity") == 0)
			return strcmp(v, "auto") == 0 ? (s->capacity = 0, 0)
						      : config_parse_u64(v, 1, 4096, &s->capacity);
		if (strcmp(key, "run_slots") == 0)
			return strcmp(v, "auto") == 0 ? (s->run_slots = 0, 0)
						      : config_parse_u64(v, 1, 4096, &s->run_slots);
		if (strcmp(key, "run_memory") == 0) {
			if (strcmp(v, "auto") == 0) {
				s->run_memory = 0;
				return 0;
			}
			int r = config_parse_size(v, &s->run_memory);
			return r < 0 ? r : s->run_memory < (16u << 20) ? -ERANGE : 0;
		}
		if (strcmp(key, "uid_base") == 0)
			return config_parse_u64(v, 1000, 4000000000u, &s->uid_base);
		if (strcmp(key, "max_body") == 0)
			return config_parse_size(v, &s->max_body);
		if (strcmp(key, "log_level") == 0)
			return log_parse_level(v, &s->log_level);
	} else if (strcmp(section, "slot") == 0) {
		if (strcmp(key, "memory") == 0)
			return config_parse_size(v, &s->slot_memory);
		if (strcmp(key, "pids") == 0)
			return config_parse_u64(v, 8, 65536, &s->slot_pids);
		if (strcmp(key, "data_size") == 0)
			return config_parse_size(v, &s->data_size);
		if (strcmp(key, "tmp_size") == 0)
			return config_parse_size(v, &s->tmp_size);
		if (strcmp(key, "shm_size") == 0)
			return config_parse_size(v, &s->shm_size);
		if (strcmp(key, "nofile") == 0)
			return config_parse_u64(v, 16, 65536, &s->nofile);
	} else if (strcmp(section, "limits_max") == 0) {
		return limits_set_ini(&s->max, key, v);
	}
	return -ENOENT;
}

/* "config/languages" in /etc/x/config/sandboxd.conf → /etc/x/config/languages */
static int resolve_relative(char **p, const char *conf_path)
{
	char buf[PATH_MAX];
	cleanup_free char *copy = NULL;

	if ((*p)[0] == '/' || strncmp(*p, "config/", 7) != 0)
		return 0;
	if (!(copy = strdup(conf_path)))
		return -ENOMEM;
	const char *dir = dirname(copy);
	if (snprintf(buf, sizeof(buf), "%s/%s", dir, *p + 7) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	return config_set_str(p, buf);
}

/* *p made absolute and real when it names a directory; -ENOENT/-ENOTDIR if not. */
static int resolve_dir(char **p)
{
	char buf[PATH_MAX];
	struct stat st;

	if (!realpath(*p, buf))
		return -errno;
	if (stat(buf, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return config_set_str(p, buf);
}

/* runtimes_dir when the file does not set it: the first that exists. */
static int default_runtimes(struct settings *s, const char *conf_path)
{
	char exe[PATH_MAX], cand[3][PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int r;

	cand[0][0] = cand[1][0] = cand[2][0] = '\0';
	snprintf(cand[0], sizeof(cand[0]), "config/../sandboxd/runtimes");
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(cand[1], sizeof(cand[1]), "%s/../sandboxd/runtimes", exe);
		snprintf(cand[2], sizeof(cand[2]), "%s/../share/warmpool/runtimes", exe);
	}
	for (size_t i = 0; i < 3; i++) {
		if (!cand[i][0])
			continue;
		if ((r = config_set_str(&s->runtimes_dir, cand[i])) < 0 ||
		    (r = resolve_relative(&s->runtimes_dir, conf_path)) < 0)
			return r;
		if (resolve_dir(&s->runtimes_dir) == 0)
			return 0;
	}
	free(s->runtimes_dir);
	s->runtimes_dir = NULL;
	return 0;
}

/* MemTotal of /proc/meminfo in bytes, 0 when unknown. */
static uint64_t host_memory(void)
{
	cleanup_fclose FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			return (uint64_t)kb * 1024;
	return 0;
}

/* The CPUs this process may run on (its affinity: a container's cpuset). */
static uint64_t host_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (uint64_t)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (uint64_t)n : 1;
}

/* `auto` values, from the host: the run budget from its CPUs and memory
 * (a compilation or a test per CPU; the memory limits of what runs at once
 * within 3/4 of RAM), the slot capacity from its memory (an idle slot with a
 * language interpreter holds ~20-60 MB: one slot per 64 MiB, 16 to 1024). */
static void settings_auto(struct settings *s)
{
	uint64_t mem = host_memory();

	s->cpus = host_cpus();
	if (!s->run_slots)
		s->run_slots = s->cpus;
	if (!s->run_memory)
		s->run_memory = mem ? mem / 4 * 3 : 1ull << 30;
	if (!s->capacity) {
		uint64_t c = mem ? mem / (64ull << 20) : 64;
		s->capacity = c < 16 ? 16 : c > 1024 ? 1024 : c;
	}
}

int settings_load(const char *path, struct settings *s, struct wp_error *err)
{
	int r;

	memset(s, 0, sizeof(*s));
	if (config_set_str(&s->listen, "unix:/run/warmpool/sandboxd.sock") ||
	    config_set_str(&s->state_dir, "/run/warmpool/sandboxd") ||
	    config_set_str(&s->languages_dir, "config/languages") || config_set_str(&s->cgroup_mode, "auto") ||
	    config_set_str(&s->cgroup_name, "warmpool"))
		return wp_error_set(err, ENOMEM, "out of memory");
	s->capacity = 0; /* auto */
	s->run_slots = 0;
	s->run_memory = 0;
	s->uid_base = 300000;
	s->max_body = 160ull << 20;
	s->log_level = LOG_INFO;
	s->slot_memory = 1ull << 30;
	s->slot_pids = 256;
	s->data_size = 128ull << 20;
	s->tmp_size = 64ull << 20;
	s->shm_size = 16ull << 20;
	s->nofile = 256;
	limits_default(&s->max);
	s->max.cpu_ms = 30000;
	s->max.wall_ms = 60000;
	s->max.memory_kb = 1u << 20;
	s->max.pids = 256;
	s->max.output_bytes = 64ull << 20;
	s->max.fsize_bytes = 128ull << 20;

	if ((r = config_load_ini(path, settings_key, s, err)) < 0)
		return r;
	if ((r = settings_tls_check(s, path, err)) < 0)
		return r;
	settings_auto(s);
	if (s->uid_base + s->capacity > 4294967294ull)
		return wp_error_set(err, EINVAL, "%s: uid_base + capacity passes the uid range", path);
	if (s->data_size < (1u << 20) || s->tmp_size < (1u << 20) || s->shm_size < (64u << 10))
		return wp_error_set(err, EINVAL, "%s: data_size and tmp_size must be >= 1M, shm_size >= 64k", path);
	if (resolve_relative(&s->languages_dir, path) < 0)
		return wp_error_set(err, ENOMEM, "languages path too long");
	if (s->runtimes_dir) {
		if (resolve_relative(&s->runtimes_dir, path) < 0)
			return wp_error_set(err, ENOMEM, "runtimes_dir path too long");
		if ((r = resolve_dir(&s->runtimes_dir)) < 0)
			return wp_error_set(err, -r, "%s: runtimes_dir `%s`: %s", path, s->runtimes_dir, strerror(-r));
	} else if (default_runtimes(s, path) < 0) {
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

void settings_free(struct settings *s)
{
	free(s->listen);
	free(s->listen_tcp);
	free(s->state_dir);
	free(s->languages_dir);
	free(s->runtimes_dir);
	free(s->runtimes_copy);
	free(s->cgroup_mode);
	free(s->cgroup_name);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->tls_client_ca);
	free(s->tls_client_name);
	memset(s, 0, sizeof(*s));
}
