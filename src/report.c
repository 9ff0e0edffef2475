/* report.c — the per-account summary line, or its JSON form. */
#include <stdio.h>

#include "fetch.h"

void result_print(const struct account *a, const struct result *r, int json, int first)
{
	if (json) {
		printf("%s{\"account\":", first ? "" : ",");
		json_puts(a->name);
		printf(",\"new\":%d,\"delivered\":%d,\"kept\":%d,\"deleted\":%d,\"failed\":%d,"
		       "\"skipped\":%d,\"bytes\":%llu,\"seconds\":%.3f,\"exit\":%d,\"error\":",
		       r->nnew, r->delivered, r->kept, r->deleted, r->failed, r->skipped,
		       r->bytes, r->seconds, r->code);
		if (r->error)
			json_puts(r->error);
		else
			fputs("null", stdout);
		putchar('}');
		return;
	}
	if (r->error)
		log_err(a->name, "%s", r->error);
	if (r->error && r->nnew == 0 && r->delivered == 0 && r->deleted == 0)
		return;   /* the error says it all */
	log_info(a->name, "%d new, %d delivered, %d kept, %d deleted, %.1f MB in %.1f s",
		 r->nnew, r->delivered, r->kept, r->deleted, (double)r->bytes / 1e6, r->seconds);
}
