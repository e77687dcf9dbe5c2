/* sdnotify.h — systemd's readiness protocol without libsystemd.
 *
 * Under a unit with Type=notify, systemd passes $NOTIFY_SOCKET (a path, or
 * "@name" for an abstract socket) and waits for a datagram "READY=1" before
 * it calls the service started (and starts what is ordered after it). Other
 * daemons and the tests may use the same socket. Without $NOTIFY_SOCKET every
 * call is a no-op that returns 0, so the daemons call it unconditionally:
 *
 *   sd_notify_state("READY=1\nSTATUS=serving");   once listening
 *   sd_notify_state("RELOADING=1");               on SIGHUP, then "READY=1" when done
 *   sd_notify_state("STOPPING=1");                on SIGTERM
 *
 * Returns 1 when a message was sent, 0 when there is no $NOTIFY_SOCKET,
 * -errno on failure (the caller logs; a failed notification is not fatal:
 * systemd's TimeoutStartSec then says what went wrong). */
#ifndef WARMPOOL_SDNOTIFY_H
#define WARMPOOL_SDNOTIFY_H

int sd_notify_state(const char *state);

#endif
