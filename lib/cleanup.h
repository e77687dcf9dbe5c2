/* cleanup.h — scope-bound ownership, as crun's and bubblewrap's utils.h.
 *
 *   cleanup_free char *p = malloc(..);   freed when p leaves scope
 *   return steal_pointer(&p);            hand ownership to the caller
 *
 * Every destructor accepts NULL / -1, so a stolen variable is inert. */
#ifndef WARMPOOL_CLEANUP_H
#define WARMPOOL_CLEANUP_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void cleanup_freep(void *p)
{
	void **pp = p;
	free(*pp);
}

static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void cleanup_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void cleanup_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* A child that was never handed off: kill it and reap it. */
static inline void cleanup_pidp(pid_t *pid)
{
	if (*pid > 0) {
		int saved = errno;
		kill(*pid, SIGKILL);
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = saved;
	}
}

#define cleanup_free   __attribute__((cleanup(cleanup_freep)))
#define cleanup_close  __attribute__((cleanup(cleanup_closep)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclosep)))
#define cleanup_dir    __attribute__((cleanup(cleanup_closedirp)))
#define cleanup_pid    __attribute__((cleanup(cleanup_pidp)))

/* jansson, libseccomp and libcurl destructors, only where their headers are in. */
#ifdef JANSSON_H
static inline void cleanup_jsonp(json_t **j)
{
	json_decref(*j);
}
#define cleanup_json __attribute__((cleanup(cleanup_jsonp)))
#endif
#ifdef _SECCOMP_H
static inline void cleanup_seccompp(scmp_filter_ctx *c)
{
	if (*c)
		seccomp_release(*c);
}
#define cleanup_seccomp __attribute__((cleanup(cleanup_seccompp)))
#endif
#ifdef __CURL_CURL_H
static inline void cleanup_curlp(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}
#define cleanup_curl __attribute__((cleanup(cleanup_curlp)))
#endif

static inline void *steal_pointer_(void **pp)
{
	void *p = *pp;
	*pp = NULL;
	return p;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))steal_pointer_((void **)(pp)))

static inline int steal_fd(int *fd)
{
	int f = *fd;
	*fd = -1;
	return f;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
