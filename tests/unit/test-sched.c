/* test-sched.c — the daemon's delay rule: jitter, backoff after
 * failures, and adaptive intervals (sched_adapt, sched_max_interval). */
#include <math.h>
#include <string.h>

#include "sched.h"
#include "unit.h"

static struct account acct(int interval, int interval_set, int max_interval, int max_backoff)
{
	struct account a;
	memset(&a, 0, sizeof a);
	a.name = "t";
	a.interval = interval;
	a.interval_set = interval_set;
	a.max_interval = max_interval;
	a.max_backoff = max_backoff;
	return a;
}

static int near(double a, double b)
{
	return fabs(a - b) < 1e-6;
}

static void test_delay(void)
{
	struct account a = acct(300, 0, -1, 3600);
	CHECK(near(sched_delay(&a, 0, 0, 0.5), 300), "no base: the interval, middle of the jitter");
	CHECK(near(sched_delay(&a, 0, 0, 0), 285), "jitter -5%");
	CHECK(near(sched_delay(&a, 0, 0, 1), 315), "jitter +5%");
	CHECK(near(sched_delay(&a, 900, 0, 0.5), 900), "the adaptive base replaces the interval");
	CHECK(near(sched_delay(&a, 300, 1, 0.5), 600), "one failure doubles");
	CHECK(near(sched_delay(&a, 300, 3, 0.5), 2400), "three double three times");
	CHECK(near(sched_delay(&a, 300, 9, 0.5), 3600), "backoff capped by max_backoff");
	CHECK(near(sched_delay(&a, 1800, 2, 0.5), 3600), "backoff from a stretched interval: capped");
	struct account nb = acct(300, 1, -1, 0);
	CHECK(near(sched_delay(&nb, 300, 4, 0.5), 300), "max_backoff 0 keeps the interval");
}

static void test_max_interval(void)
{
	struct account a = acct(300, 0, -1, 3600);
	CHECK(near(sched_max_interval(&a), 1800), "neither written: adaptive up to 1800");
	a = acct(60, 1, -1, 3600);
	CHECK(near(sched_max_interval(&a), 60), "interval written alone: pinned");
	a = acct(60, 1, 600, 3600);
	CHECK(near(sched_max_interval(&a), 600), "max_interval written: adaptive to it");
	a = acct(600, 1, 60, 3600);
	CHECK(near(sched_max_interval(&a), 600), "max_interval below interval: pinned");
	a = acct(300, 0, 0, 3600);
	CHECK(near(sched_max_interval(&a), 300), "max_interval 0: pinned");
	a = acct(3600, 1, -1, 3600);
	a.interval_set = 0;
	CHECK(near(sched_max_interval(&a), 3600), "an interval above 1800 is never shortened");
}

static void test_adapt(void)
{
	struct account a = acct(60, 1, 600, 3600);
	double cur = 60;
	cur = sched_adapt(&a, cur, 0);
	CHECK(near(cur, 90), "an empty poll: x1.5");
	cur = sched_adapt(&a, cur, 0);
	CHECK(near(cur, 135), "another: x1.5 again");
	for (int i = 0; i < 20; i++)
		cur = sched_adapt(&a, cur, 0);
	CHECK(near(cur, 600), "empty polls stop at max_interval");
	cur = sched_adapt(&a, cur, 1);
	CHECK(near(cur, 60), "a poll with mail: back to interval");
	CHECK(near(sched_adapt(&a, 5, 0), 60), "never below interval");
	CHECK(near(sched_adapt(&a, 5000, 0), 600), "a lowered max_interval (reload) holds at once");
	struct account p = acct(60, 1, -1, 3600);
	CHECK(near(sched_adapt(&p, 60, 0), 60), "pinned: empty polls change nothing");
}

int main(void)
{
	test_delay();
	test_max_interval();
	test_adapt();
	return UNIT_DONE();
}
