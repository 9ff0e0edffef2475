/* sched-delay.c — when the daemon polls an account next: its interval,
 * stretched while polls find nothing (adaptive intervals, as Gmail's
 * fetcher had them), with jitter, and backed off after failures. */
#include "sched.h"

/* Each empty poll stretches the interval by half. */
#define ADAPT_GROW 1.5
/* max_interval when neither it nor interval is written: 6 x the default
 * interval, half an hour at most for the first mail after a quiet spell. */
#define ADAPT_MAX  1800

static double min_interval(const struct account *a)
{
	return a->interval > 0 ? a->interval : 300;
}

/* Pinned (max = interval) when the config writes interval but not
 * max_interval; adaptive up to ADAPT_MAX when it writes neither. */
double sched_max_interval(const struct account *a)
{
	double lo = min_interval(a);
	double hi = a->max_interval >= 0 ? a->max_interval : a->interval_set ? lo : ADAPT_MAX;
	return hi > lo ? hi : lo;
}

double sched_adapt(const struct account *a, double cur, int found_mail)
{
	double lo = min_interval(a), hi = sched_max_interval(a);
	double next = found_mail ? lo : cur * ADAPT_GROW;
	return next < lo ? lo : next > hi ? hi : next;
}

double sched_delay(const struct account *a, double base, int fails, double rnd)
{
	if (base <= 0)
		base = min_interval(a);
	/* +/-5 %: accounts drift apart, yet each is polled within its interval
	 * +10 % with room for the poll itself and the lag */
	double d = base * (0.95 + 0.1 * rnd);
	for (int i = 0; i < fails && d < a->max_backoff; i++)
		d *= 2;
	if (fails > 0 && a->max_backoff > 0 && d > a->max_backoff)
		d = a->max_backoff;
	return d;
}

double sched_clamp(const struct account *a, double cur)
{
	double lo = min_interval(a), hi = sched_max_interval(a);
	return cur < lo ? lo : cur > hi ? hi : cur;
}
