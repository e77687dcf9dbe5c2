/* clock.c — see clock.h. */
#include "clock.h"

#include <stddef.h>

static double (*fake)(void);

double poold_now(struct ev_loop *loop)
{
	return fake ? fake() : ev_now(loop);
}

void poold_clock_set(double (*fn)(void))
{
	fake = fn;
}
