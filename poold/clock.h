/* clock.h — the time poold's timing rules read (lease idle timeout and
 * max lifetime, the refill gap and hold, node syncs, the judged queue):
 * ev_now() of the loop, unless a unit test put a clock of its own in its
 * place, so that every rule is tested at chosen instants instead of by
 * waiting. */
#ifndef POOLD_CLOCK_H
#define POOLD_CLOCK_H

#include <ev.h>

double poold_now(struct ev_loop *loop);
/* Unit tests: read the time from fn from now on (NULL: ev_now again). */
void poold_clock_set(double (*fn)(void));

#endif
