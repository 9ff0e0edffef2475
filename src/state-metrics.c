/* state-metrics.c — what the metrics file (metrics.c) reports, per
 * account, from the runs the state database has recorded (never
 * pruned, so the sums only grow) and the messages still undelivered.
 * With state.c the only users of sqlite3.h. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "popsift.h"
#include "state.h"

sqlite3 *state_db(struct state *st);

/* one scan of runs for every account, not one per account */
static const char q_totals[] =
	"WITH t AS (SELECT account,sum(polls) n,sum(new) nw,sum(delivered) dv,sum(deleted) dl,"
	" sum(bytes) b,sum(status<>0) e,max(CASE WHEN status=0 THEN ended END) ok,max(id) last"
	" FROM runs GROUP BY account) "
	"SELECT t.account,n,nw,dv,dl,b,e,ok,r.ended,r.ended-r.started,r.status,"
	"(SELECT count(*) FROM messages m WHERE m.account=t.account AND "
	" m.state IN ('failed','deferred','rejected')) "
	"FROM t JOIN runs r ON r.id=t.last";

int state_metrics(struct state *st, int (*fn)(void *arg, const struct acct_totals *t),
		  void *arg, char **err)
{
	sqlite3 *db = state_db(st);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, q_totals, -1, &s, NULL) != SQLITE_OK)
		return seterr(err, "state database: metrics: %s", sqlite3_errmsg(db));
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct acct_totals t = {
			.account = (const char *)sqlite3_column_text(s, 0),
			.runs = sqlite3_column_int64(s, 1), .nnew = sqlite3_column_int64(s, 2),
			.delivered = sqlite3_column_int64(s, 3), .deleted = sqlite3_column_int64(s, 4),
			.bytes = sqlite3_column_int64(s, 5), .errors = sqlite3_column_int64(s, 6),
			.last_success = sqlite3_column_double(s, 7),
			.last_ended = sqlite3_column_double(s, 8),
			.last_duration = sqlite3_column_double(s, 9),
			.last_exit = sqlite3_column_int64(s, 10),
			.undelivered = sqlite3_column_int64(s, 11),
		};
		if (t.account && fn(arg, &t) < 0)
			break;
	}
	int ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
	if (!ok)
		seterr(err, "state database: metrics: %s", sqlite3_errmsg(db));
	sqlite3_finalize(s);
	return ok ? 0 : -1;
}
