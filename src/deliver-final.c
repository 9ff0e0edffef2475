/* deliver-final.c — the undo, commit and recover of deliverers whose
 * every write is final on its own (an MDA's exit status, a server's
 * reply): nothing to take back, make durable or recover.  Apart from
 * deliver.c, which picks the deliverers, so they need not import it. */
#include "deliver.h"

void deliver_no_undo(struct target *t) { (void)t; }
int  deliver_no_commit(struct target *t, char **err) { (void)t; (void)err; return 0; }
int  deliver_no_recover(const struct journal *j, char **err) { (void)j; (void)err; return 0; }
