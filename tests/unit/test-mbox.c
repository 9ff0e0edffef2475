/* Unit tests: mboxrd From-line quoting decisions and the UIDL map. */
#include "unit.h"
#include "deliver.h"
#include "uidmap.h"

static void fromline(void)
{
	CHECK(mboxrd_from_line("From x", 6) == 1, "From line quoted");
	CHECK(mboxrd_from_line(">From x", 7) == 1, ">From quoted again (mboxrd)");
	CHECK(mboxrd_from_line(">>>From ", 8) == 1, "deep quoting");
	CHECK(mboxrd_from_line("From:", 5) == 0, "From: header is not a From line");
	CHECK(mboxrd_from_line("Fro", 3) == -1, "undecided at chunk end");
	CHECK(mboxrd_from_line(">>", 2) == -1, "only > so far");
	CHECK(mboxrd_from_line("from x", 6) == 0, "case matters");
	CHECK(mboxrd_from_line(" From x", 7) == 0, "indented");
}

static void map(void)
{
	struct uidmap m;
	char key[32];
	uidmap_init(&m);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "uid-%d", i);
		uidmap_put(&m, key, i % 2 ? M_DELIVERED : M_DELETED);
	}
	CHECK(m.n == 5000, "5000 entries");
	CHECK(uidmap_get(&m, "uid-4999") == M_DELIVERED, "lookup after growth");
	CHECK(uidmap_get(&m, "uid-0") == M_DELETED, "first entry kept");
	CHECK(uidmap_get(&m, "nope") == M_NONE, "absent key");
	uidmap_put(&m, "uid-0", M_FAILED);
	CHECK(uidmap_get(&m, "uid-0") == M_FAILED && m.n == 5000, "overwrite");
	CHECK(mstate_parse("delivered") == M_DELIVERED, "state names round-trip");
	CHECK(mstate_parse("bogus") == M_NONE, "unknown state name");
	uidmap_free(&m);
}

int main(void)
{
	fromline();
	map();
	return UNIT_DONE();
}
