/* test-filter-ahead.c — rules with commands evaluated for several
 * messages at once (src/filter-ahead.c): the room policy, which rules
 * count as running commands, and decisions handed back in queue order
 * whatever order the workers finish in. */
#include <stdlib.h>
#include <unistd.h>

#include "filter-ahead.h"
#include "filter-run.h"
#include "msg.h"
#include "unit.h"

static struct rules *parse(const char *text)
{
	char *err = NULL;
	struct rules *r = rules_parse("t.rules", text, &err);
	if (r == NULL)
		printf("# %s\n", err);
	free(err);
	return r;
}

static int runs(const char *text)
{
	struct rules *r = parse(text);
	int v = rules_run_commands(r);
	rules_free(r);
	return v;
}

static void test_room(void)
{
	CHECK(ahead_room(0, 0, 1u << 30, 4), "one message alone, however big");
	CHECK(ahead_room(15, 1000, 1000, 4), "under 4 per worker");
	CHECK(!ahead_room(16, 1000, 1000, 4), "4 per worker at most");
	CHECK(!ahead_room(2, 60u << 20, 8u << 20, 4), "64 MB at most");
	CHECK(ahead_room(2, 10u << 20, 8u << 20, 4), "room under 64 MB");
	CHECK(!ahead_room(4, 0, 1, 1), "a worker of one: 4");
}

static void test_runs_commands(void)
{
	CHECK(runs("match all filter spamc -x\n") == 1, "filter action");
	CHECK(runs("match pipe \"spamc -c\" returns 1 discard\n") == 1, "pipe condition");
	CHECK(runs("match header \"X\" =~ /a/ and not (size > 1k or pipe \"true\") discard\n") == 1,
	      "pipe deep in a condition");
	CHECK(runs("match header \"X\" =~ /a/ mbox /tmp/a\nmatch all mbox /tmp/b\n") == 0,
	      "no command");
	CHECK(rules_run_commands(NULL) == 0, "no rules");
}

static struct msg *message(int i, const char *subject)
{
	struct msg *m = malloc(sizeof *m);
	msg_init(m);
	char buf[256];
	int n = snprintf(buf, sizeof buf, "Subject: %s\nX-N: %d\n\nbody %d\n", subject, i, i);
	msg_append(m, buf, (size_t)n, NULL);
	msg_finish(m, NULL);
	return m;
}

/* Later messages finish first (the earlier sleep longer); the decisions
 * come back in queue order all the same, each with its own filtered
 * message, and the failing one fails alone. */
static void test_order(void)
{
	char path[] = "/tmp/popsift-ahead-XXXXXX";
	int fd = mkstemp(path);
	const char *text =
		"match header \"Subject\" =~ /fail/ filter false\n"
		"match header \"X-N\" =~ /^([0-9]+)$/ filter sh -c "
		"'sleep 0.0$$1; sed \"1iX-F: $$1\"' sh $1\n"
		"match header \"X-F\" =~ /^([0-9]+)$/ mbox /tmp/out-$1\n";
	if (write(fd, text, strlen(text)) < 0)
		return;
	close(fd);
	char *err = NULL;
	struct rules *mine = rules_load(path, &err);
	CHECK(mine != NULL, "rules load");
	if (mine == NULL) {
		printf("# %s\n", err);
		return;
	}
	struct ahead_opts o = { .account = "t", .rules_file = path, .rules = mine, .workers = 4,
				.timeout = 30 };
	struct ahead *ah = ahead_new(&o, &err);
	CHECK(ah != NULL && ahead_workers(ah) == 4, "four workers");
	if (ah == NULL) {
		printf("# %s\n", err);
		return;
	}
	int tags[8], inorder = 1, filtered = 1;
	for (int i = 0; i < 8; i++) {
		tags[i] = i;
		ahead_submit(ah, &tags[i], "u", 0, message(9 - i, i == 3 ? "fail" : "ok"));
	}
	size_t bytes;
	CHECK(ahead_held(ah, &bytes) <= 8 && bytes > 0, "held counts bytes");
	struct ahead_done d;
	for (int k = 0; k < 8; k++) {
		if (!ahead_next(ah, 1, &d)) {
			inorder = 0;
			break;
		}
		inorder &= *(int *)d.tag == k;
		if (k == 3) {
			CHECK(d.rc < 0 && d.d.error && strstr(d.d.error, "false"), "the failing one fails");
		} else {
			char want[32];
			snprintf(want, sizeof want, "/tmp/out-%d", 9 - k);
			size_t hl;
			const char *h = msg_header(d.m, &hl);
			filtered &= d.rc == 0 && d.d.ndests == 1 && strcmp(d.d.dests[0].path, want) == 0 &&
				    strncmp(h, "X-F: ", 5) == 0;
		}
		decision_free(&d.d);
		msg_free(d.m);
		free(d.m);
	}
	CHECK(inorder, "handed back in queue order");
	CHECK(filtered, "each decision on its own filtered message");
	CHECK(ahead_next(ah, 1, &d) == 0 && ahead_held(ah, NULL) == 0, "nothing left");
	ahead_free(ah);
	rules_free(mine);
	free(err);
	unlink(path);
}

static void test_changed_rules(void)
{
	char path[] = "/tmp/popsift-ahead-XXXXXX";
	int fd = mkstemp(path);
	if (write(fd, "match all filter cat\n", 21) < 0)
		return;
	close(fd);
	struct rules *other = parse("match all filter tac\n");
	struct ahead_opts o = { .account = "t", .rules_file = path, .rules = other, .workers = 2 };
	char *err = NULL;
	struct ahead *ah = ahead_new(&o, &err);
	CHECK(ah == NULL && err && strstr(err, "changed"), "rules that changed since: in line");
	free(err);
	rules_free(other);
	unlink(path);
}

int main(void)
{
	test_room();
	test_runs_commands();
	test_order();
	test_changed_rules();
	return UNIT_DONE();
}
