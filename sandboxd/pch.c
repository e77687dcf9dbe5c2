/* pch.c — see pch.h. Layout under <state_dir>/pch (a tmpfs of its own),
 * for each header of a language's `pch` (its k-th: 0, 1, …):
 *
 *   <lang>/bits/stdc++.h.gch   the header, root-owned, 0444 (<lang>/ is bound
 *   <lang>/iostream.gch        read-only at /opt/warmpool-pch in its slots)
 *   <lang>/bits/stdc++.h.stamp the key it was built for, in hex
 *   .build-<lang>-<k>/         the build dir, nobody's while g++ runs
 *
 * Each header is a build of its own: built, failed and retried alone. */
#include "pch.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"

#define PCH_BUILD_UID	65534 /* nobody */
#define PCH_BUILD_CPU_S 300
#define PCH_TMPFS_PER	(256ull << 20)
#define PCH_RETRY_AFTER 300.0 /* a failed build is retried after 5 min (or a new key) */
#define PCH_LOG_MAX	600

struct pch {
	struct language *lang;
	const char *header;  /* one of lang->pch: "bits/stdc++.h" */
	char *dir;	     /* <root>/<lang> */
	char *build;	     /* <root>/.build-<lang>-<k> */
	char *out_name;	     /* "stdc++.h.gch" */
	char **flags;	     /* pch_build_flags() */
	struct stat cc_st;   /* the compiler as last seen */
	uint64_t key;	     /* for cc_st */
	uint64_t built_key;  /* of the header in place, 0: none */
	uint64_t build_key;  /* of the build in flight */
	uint64_t failed_key; /* of the last failed build */
	double failed_at;
	pid_t pid; /* build in flight, else 0 */
	double started;
	ev_child child;
};

static struct pch *pchs;
static size_t n_pchs;

uint64_t pch_key(const char *compiler, const struct stat *st, const char *version, const char *header,
		 char *const *flags)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	uint64_t nums[] = {(uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
			   (uint64_t)st->st_ino, (uint64_t)st->st_dev};
	const char *strs[] = {compiler, version ? version : "", header};

#define MIX(p, n)                                                                                                      \
	for (size_t i_ = 0; i_ < (n); i_++) {                                                                          \
		h ^= ((const unsigned char *)(p))[i_];                                                                 \
		h *= 0x100000001b3ull;                                                                                 \
	}
	MIX(nums, sizeof(nums));
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		MIX(strs[i], strlen(strs[i]) + 1);
	for (char *const *f = flags; f && *f; f++)
		MIX(*f, strlen(*f) + 1);
#undef MIX
	return h ? h : 1;
}

char **pch_build_flags(char *const *compile_argv, const char *source)
{
	size_t n = 0, k = 0;
	char **out;

	while (compile_argv[n])
		n++;
	if (!(out = calloc(n + 1, sizeof(*out))))
		return NULL;
	for (size_t i = 1; i < n; i++) {
		const char *a = compile_argv[i];
		/* options with their value in the next argument */
		if (!strcmp(a, "-o") || !strcmp(a, "-I") || !strcmp(a, "-L") || !strcmp(a, "-l") ||
		    !strcmp(a, "-isystem") || !strcmp(a, "-iquote") || !strcmp(a, "-Xlinker")) {
			i++;
			continue;
		}
		if (!strcmp(a, source) || !strncmp(a, "-I", 2) || !strncmp(a, "-L", 2) || !strncmp(a, "-l", 2) ||
		    !strncmp(a, "-Wl,", 4) || !strncmp(a, "-fuse-ld=", 9) || !strncmp(a, "-o", 2) || !strcmp(a, "-c") ||
		    !strcmp(a, "-s") || !strcmp(a, "-static") || !strcmp(a, "-pie") || !strcmp(a, "-no-pie") ||
		    !strcmp(a, "-rdynamic"))
			continue;
		if (!(out[k++] = strdup(a))) {
			config_argv_free(out);
			return NULL;
		}
	}
	return out;
}

