/* javacserver.c — libjavacserver.so, the system calls JavacServer.java needs
 * and Java has no API for: receive a step (a datagram with fds) on the
 * SOCK_SEQPACKET socket on fd 3, answer on it, move the whole process into
 * the step's run group, take the step's rlimits, put the step's fds on 0-2,
 * and put the warm-up thread at the lowest priority.
 * Loading it makes the process non-dumpable (a judged run of the slot's uid
 * cannot read or write the server's memory or fds through /proc). */
#define _GNU_SOURCE /* SCHED_IDLE */
#include <errno.h>
#include <jni.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK_FD	 3
#define MAX_FDS	 16
#define RLIM_ANY UINT64_MAX /* proto.h: no limit */

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return JNI_VERSION_1_8;
}

/* One datagram into buf, its fds into fds (the rest -1). Returns its length,
 * 0 at end of file, -errno. */
JNIEXPORT jint JNICALL Java_JavacServer_recv(JNIEnv *env, jclass cls, jbyteArray jbuf, jintArray jfds)
{
	char data[65536];
	char cbuf[CMSG_SPACE(MAX_FDS * sizeof(int))];
	struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	jint fds[MAX_FDS];
	jsize cap = (*env)->GetArrayLength(env, jbuf), fcap = (*env)->GetArrayLength(env, jfds);
	ssize_t n;

	for (int i = 0; i < MAX_FDS; i++)
		fds[i] = -1;
	do
		n = recvmsg(SOCK_FD, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k && i < MAX_FDS; i++)
			memcpy(&fds[i], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (n > cap || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		return -EMSGSIZE;
	(*env)->SetByteArrayRegion(env, jbuf, 0, (jsize)n, (const jbyte *)data);
	(*env)->SetIntArrayRegion(env, jfds, 0, fcap < MAX_FDS ? fcap : MAX_FDS, fds);
	return (jint)n;
}

JNIEXPORT jint JNICALL Java_JavacServer_send(JNIEnv *env, jclass cls, jbyteArray jmsg)
{
	jsize len = (*env)->GetArrayLength(env, jmsg);
	jbyte *msg = (*env)->GetByteArrayElements(env, jmsg, NULL);
	ssize_t n;

	if (!msg)
		return ENOMEM;
	n = send(SOCK_FD, msg, (size_t)len, MSG_NOSIGNAL);
	(*env)->ReleaseByteArrayElements(env, jmsg, msg, JNI_ABORT);
	return n == (ssize_t)len ? 0 : (n < 0 ? errno : EMSGSIZE);
}

static int set_limit(int res, uint64_t soft, uint64_t hard)
{
	struct rlimit rl = {.rlim_cur = soft == RLIM_ANY ? RLIM_INFINITY : soft,
			    .rlim_max = hard == RLIM_ANY ? RLIM_INFINITY : hard};
	return setrlimit(res, &rl) < 0 ? errno : 0;
}

/* The step's run group (fds[3..]: its cgroup.procs, one per hierarchy):
 * writing 0 moves the writer's whole thread group, every JVM thread. Then
 * the step's rlimits; RLIMIT_CPU counts the process's CPU since its start,
 * so the step's seconds come on top of what the start-up used. */
JNIEXPORT jint JNICALL Java_JavacServer_join(JNIEnv *env, jclass cls, jintArray jfds, jlong cpu, jlong fsize,
					     jlong nofile)
{
	jint fds[MAX_FDS];
	jsize n = (*env)->GetArrayLength(env, jfds);
	struct rusage ru;
	int e;

	if (n > MAX_FDS)
		n = MAX_FDS;
	(*env)->GetIntArrayRegion(env, jfds, 0, n, fds);
	for (int i = 3; i < n && fds[i] >= 0; i++) {
		if (write(fds[i], "0", 1) != 1)
			return errno ? errno : EIO;
		close(fds[i]);
	}
	if ((uint64_t)cpu != RLIM_ANY) {
		if (getrusage(RUSAGE_SELF, &ru) < 0)
			return errno;
		uint64_t used = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1;
		if ((e = set_limit(RLIMIT_CPU, used + (uint64_t)cpu, used + (uint64_t)cpu + 1)) != 0)
			return e;
	}
	if ((e = set_limit(RLIMIT_FSIZE, (uint64_t)fsize, (uint64_t)fsize)) != 0 ||
	    (e = set_limit(RLIMIT_NOFILE, (uint64_t)nofile, (uint64_t)nofile)) != 0 ||
	    (e = set_limit(RLIMIT_CORE, 0, 0)) != 0)
		return e;
	return 0;
}

/* fds[0..2] become the process's stdin, stdout, stderr. */
JNIEXPORT jint JNICALL Java_JavacServer_takeFds(JNIEnv *env, jclass cls, jintArray jfds)
{
	jint fds[3];

	if ((*env)->GetArrayLength(env, jfds) < 3)
		return EINVAL;
	(*env)->GetIntArrayRegion(env, jfds, 0, 3, fds);
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0 || dup2(fds[i], i) < 0)
			return fds[i] < 0 ? EBADF : errno;
		if (fds[i] > 2)
			close(fds[i]);
	}
	return 0;
}

JNIEXPORT void JNICALL Java_JavacServer_closeSocket(JNIEnv *env, jclass cls)
{
	close(SOCK_FD);
}

/* The calling thread (the warm-up) runs only when no other thread of its
 * group wants the CPU: after a step joined the run group, the compile goes
 * first. Returns 0 or errno. */
JNIEXPORT jint JNICALL Java_JavacServer_idle(JNIEnv *env, jclass cls)
{
	struct sched_param sp = {.sched_priority = 0};
	return sched_setscheduler(0, SCHED_IDLE, &sp) < 0 ? errno : 0;
}
