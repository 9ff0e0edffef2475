/* test-report.c — a result's one-line form survives a pipe unchanged. */
#include <stdlib.h>
#include "unit.h"
#include "fetch.h"

static void roundtrip(const char *error, const char *what)
{
	struct result r = { .nnew = 7, .delivered = 6, .kept = 1, .deleted = 5, .failed = 1,
			    .skipped = 2, .bytes = 1234567890123ULL, .seconds = 1.25,
			    .code = 75, .error = error ? strdup(error) : NULL }, back;
	char *line = result_pack(&r);
	CHECK(strchr(line, '\n') == line + strlen(line) - 1, "one line");
	CHECK(result_unpack(line, &back) == 0, what);
	CHECK(back.nnew == 7 && back.delivered == 6 && back.kept == 1 && back.deleted == 5 &&
	      back.failed == 1 && back.skipped == 2 && back.bytes == 1234567890123ULL &&
	      back.code == 75 && back.seconds > 1.24 && back.seconds < 1.26, "counts kept");
	CHECK_STR(back.error, error, "error kept");
	free(line);
	free(r.error);
	free(back.error);
}

int main(void)
{
	roundtrip(NULL, "no error");
	roundtrip("", "empty error");
	roundtrip("login refused\n\tfor 100% of \"x\" \xc3\xa9 %41", "hostile error");
	struct result r;
	CHECK(result_unpack("garbage\n", &r) < 0, "garbage refused");
	CHECK(result_unpack("1 2 3\n", &r) < 0, "short line refused");
	return UNIT_DONE();
}
