/* deliver-smtp.c — forward over SMTP with libcurl.  Not built yet: the
 * SMTP issue brings it.  Until then a message for `forward` stays on the
 * server and the run says why. */
#include "deliver.h"

static int smtp_open(struct target *t, char **err)
{
	(void)t;
	return seterr(err, "forward is not available yet: the message stays on the server");
}

static int smtp_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	(void)t; (void)m; (void)e;
	return seterr(err, "forward is not available yet");
}

static void smtp_undo(struct target *t) { (void)t; }
static int smtp_commit(struct target *t, char **err) { (void)t; (void)err; return 0; }
static void smtp_close(struct target *t) { (void)t; }
static int smtp_recover(const struct journal *j, char **err) { (void)j; (void)err; return 0; }

const struct deliverer deliver_smtp = {
	.name = "forward",
	.undoable = 0,
	.open = smtp_open,
	.write = smtp_write,
	.undo = smtp_undo,
	.commit = smtp_commit,
	.close = smtp_close,
	.recover = smtp_recover,
};
