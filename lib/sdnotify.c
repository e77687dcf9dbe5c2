/* sdnotify.c — see sdnotify.h. The protocol (sd_notify(3), "Notes"): one
 * AF_UNIX SOCK_DGRAM datagram of newline-separated VAR=value assignments to
 * the address in $NOTIFY_SOCKET; a leading '@' means the abstract namespace
 * (the '@' becomes a NUL byte and the address length counts exactly the name,
 * no trailing NUL). */
#include "sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sd_notify_state(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len, state_len;
	socklen_t salen;
	ssize_t n;
	int fd, e;

	if (!path || !path[0])
		return 0;
	if (!state)
		return -EINVAL;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@') {
		sa.sun_path[0] = '\0';
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	state_len = strlen(state);
	do
		n = sendto(fd, state, state_len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (n < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	return (size_t)n == state_len ? 1 : -EMSGSIZE;
}
