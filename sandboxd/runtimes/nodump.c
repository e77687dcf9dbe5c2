/* nodump.c — preloaded (LD_PRELOAD) into the interpreters sandboxd starts
 * in a slot (sandboxd/kernel.c): before the interpreter's main() runs, the
 * process becomes non-dumpable, so that no other process of the slot's uid
 * (a judged run) can open its /proc/<pid>/mem, environ or fds. execve()
 * makes a process dumpable again, so this has to run after it, in the
 * process itself (Node has no prctl of its own). The variable stays in the
 * environment: the processes a session's code starts (dynamically linked)
 * load it too, and a judged run cannot write their memory either. */
#include <sys/prctl.h>

__attribute__((constructor)) static void nodump(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
