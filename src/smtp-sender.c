/* smtp-sender.c — the connection `forward` (deliver-smtp.c) and `lmtp`
 * (deliver-lmtp.c) each keep on the sending thread, and the one
 * transaction loop both run over it.  How a connection is opened (libcurl
 * for SMTP, a plain socket for LMTP) stays with each deliverer. */
#include <stdlib.h>
#include <string.h>

#include "dqueue.h"
#include "smtp.h"

void sender_first_use(struct sender *c)
{
	if (c->link.d != NULL)
		return;
	c->link.d = &c->dlg;
	c->link.spare = &c->dlg2;
	c->link.c.sock = -1;
}

/* Whose lines the dialogue's log lines are. */
void sender_name(struct sender *c, const char *acct)
{
	c->dlg.acct = c->dlg2.acct = acct;
}

void sender_hang_up(struct sender *c)
{
	conn_close(&c->link.c);
	c->link.ahead = NULL;   /* a transaction left open is the server's to drop */
	free(c->key);
	free(c->acct);
	c->key = c->acct = NULL;
}

void sender_shutdown(struct sender *c)
{
	if (c->link.d == NULL)
		return;   /* nothing was sent */
	sender_name(c, c->acct);
	smtp_quit(&c->link);
	sender_hang_up(c);
	free(c->link.out);
	c->link.out = NULL;
	c->link.ocap = c->link.olen = 0;
	dialog_free(&c->dlg);
	dialog_free(&c->dlg2);
	reader_free(&c->rd);
	down_free(&c->downs);
}

int sender_kept(struct sender *c, int open, const char *key, const char *acct,
		const char *where)
{
	if (open && strcmp(c->key, key) == 0 && smtp_alive(&c->link)) {
		log_debug(acct, "*: Re-using existing connection to %s", where);
		return 1;
	}
	if (open) {   /* another server's, or it went away */
		sender_name(c, c->acct);
		smtp_quit(&c->link);
		sender_hang_up(c);
	}
	return 0;
}

/* A kept connection the server closed meanwhile (silently, or with a
 * 421 to the MAIL sent ahead) fails before the data: nothing was
 * accepted, so one retry on a new connection is safe.  Once the data
 * began to go out the server may hold the message though no reply to
 * its end came: deferred, never sent twice in one run.  Whether the
 * envelope's replies were read with the last message's or after does
 * not matter here. */
int sender_transfer(struct sender *c, const struct job *j, const struct leg_tx *t,
		    struct outcome *o)
{
	sender_name(c, t->v.acct);
	struct tx_msg m = { .from = j->from, .rcpt = j->rcpt ? j->rcpt : t->rcpt,
			    .partial_ok = t->v.partial_ok, .fill = reader_fill, .arg = &c->rd };
	const struct job *nx = t->next;
	struct tx_msg next = { .from = nx ? nx->from : NULL,
			       .rcpt = nx && nx->rcpt ? nx->rcpt : t->next_rcpt };
	struct tx_end end;
	char *err = NULL;
	if (c->link.ahead && c->ahead_job != j)
		sender_hang_up(c);   /* out of step (a job skipped): never answer for another */
	for (int attempt = 0;; attempt++) {
		int kept;
		if (t->connect(t->s, &kept, o) < 0)
			return -1;
		reader_start(&c->rd, j);
		int rc = smtp_tx(&c->link, &m, nx ? &next : NULL, &end, &err);
		c->ahead_job = c->link.ahead ? nx : NULL;
		if (c->link.broken)
			sender_hang_up(c);
		if (rc == 0 || attempt > 0 || !kept || end.data_out)
			break;
		log_debug(t->v.acct, "%s closed the kept connection: connecting again", t->v.where);
		free(err);
		err = NULL;
	}
	int r = smtp_judge(&t->v, c->link.d, &end, err, o);
	free(err);
	return r;
}
