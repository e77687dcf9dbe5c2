/* settings.h — sandboxd.conf, parsed once at start (see config/sandboxd.conf). */
#ifndef SANDBOXD_SETTINGS_H
#define SANDBOXD_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "limits.h"
#include "log.h"

struct settings {
	char *listen;	  /* "unix:/run/warmpool/sandboxd.sock" */
	char *listen_tcp; /* optional "127.0.0.1:9091" */
	char *state_dir;
	char *languages_dir;
	char *runtimes_dir;  /* absolute, real (no symlink), copied at start to
				runtimes_copy; NULL when unset and no default exists */
	char *runtimes_copy; /* set at start: the read-only tmpfs copy every slot
				binds at /opt/warmpool (mounts_runtimes_copy) */
	char *cgroup_mode;   /* "auto" | "v1" | "v2" */
	char *cgroup_name;
	uint64_t capacity;   /* slots at once ("auto": from the host's memory) */
	uint64_t run_slots;  /* judged runs at once ("auto": the CPUs sandboxd may use) */
	uint64_t run_memory; /* bytes: the sum of running runs' memory limits ("auto": 3/4 of RAM) */
	uint64_t cpus;	     /* the CPUs sandboxd may run on (detected, GET /v1/info) */
	uint64_t uid_base;
	uint64_t max_body;
	enum log_level log_level;
	/* whole slot */
	uint64_t slot_memory;
	uint64_t slot_pids;
	uint64_t data_size;
	uint64_t tmp_size;
	uint64_t shm_size;
	uint64_t nofile;
	/* the most one request may ask for */
	struct limits max;

	/* TLS (settings_tls_check): `listen` or `listen_tcp` given as
	 * tls://HOST:PORT (or https://) is a mutual-TLS listener; the prefix is
	 * removed from the address and its flag set. A TCP listener without
	 * TLS needs a loopback address and insecure = yes. */
	bool listen_is_tls, listen_tcp_is_tls;
	char *tls_cert, *tls_key; /* PEM: the node's certificate (and chain), its key */
	char *tls_client_ca;	  /* PEM: the CA poold's client certificate must be signed by */
	char *tls_client_name;	  /* optional: the name poold's certificate must carry */
	bool insecure;		  /* a plain TCP listener on loopback is allowed */
	int64_t tls_not_after;	  /* of the certificate served now (main sets it at start and SIGHUP) */
};

/* Defaults, then the file. Relative paths in the file are taken relative to
 * the file's directory's parent when they start with "config/" — so the
 * repo's config works from any working directory — else to the cwd.
 * runtimes_dir, when not set, is the first directory of: config/../sandboxd/runtimes
 * (the repo's), <dir of the binary>/../sandboxd/runtimes (bin/sandboxd in the
 * repo), <dir of the binary>/../share/warmpool/runtimes (make install). */
/* The running daemon's settings (set by main once loaded). */
extern const struct settings *sandboxd_settings;

int settings_load(const char *path, struct settings *s, struct wp_error *err);
void settings_free(struct settings *s);

#endif
