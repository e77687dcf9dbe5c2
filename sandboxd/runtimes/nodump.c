/* nodump.c — preloaded (LD_PRELOAD) into the interpreters sandboxd starts
 * in a slot (sandboxd/kernel.c): before the interpreter's main() runs, the
 * process becomes non-dumpable, so that no other process of the slot's uid
 * (a judged run) can open its /proc/<pid>/mem, environ or fds, and the
 * variable is removed, so the processes the interpreter's code starts are
 * ordinary. execve() makes a process dumpable again: this has to run after
 * it, in the process itself, and Node has no prctl of its own. */
#include <stdlib.h>
#include <sys/prctl.h>

__attribute__((constructor)) static void nodump(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	unsetenv("LD_PRELOAD");
}
