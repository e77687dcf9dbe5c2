/* launch.c — see launch.h. */
#include "launch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cleanup.h"
#include "proto.h"
#include "settings.h"

/* `s` with every `key` replaced by `val`, malloc'd. */
static char *subst(const char *s, const char *key, const char *val)
{
	size_t klen = strlen(key), vlen = strlen(val), n = 0;
	for (const char *p = s; (p = strstr(p, key)); p += klen)
		n++;
	char *out = malloc(strlen(s) + n * vlen + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = s, *q; *p; p = q + klen) {
		if (!(q = strstr(p, key))) {
			strcpy(o, p);
			return out;
		}
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, val, vlen);
		o += vlen;
	}
	*o = '\0';
	return out;
}

int launch_message(const struct language *lang, char *const *argv, const char *const *extra, const char *cwd,
		   const struct limits *lim, unsigned group, bool cpu_unlimited, char **out, size_t *len)
{
	return launch_message_env(lang, argv, extra, NULL, cwd, lim, group, cpu_unlimited, out, len);
}

int launch_message_env(const struct language *lang, char *const *argv, const char *const *extra, const char *const *env,
		       const char *cwd, const struct limits *lim, unsigned group, bool cpu_unlimited, char **out,
		       size_t *len)
{
	static const char *const base_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
					       "LANG=C.UTF-8", NULL};
	size_t argc = 0, envc = 0, slen = 0;
	const char *envs[300];

	for (size_t i = 0; base_env[i]; i++)
		envs[envc++] = base_env[i];
	for (size_t i = 0; lang->env && lang->env[i] && envc < 290; i++)
		envs[envc++] = lang->env[i];
	for (size_t i = 0; env && env[i] && envc < 299; i++)
		envs[envc++] = env[i];
	char *args[257];
	char mem[32];
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)lim->memory_kb);
	size_t n_argv = 0;
	while (argv[n_argv])
		n_argv++;
	if (!cwd)
		cwd = "/mnt/data";
	for (;; argc++) {
		const char *a = argc < n_argv ? argv[argc] : extra ? extra[argc - n_argv] : NULL;
		if (!a)
			break;
		if (argc == 256) {
			while (argc--)
				free(args[argc]);
			return -E2BIG;
		}
		args[argc] = subst(a, "{memory_kb}", mem);
		if (!args[argc]) {
			while (argc--)
				free(args[argc]);
			return -ENOMEM;
		}
		slen += strlen(args[argc]) + 1;
	}
	for (size_t i = 0; i < envc; i++)
		slen += strlen(envs[i]) + 1;
	slen += strlen(cwd) + 1;
	size_t total = sizeof(struct proto_run) + slen;
	struct proto_run *m = total > PROTO_MAX ? NULL : calloc(1, total);
	if (!m) {
		for (size_t i = 0; i < argc; i++)
			free(args[i]);
		return total > PROTO_MAX ? -E2BIG : -ENOMEM;
	}
	m->hdr.type = PROTO_RUN;
	m->group = group;
	m->argc = (uint32_t)argc;
	m->envc = (uint32_t)envc;
	m->rlim_cpu_s = cpu_unlimited ? RLIM_INFINITY : (lim->cpu_ms + 999) / 1000 + 1;
	m->rlim_fsize = lim->fsize_bytes;
	m->rlim_stack = lim->memory_kb * 1024 < (1ull << 30) ? lim->memory_kb * 1024 : (1ull << 30);
	m->rlim_nofile = sandboxd_settings->nofile;
	m->strings_len = (uint32_t)slen;
	char *p = m->strings;
	for (size_t i = 0; i < argc; i++) {
		p = stpcpy(p, args[i]) + 1;
		free(args[i]);
	}
	for (size_t i = 0; i < envc; i++)
		p = stpcpy(p, envs[i]) + 1;
	strcpy(p, cwd);
	*out = (char *)m;
	*len = total;
	return 0;
}

json_t *launch_json_text(const char *p, size_t n)
{
	size_t cap = n + 16, o = 0;
	cleanup_free char *buf = NULL;

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)p[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)p[i + k] >> 6) == 2;
		if (ok && len > 1) { /* overlongs, surrogates, > U+10FFFF */
			unsigned cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
			for (size_t k = 1; k < len; k++)
				cp = (cp << 6) | ((unsigned char)p[i + k] & 0x3f);
			ok = !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) &&
			     !(cp >= 0xd800 && cp <= 0xdfff) && cp <= 0x10ffff;
		}
		if (!buf || o + 4 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 8);
			if (!nb)
				return json_string("");
			buf = nb;
		}
		if (ok) {
			memcpy(buf + o, p + i, len);
			o += len;
			i += len;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	return json_stringn(buf ? buf : "", o);
}
