/* deliver-imap.c — `imap [FOLDER]`: append to a folder of an IMAP server
 * (placeholder until the sending side lands: refuses every message). */
#include "deliver.h"

static int imap_open(struct target *t, char **err) { (void)t; (void)err; return 0; }
static int imap_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	(void)m, (void)e;
	t->fail_code = EX_TEMPFAIL;
	return seterr(err, "imap delivery is not built yet");
}
static void imap_undo(struct target *t) { (void)t; }
static int imap_commit(struct target *t, char **err) { (void)t; (void)err; return 0; }
static void imap_close(struct target *t) { (void)t; }
static int imap_recover(const struct journal *j, char **err) { (void)j; (void)err; return 0; }

const struct deliverer deliver_imap = {
	.name = "imap", .open = imap_open, .write = imap_write, .undo = imap_undo,
	.commit = imap_commit, .close = imap_close, .recover = imap_recover,
};