static int mkdir_under(const char *base, const char *rel, mode_t mode)
{
	char path[4096];
	size_t blen = strlen(base);

	if (snprintf(path, sizeof(path), "%s/%s", base, rel) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	for (char *p = path + blen + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Remove the build dir and what it holds (flat: the wrapper, the log, maybe
 * a half-written .gch). */
static void build_dir_remove(const char *dir)
{
	cleanup_dir DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	rmdir(dir);
}

int pch_init(const char *state_dir, struct language **ls, size_t n, struct wp_error *err)
{
	cleanup_free char *root = NULL;
	size_t want = 0;
	char opts[64];
	int r;

	for (size_t i = 0; i < n; i++)
		for (char **h = ls[i]->available ? ls[i]->pch : NULL; h && *h; h++)
			want++;
	if (!want)
		return 0;
	if (asprintf(&root, "%s/pch", state_dir) < 0) {
		root = NULL;
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	if (mkdir(root, 0755) < 0 && errno != EEXIST)
		return wp_error_errno(err, "mkdir `%s`", root);
	snprintf(opts, sizeof(opts), "size=%llu,mode=0755", (unsigned long long)(PCH_TMPFS_PER * want));
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return wp_error_errno(err, "mount tmpfs on `%s`", root);
	if (!(pchs = calloc(want, sizeof(*pchs))))
		return wp_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct language *l = ls[i];

		if (!l->pch || !l->available)
			continue;
		for (size_t k = 0; l->pch[k]; k++) {
			struct pch *p = &pchs[n_pchs];
			const char *h = l->pch[k], *base = strrchr(h, '/') ? strrchr(h, '/') + 1 : h;

			if (asprintf(&p->dir, "%s/%s", root, l->name) < 0 ||
			    asprintf(&p->build, "%s/.build-%s-%zu", root, l->name, k) < 0 ||
			    asprintf(&p->out_name, "%s.gch", base) < 0 ||
			    (!l->pch_dir && !(l->pch_dir = strdup(p->dir))) ||
			    !(p->flags = pch_build_flags(l->compile_argv, l->source)))
				return wp_error_set(err, ENOMEM, "out of memory");
			if (mkdir(p->dir, 0755) < 0 && errno != EEXIST)
				return wp_error_errno(err, "mkdir `%s`", p->dir);
			/* the header's own dirs ("bits"), empty until built */
			if (strchr(h, '/')) {
				cleanup_free char *rel = strndup(h, (size_t)(strrchr(h, '/') - h));
				if (!rel)
					return wp_error_set(err, ENOMEM, "out of memory");
				if ((r = mkdir_under(p->dir, rel, 0755)) < 0)
					return wp_error_set(err, -r, "mkdir `%s/%s`: %s", p->dir, rel, strerror(-r));
			}
			p->lang = l;
			p->header = h;
			n_pchs++;
			log_info("language %s: <%s> is precompiled on first use into %s (flags:%s%s%s)", l->name, h,
				 p->dir, p->flags[0] ? " " : " none", p->flags[0] ? p->flags[0] : "",
				 p->flags[0] && p->flags[1] ? " …" : "");
		}
	}
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The path of the header in place: <dir>/<header>.gch */
static int out_path(const struct pch *p, char *buf, size_t size)
{
	return snprintf(buf, size, "%s/%s.gch", p->dir, p->header) >= (int)size ? -ENAMETOOLONG : 0;
}

static void write_stamp(const struct pch *p)
{
	char path[4096], tmp[4096], line[64];
	int len = snprintf(line, sizeof(line), "%016llx\n", (unsigned long long)p->built_key);

	snprintf(path, sizeof(path), "%s/%s.stamp", p->dir, p->header);
	snprintf(tmp, sizeof(tmp), "%s/%s.stamp.new", p->dir, p->header);
	cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0 || write(fd, line, (size_t)len) != len || rename(tmp, path) < 0)
		log_warn("pch %s <%s>: write `%s`: %m", p->lang->name, p->header, path);
}

/* The first lines g++ printed, for the log. */
static void read_build_log(const struct pch *p, char *buf, size_t size)
{
	char path[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/log", p->build);
	cleanup_close int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	n = fd < 0 ? 0 : read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = ' ';
}

/* The build succeeded: check what it left and move it into place as root's. */
static int build_install(struct pch *p, struct wp_error *err)
{
	char dst[4096];
	struct stat st;
	int r;

	cleanup_close int dfd = open(p->build, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return wp_error_errno(err, "open `%s`", p->build);
	/* root's again before anything in it is trusted: nobody can swap it */
	if (fchown(dfd, 0, 0) < 0 || fchmod(dfd, 0700) < 0)
		return wp_error_errno(err, "chown `%s`", p->build);
	cleanup_close int fd = openat(dfd, p->out_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return wp_error_errno(err, "open `%s/%s`", p->build, p->out_name);
	if (!S_ISREG(st.st_mode) || st.st_size == 0 || st.st_nlink != 1)
		return wp_error_set(err, EINVAL, "`%s/%s` is not a plain non-empty file", p->build, p->out_name);
	if (fchown(fd, 0, 0) < 0 || fchmod(fd, 0444) < 0)
		return wp_error_errno(err, "chown `%s/%s`", p->build, p->out_name);
	if ((r = out_path(p, dst, sizeof(dst))) < 0)
		return wp_error_set(err, -r, "path too long");
	if (renameat(dfd, p->out_name, AT_FDCWD, dst) < 0)
		return wp_error_errno(err, "rename into `%s`", dst);
	log_info("pch %s <%s>: %s built in %.1f s (%lld MB), used by compiles from now on", p->lang->name,
		 p->header, dst, ev_now(EV_DEFAULT) - p->started, (long long)(st.st_size >> 20));
	return 0;
}

static void build_done_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct pch *p = w->data;
	struct wp_error err = {0};

	ev_child_stop(loop, w);
	p->pid = 0;
	if (WIFEXITED(w->rstatus) && WEXITSTATUS(w->rstatus) == 0 && build_install(p, &err) == 0) {
		p->built_key = p->build_key;
		write_stamp(p);
	} else {
		char out[PCH_LOG_MAX];
		read_build_log(p, out, sizeof(out));
		log_warn("pch %s <%s>: the build failed (%s, status 0x%x): %s; compiles go on without it",
			 p->lang->name, p->header, err.msg[0] ? err.msg : "g++", w->rstatus, out[0] ? out : "(no output)");
		p->failed_key = p->build_key;
		p->failed_at = ev_now(loop);
	}
	build_dir_remove(p->build);
}

/* In the child: drop to nobody, limit, exec the compiler. */
static _Noreturn void build_child(const struct pch *p, int logfd, const char *wrapper)
{
	static const char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent",
					  NULL};
	const char *argv[300];
	const char *cc = p->lang->compile_argv[0];
	size_t k = 0;
	struct rlimit cpu = {PCH_BUILD_CPU_S, PCH_BUILD_CPU_S + 1}, fsize = {1ull << 30, 1ull << 30};
	int nul = open("/dev/null", O_RDONLY);

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 || chdir(p->build) < 0)
		_exit(126);
	syscall(SYS_close_range, 3u, ~0u, 0);
	if (setpriority(PRIO_PROCESS, 0, 10) < 0 || setrlimit(RLIMIT_CPU, &cpu) < 0 ||
	    setrlimit(RLIMIT_FSIZE, &fsize) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(PCH_BUILD_UID, PCH_BUILD_UID, PCH_BUILD_UID) < 0 ||
	    setresuid(PCH_BUILD_UID, PCH_BUILD_UID, PCH_BUILD_UID) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(126);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	argv[k++] = cc;
	for (char **f = p->flags; *f && k < ARRAY_SIZE(argv) - 6; f++)
		argv[k++] = *f;
	argv[k++] = "-x";
	argv[k++] = strstr(cc, "++") ? "c++-header" : "c-header";
	argv[k++] = wrapper;
	argv[k++] = "-o";
	argv[k++] = p->out_name;
	argv[k] = NULL;
	execve(cc, (char *const *)argv, (char *const *)env);
	_exit(127);
}

static int build_start(struct pch *p, struct wp_error *err)
{
	char wrapper[256], path[4096], line[512];
	const char *base = strrchr(p->header, '/') ? strrchr(p->header, '/') + 1 : p->header;
	int len;
	pid_t pid;

	build_dir_remove(p->build);
	if (mkdir(p->build, 0700) < 0)
		return wp_error_errno(err, "mkdir `%s`", p->build);
	/* the wrapper is named like the header: <dir>/bits/stdc++.h.gch is
	 * found for #include <bits/stdc++.h> and stands for the real one */
	snprintf(wrapper, sizeof(wrapper), "%s", base);
	snprintf(path, sizeof(path), "%s/%s", p->build, wrapper);
	len = snprintf(line, sizeof(line), "#include <%s>\n", p->header);
	cleanup_close int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (wfd < 0 || write(wfd, line, (size_t)len) != len)
		return wp_error_errno(err, "write `%s`", path);
	snprintf(path, sizeof(path), "%s/log", p->build);
	cleanup_close int logfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (logfd < 0)
		return wp_error_errno(err, "create `%s`", path);
	if (chown(p->build, PCH_BUILD_UID, PCH_BUILD_UID) < 0)
		return wp_error_errno(err, "chown `%s`", p->build);
	pid = fork();
	if (pid < 0)
		return wp_error_errno(err, "fork");
	if (pid == 0)
		build_child(p, logfd, wrapper);
	p->pid = pid;
	p->build_key = p->key;
	p->started = ev_now(EV_DEFAULT);
	ev_child_init(&p->child, build_done_cb, pid, 0);
	p->child.data = p;
	ev_child_start(EV_DEFAULT, &p->child);
	log_info("pch %s <%s>: building as uid %d (pid %d, key %016llx)", p->lang->name, p->header, PCH_BUILD_UID,
		 (int)pid, (unsigned long long)p->key);
	return 0;
}

/* A header not building: start its build when missing or stale (st: the
 * compiler as just seen). */
static void prepare_one(struct pch *p, const struct stat *st)
{
	struct language *l = p->lang;
	struct wp_error err = {0};

	if (!p->key || !same_file(st, &p->cc_st)) {
		p->cc_st = *st;
		p->key = pch_key(l->compile_argv[0], st, l->version, p->header, p->flags);
	}
	if (p->key == p->built_key)
		return;
	if (p->built_key) {
		/* the compiler changed under us: the old header goes (GCC would
		 * refuse it anyway) */
		char path[4096];
		if (out_path(p, path, sizeof(path)) == 0)
			unlink(path);
		log_info("pch %s <%s>: the compiler changed, rebuilding", l->name, p->header);
		p->built_key = 0;
	}
	if (p->key == p->failed_key && ev_now(EV_DEFAULT) - p->failed_at < PCH_RETRY_AFTER)
		return;
	if (build_start(p, &err) < 0) {
		log_warn("pch %s <%s>: %s; compiles go on without it", l->name, p->header, err.msg);
		p->failed_key = p->key;
		p->failed_at = ev_now(EV_DEFAULT);
		build_dir_remove(p->build);
	}
}

void pch_prepare(struct language *l)
{
	struct stat st;
	bool stated = false;

	for (size_t i = 0; i < n_pchs; i++) {
		if (pchs[i].lang != l || pchs[i].pid)
			continue;
		if (!stated && stat(l->compile_argv[0], &st) < 0)
			return;
		stated = true;
		prepare_one(&pchs[i], &st);
	}
}
