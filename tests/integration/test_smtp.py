"""Integration tests for issue 4: `forward` over SMTP with libcurl.

Dovecot (POP3) -> popsift -> an SMTP server on 127.0.0.1 started by the
test: aiosmtpd recording exactly what arrives (tests/lib/smtpd.py), or
exim4 delivering to a mailbox file (test_smtp_mta.py).

Run:  POPSIFT=/tmp/popsift /usr/bin/python3 -m pytest -q tests/integration/test_smtp.py
"""

import hashlib
import re
import sqlite3
import subprocess
import uuid

import pytest

import popsift_test as pt
from smtpd import Recorder

gen = pt.load_genmail()


# --------------------------------------------------------------------------
# helpers

def mkmsg(tag: str, body: bytes = b"Hello.\n", sender: str | None = "sender@example.com",
          subject: str | None = None, extra: bytes = b"") -> bytes:
    h = b""
    if sender is not None:
        h += f"Return-Path: <{sender}>\n".encode()
    h += (f"From: Sender <from-{tag}@example.com>\nTo: alice@example.org\n"
          f"Subject: {subject or tag}\n"
          f"Message-ID: <{tag}.{uuid.uuid4().hex}@popsift.test>\n").encode()
    return h + extra + b"\n" + body


def wire(m: bytes) -> bytes:
    """What the SMTP server must hold: CRLF line ends (a lone CR or LF of
    m becomes CRLF), ending in CRLF."""
    w = re.sub(rb"\r\n|\r|\n", b"\r\n", m)
    return w if w.endswith(b"\r\n") else w + b"\r\n"


def states(tmp) -> dict:
    db = sqlite3.connect(tmp / "state.db")
    try:
        return {u: (s, e) for u, s, e in db.execute("SELECT uidl, state, error FROM messages")}
    finally:
        db.close()


def smtp_keys(srv, **kw) -> dict:
    keys = dict(smtp_host="127.0.0.1", smtp_port=srv.port, received_header="no",
                deliver="forward bob@example.org")
    keys.update(kw)
    return keys


@pytest.fixture(params=[True, False], ids=["pipelining", "lockstep"])
def smtpd(request):
    """Every test runs against a server that offers PIPELINING (popsift
    sends MAIL, RCPT and DATA in one write) and one that does not (one
    command at a time)."""
    servers = []

    def make(**kw):
        kw.setdefault("pipelining", request.param)
        srv = Recorder(**kw).start()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def srv(smtpd):
    return smtpd()


# --------------------------------------------------------------------------
# what arrives, byte for byte

def test_forward_exact_bytes(dovecot, srv, config, run, tmp):
    msgs = gen.generate(8, seed=4)                # stuffing, 8bit, gbk, multipart...
    msgs.append(b"From: x@example.com\nSubject: edge\n\n.\n..\n.x\nFrom here\n>From\n"
                b"\xe4\xbd\xa0\xe5\xa5\xbd \xff\xfe bytes\n\n\nno newline at the end")
    dovecot.add_messages("alice", msgs)
    cfg = config(**smtp_keys(srv, deliver="forward bob@example.org carol@example.net"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert len(srv.messages) == len(msgs)
    for m, got in zip(msgs, srv.messages):
        assert got.data == wire(m)
        assert got.rcpt_tos == ["bob@example.org", "carol@example.net"]
        rp = pt.header_values(m, "Return-Path")
        assert got.mail_from == (rp[0].strip("<>") if rp else "x@example.com")
    assert srv.connections == 1
    assert dovecot.count("alice") == 0
    assert {s for s, _ in states(tmp).values()} == {"deleted"}


def test_wire_bytes_dot_stuffed(dovecot, smtpd, config, run):
    """What goes over the wire: every line-leading dot doubled, CRLF
    everywhere (a lone CR too: RFC 5321 2.3.8), one final dot.  (A dot
    at the very start of the data cannot come from Dovecot, which sends
    the first line of a message unstuffed.)"""
    srv = smtpd(raw=True)
    m = b"Subject: dots\n\n.\n.. two\n.x\nbody\r.\rcr\r\n.\rend\n."
    dovecot.add_message("alice", m)
    r = run("-f", config(**smtp_keys(srv)), "run")
    assert r.returncode == 0, r.stderr
    assert srv.messages[0].data == wire(m)
    raw = bytes(next(iter(srv.raw.values())))
    body = raw.split(b"DATA\r\n", 1)[1]
    assert body.startswith(b"Subject: dots\r\n\r\n..\r\n... two\r\n..x\r\nbody\r\n..\r\n"
                           b"cr\r\n..\r\nend\r\n..\r\n.\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert b"\r" not in body.replace(b"\r\n", b"")


def test_received_header_is_prepended(dovecot, srv, config, run):
    m = mkmsg("recv")
    dovecot.add_message("alice", m)
    r = run("-f", config(**smtp_keys(srv, received_header="yes")), "run")
    assert r.returncode == 0, r.stderr
    data = srv.messages[0].data
    assert data.startswith(b"Received: from 127.0.0.1\r\n\tby ")
    assert pt.strip_header(data.replace(b"\r\n", b"\n"), "Received") == m


def run_rss(popsift, *args):
    """Run popsift from a small fresh Python (a fork of this big test process
    would count in the child's peak); returns (exit code, stderr, popsift's
    peak RSS in KiB)."""
    wrapper = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:])\n"
               "m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
               "print(f'maxrss={m}', file=sys.stderr)\n"
               "sys.exit(r.returncode)\n")
    r = subprocess.run(["/usr/bin/python3", "-c", wrapper, str(popsift), *map(str, args)],
                       capture_output=True, text=True, errors="replace", timeout=300)
    m = re.search(r"maxrss=(\d+)\s*$", r.stderr)
    return r.returncode, r.stderr, int(m.group(1))


def test_20mb_message_streams(dovecot, srv, config, popsift):
    big = mkmsg("big", body=gen.message(0, seed=9, size=(20 << 20) + 4096).split(b"\n\n", 1)[1])
    assert len(big) > 20 << 20
    dovecot.add_message("alice", big)
    code, err, peak = run_rss(popsift, "-f", config(**smtp_keys(srv)), "run")
    assert code == 0, err
    got = srv.messages[0].data
    assert len(got) == len(wire(big))
    assert hashlib.sha256(got).digest() == hashlib.sha256(wire(big)).digest()
    # spilled to a temp file and read back in chunks: far below 20 MB
    assert peak < 20 * 1024 * pt.RSS_SCALE, f"popsift peaked at {peak} KiB"
    assert dovecot.count("alice") == 0


def test_envelope_sender_choices(dovecot, srv, config, run, tmp):
    a = mkmsg("rp", sender="bounce@lists.example.org")
    b = mkmsg("nort", sender=None)
    c = mkmsg("null", sender="")
    dovecot.add_messages("alice", [a, b, c])
    r = run("-f", config(**smtp_keys(srv, smtp_helo="popsift.example")), "run")
    assert r.returncode == 0, r.stderr
    assert [m.mail_from for m in srv.messages] == [
        "bounce@lists.example.org", "from-nort@example.com", "<>"]
    assert {m.helo for m in srv.messages} == {"popsift.example"}
    dovecot.add_message("alice", mkmsg("over"))
    r = run("-f", config(**smtp_keys(srv, smtp_from="fetcher@example.org")), "run")
    assert r.returncode == 0, r.stderr
    assert srv.messages[-1].mail_from == "fetcher@example.org"


def test_rule_action_forward(dovecot, srv, config, run, tmp):
    rules = tmp / "r.rules"
    rules.write_text('match header "Subject" =~ /^boss/ forward phone@example.net continue\n'
                     'match header "Subject" =~ /^list/ forward a@example.org b@example.org\n')
    boss, lst, other = mkmsg("b", subject="boss says"), mkmsg("l", subject="list"), mkmsg("o")
    dovecot.add_messages("alice", [boss, lst, other])
    cfg = config(**smtp_keys(srv, deliver=f"mbox {tmp / 'inbox.mbox'}", rules=rules))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [(m.rcpt_tos, m.data) for m in srv.messages] == [
        (["phone@example.net"], wire(boss)), (["a@example.org", "b@example.org"], wire(lst))]
    assert pt.mbox_messages(tmp / "inbox.mbox") == [boss, other]
    assert dovecot.count("alice") == 0


def test_one_connection_across_batches_and_verbose(dovecot, srv, config, run):
    msgs = [mkmsg(f"n{i}") for i in range(520)]      # batches hold 500
    dovecot.add_messages("alice", msgs)
    r = run("-f", config(**smtp_keys(srv)), "-v", "run")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs]
    assert srv.connections == 1 and len(srv.opened) == 1
    assert r.stderr.count("Re-using existing connection") == 519
    assert r.stderr.count("C: MAIL FROM:<sender@example.com>") == 520
    assert "S: 250 2.0.0 OK queued" in r.stderr
    assert r.stderr.count("S: 221 Bye") == 1                # SMTP's QUIT, said once
    assert dovecot.count("alice") == 0
    # the dialogue: with PIPELINING the envelope and DATA go out before
    # any reply, and once the queue holds the next message its envelope
    # goes out with this one's dot (one round trip a message); without
    # it one command at a time.  The POP3 side logs from the other thread.
    lines = [ln.split(": ", 1)[1] for ln in r.stderr.splitlines()
             if re.match(r"^\S+: (C: (MAIL|RCPT|DATA|\.)|S: \d{3})", ln)]
    got = " ".join(ln.split()[0] + " " + ln.split()[1][:4] for ln in lines)
    got = got[got.index("C: MAIL"):].removesuffix(" S: 221")    # from the first message
    if srv.pipelining:
        assert got.startswith("C: MAIL C: RCPT C: DATA S: 250 S: 250 S: 354 C: ."), got[:200]
        ahead = "C: . C: MAIL C: RCPT C: DATA S: 250 S: 250 S: 250 S: 354 "
        assert got.count(ahead) >= 400, got[:400]
    else:
        assert got == "C: MAIL S: 250 C: RCPT S: 250 C: DATA S: 354 C: . S: 250" + \
            " C: MAIL S: 250 C: RCPT S: 250 C: DATA S: 354 C: . S: 250" * 519, got[:400]


def test_kept_connection_dropped_is_reopened(dovecot, srv, config, run):
    msgs = [mkmsg(f"k{i}") for i in range(3)]
    dovecot.add_messages("alice", msgs)
    srv.drop_kept_once = True
    r = run("-f", config(**smtp_keys(srv)), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "closed the kept connection: connecting again" in r.stderr
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs]
    assert srv.connections == 2 and dovecot.count("alice") == 0


def test_server_closing_between_messages_is_redialled(dovecot, srv, config, run):
    """A server that says 421 and hangs up after a message (an MTA's
    per-connection limit): the next message goes over a new connection,
    not into the dead one, so nothing is deferred."""
    msgs = [mkmsg(f"c{i}") for i in range(3)]
    dovecot.add_messages("alice", msgs)
    srv.close_after_data = True
    r = run("-f", config(**smtp_keys(srv)), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("S: 421 4.4.2 closing") == 3      # no QUIT into the last
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs]
    assert srv.connections == 3 and dovecot.count("alice") == 0


def test_reply_that_is_not_smtp_defers(dovecot, srv, config, run, tmp):
    msgs = [mkmsg("g0")]
    dovecot.add_messages("alice", msgs)
    srv.mail_reply = "hello there"
    r = run("-f", config(**smtp_keys(srv)), "run")
    assert r.returncode == 75, r.stderr
    assert 'answered MAIL with "hello there", not an SMTP reply' in r.stderr
    assert "deferred" in r.stderr and dovecot.count("alice") == 1
    srv.mail_reply = None
    r = run("-f", config(**smtp_keys(srv)), "run")
    assert r.returncode == 0, r.stderr
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs]


# --------------------------------------------------------------------------
# refusals: nothing lost, nothing forwarded twice

def test_550_recipient_rejected_kept_and_reported(dovecot, srv, config, run, tmp):
    good, bad = mkmsg("good"), mkmsg("bad")
    dovecot.add_messages("alice", [good, bad])
    cfg = config(**smtp_keys(srv))
    srv.rcpt_replies["bob@example.org"] = "550 5.1.1 <bob@example.org>: no such user"
    r = run("-f", cfg, "run")
    assert r.returncode == 65, r.stderr
    assert "550 5.1.1 <bob@example.org>: no such user" in r.stderr
    assert srv.messages == [] and dovecot.count("alice") == 2
    st = states(tmp)
    assert [s for s, _ in st.values()] == ["rejected", "rejected"]
    assert all("550 5.1.1" in e for _, e in st.values())
    # fixed on the server side, but a 5xx is not retried: reported each run
    srv.rcpt_replies.clear()
    for _ in range(2):
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("was rejected by the SMTP server") == 2
        assert srv.messages == [] and dovecot.count("alice") == 2
    # the user acts: on_reject discard deletes them, unsent
    r = run("-f", config(**smtp_keys(srv, on_reject="discard")), "run")
    assert r.returncode == 0, r.stderr
    assert srv.messages == [] and dovecot.count("alice") == 0


def test_554_at_end_of_data_and_discard(dovecot, srv, config, run, tmp):
    m = mkmsg("spam")
    dovecot.add_message("alice", m)
    srv.data_reply = "554 5.7.1 message content rejected"
    r = run("-f", config(**smtp_keys(srv, on_reject="discard")), "run")
    assert r.returncode == 0, r.stderr
    assert "554 5.7.1 message content rejected" in r.stderr
    assert "discarded (on_reject discard)" in r.stderr
    assert dovecot.count("alice") == 0 and srv.messages == []
    (state, err), = states(tmp).values()
    assert state == "deleted" and "554 5.7.1" in err


def test_451_deferred_then_delivered_once(dovecot, srv, config, run, tmp):
    msgs = [mkmsg(f"d{i}") for i in range(3)]
    dovecot.add_messages("alice", msgs)
    cfg = config(**smtp_keys(srv))
    srv.mail_reply = "451 4.3.0 try again later"
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert "451 4.3.0 try again later" in r.stderr
    assert dovecot.count("alice") == 3 and srv.messages == []
    assert {s for s, _ in states(tmp).values()} == {"deferred"}
    srv.mail_reply = None
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs]
    assert dovecot.count("alice") == 0
    r = run("-f", cfg, "run")
    assert r.returncode == 0 and len(srv.messages) == 3


def test_refusals_in_the_middle_of_a_stream(dovecot, srv, config, run, tmp):
    """With PIPELINING each message's envelope goes out with the previous
    one's final dot: refusals at MAIL (5xx and 4xx) and at one RCPT
    (on_partial keep drops the connection mid-DATA) in the middle and at
    the end of a stream of 60 cost only their own message."""
    rules = tmp / "r.rules"
    rules.write_text('match header "Subject" =~ /^part/ forward ok@example.org gone@example.org\n'
                     'match all forward bob@example.org\n')
    msgs = [mkmsg(f"m{i}", sender=f"s{i}@example.com",
                  subject="part" if i == 30 else f"m{i}") for i in range(60)]
    dovecot.add_messages("alice", msgs)
    srv.mail_replies["s10@example.com"] = "550 5.7.1 sender refused"
    srv.mail_replies["s20@example.com"] = "451 4.7.1 greylisted"
    srv.rcpt_replies["gone@example.org"] = "550 5.1.1 gone"
    srv.mail_replies["s59@example.com"] = "452 4.3.1 insufficient storage"
    cfg = config(**smtp_keys(srv, deliver=f"mbox {tmp / 'unused.mbox'}", rules=rules))
    r = run("-f", cfg, "run")
    assert r.returncode == 65, r.stderr          # a rejection outranks a deferral
    assert "answered MAIL s20@example.com: 451 4.7.1 greylisted (deferred" in r.stderr
    sent = [i for i in range(60) if i not in (10, 20, 30, 59)]
    assert [m.data for m in srv.messages] == [wire(msgs[i]) for i in sent]
    assert dovecot.count("alice") == 4
    st = sorted(s for s, _ in states(tmp).values() if s != "deleted")
    assert st == ["deferred", "deferred", "rejected", "rejected"], st
    # the refusals lifted: the deferred ones go once, the rejected stay
    srv.mail_replies.clear()
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [m.data for m in srv.messages[len(sent):]] == [wire(msgs[20]), wire(msgs[59])]
    assert dovecot.count("alice") == 2


def test_partial_recipients_keep_sends_to_nobody(dovecot, srv, config, run, tmp):
    m = mkmsg("part")
    dovecot.add_message("alice", m)
    keys = smtp_keys(srv, deliver="forward ok@example.org gone@example.org")
    srv.rcpt_replies["gone@example.org"] = "550 5.1.1 gone"
    r = run("-f", config(**keys), "run")
    assert r.returncode == 65, r.stderr
    assert "refused gone@example.org (550 5.1.1 gone) and accepted ok@example.org" in r.stderr
    assert srv.messages == [] and dovecot.count("alice") == 1
    (state, err), = states(tmp).values()
    assert state == "rejected" and "gone@example.org (550 5.1.1 gone)" in err


def test_partial_temporary_refusal_is_deferred(dovecot, srv, config, run):
    m = mkmsg("part4")
    dovecot.add_message("alice", m)
    cfg = config(**smtp_keys(srv, deliver="forward ok@example.org busy@example.org"))
    srv.rcpt_replies["busy@example.org"] = "452 4.2.2 mailbox full"
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert srv.messages == [] and dovecot.count("alice") == 1
    srv.rcpt_replies.clear()
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [x.rcpt_tos for x in srv.messages] == [["ok@example.org", "busy@example.org"]]


def test_partial_recipients_accept(dovecot, srv, config, run):
    m = mkmsg("acc")
    dovecot.add_message("alice", m)
    keys = smtp_keys(srv, deliver="forward ok@example.org gone@example.org", on_partial="accept")
    srv.rcpt_replies["gone@example.org"] = "550 5.1.1 gone"
    r = run("-f", config(**keys), "run")
    assert r.returncode == 0, r.stderr
    assert "forwarded to ok@example.org only" in r.stderr
    assert "gone@example.org (550 5.1.1 gone)" in r.stderr
    assert [(x.rcpt_tos, x.data) for x in srv.messages] == [(["ok@example.org"], wire(m))]
    assert dovecot.count("alice") == 0


def test_unreachable_server(dovecot, config, run, smtpd, tmp):
    msgs = [mkmsg(f"u{i}") for i in range(5)]
    dovecot.add_messages("alice", msgs)
    port = pt.free_port()                          # nothing listens there
    cfg = config(smtp_host="127.0.0.1", smtp_port=port, received_header="no",
                 deliver="forward bob@example.org")
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert f"cannot forward through 127.0.0.1:{port}" in r.stderr
    assert dovecot.count("alice") == 5
    assert {s for s, _ in states(tmp).values()} == {"deferred"}
    srv = smtpd(port=port)
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs]
    assert dovecot.count("alice") == 0


def test_dropped_connection_and_timeout_defer(dovecot, srv, config, run):
    m = mkmsg("drop")
    dovecot.add_message("alice", m)
    srv.drop_at_data = True
    # timeout 5: the POP3 and SMTP replies that do come, on a busy machine
    cfg = config(**smtp_keys(srv, timeout=5))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert "deferred" in r.stderr and dovecot.count("alice") == 1
    srv.drop_at_data = False
    srv.data_delay = 300                           # never within timeout 5 (cancelled
                                                   # when popsift hangs up)
    srv.data_reply = "451 4.0.0 too late anyway"
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert dovecot.count("alice") == 1
    srv.data_delay, srv.data_reply = 0, None
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [x.data for x in srv.messages] == [wire(m)]


# --------------------------------------------------------------------------
# authentication and TLS

@pytest.mark.parametrize("mech", ["any", "plain", "login", "cram-md5"])
def test_auth_mechanisms_masked(dovecot, smtpd, config, run, mech):
    srv = smtpd(users={"fwd": "s3cret-pw"})
    dovecot.add_message("alice", mkmsg("auth"))
    cfg = config(**smtp_keys(srv, smtp_user="fwd", smtp_password="s3cret-pw", smtp_auth=mech))
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert len(srv.messages) == 1
    assert "C: AUTH " in r.stderr and "****" in r.stderr
    import base64
    secrets = ["s3cret-pw", base64.b64encode(b"\0fwd\0s3cret-pw").decode(),
               base64.b64encode(b"s3cret-pw").decode()]
    assert not any(s in r.stderr for s in secrets)


def test_xoauth2(dovecot, smtpd, config, run):
    srv = smtpd(tokens={"fwd@example.org": "ya29.token"})
    dovecot.add_message("alice", mkmsg("oauth"))
    cfg = config(**smtp_keys(srv, smtp_user="fwd@example.org", smtp_auth="xoauth2",
                             smtp_password_command="echo ya29.token"))
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert len(srv.messages) == 1 and "ya29.token" not in r.stderr
    assert "C: AUTH XOAUTH2 ****" in r.stderr


def test_bad_password_exit_77(dovecot, smtpd, config, run, tmp):
    srv = smtpd(users={"fwd": "right"})
    msgs = [mkmsg(f"p{i}") for i in range(3)]
    dovecot.add_messages("alice", msgs)
    r = run("-f", config(**smtp_keys(srv, smtp_user="fwd", smtp_password="wrong")), "run")
    assert r.returncode == 77, r.stderr
    assert "SMTP login refused for user fwd" in r.stderr
    assert srv.messages == [] and dovecot.count("alice") == 3
    assert len(srv.opened) == 1                    # not once per message
    r = run("-f", config(**smtp_keys(srv, smtp_user="fwd", smtp_password="right")), "run")
    assert r.returncode == 0, r.stderr
    assert [m.data for m in srv.messages] == [wire(m) for m in msgs]
    assert dovecot.count("alice") == 0


def test_cleartext_password_refused_off_loopback(dovecot, config, run):
    dovecot.add_message("alice", mkmsg("clear"))
    cfg = config(smtp_host="192.0.2.1", smtp_user="fwd", smtp_password="pw",
                 deliver="forward bob@example.org")
    r = run("-f", cfg, "run")
    assert r.returncode == 78, r.stderr
    assert "clear text" in r.stderr and dovecot.count("alice") == 1


@pytest.mark.parametrize("mode", ["starttls", "on"])
def test_tls_verified(dovecot, smtpd, config, run, tmp, mode):
    certs = pt.make_certs(tmp / "smtp-tls")
    srv = smtpd(tls=mode, certs=certs, users={"fwd": "pw"})
    m = mkmsg("tls")
    dovecot.add_message("alice", m)
    keys = smtp_keys(srv, smtp_tls=mode, smtp_user="fwd", smtp_password="pw",
                     smtp_host="localhost")
    # the POP3 CA (tls_ca_file) does not vouch for this server
    r = run("-f", config(**keys), "run")
    assert r.returncode == 69, r.stderr
    assert "TLS with SMTP server localhost" in r.stderr
    assert srv.messages == [] and dovecot.count("alice") == 1
    r = run("-f", config(**keys, smtp_tls_ca_file=certs["ca"]), "run")
    assert r.returncode == 0, r.stderr
    assert [x.data for x in srv.messages] == [wire(m)]
    assert dovecot.count("alice") == 0


def test_config_errors(config, run, tmp, dovecot):
    for key, val, want in [("on_reject", "maybe", "expected keep or discard"),
                           ("on_partial", "yes", "expected keep or accept"),
                           ("smtp_auth", "apop", "smtp_auth must be")]:
        r = run("-f", config(**{key: val}), "check")
        assert r.returncode == 78 and want in r.stderr, r.stderr


def test_bad_address_is_a_config_error(dovecot, srv, config, run):
    dovecot.add_message("alice", mkmsg("addr"))
    r = run("-f", config(**smtp_keys(srv, deliver='forward "a b@example.org"')), "run")
    assert r.returncode == 78, r.stderr
    assert "is not a mail address" in r.stderr and dovecot.count("alice") == 1



def test_server_answering_early_and_not_reading_defers(dovecot, config, run, tmp):
    """A server that refuses in the middle of a big message's data and
    stops reading (a fault aiosmtpd will not make: a scripted server).
    popsift waits for room to send, not for the early reply: no spinning,
    and after `timeout` the message is deferred, still on the server."""
    import socket
    import threading
    import resource

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    held = []

    def serve():
        c, _ = lsock.accept()
        held.append(c)
        f = c.makefile("rb")
        c.sendall(b"220 scripted\r\n")
        for line in f:
            verb = line[:4].upper()
            if verb == b"EHLO":
                c.sendall(b"250-scripted\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                c.sendall(b"354 go\r\n")
                f.read(4096)
                c.sendall(b"552 5.3.4 too big\r\n")
                return                                # and read nothing more
            else:
                c.sendall(b"250 ok\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    big = mkmsg("big", body=gen.message(0, seed=9, size=20 << 20).split(b"\n\n", 1)[1])
    dovecot.add_message("alice", big)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # timeout 5: what does come, comes in time on a busy machine; a spin
    # through those 5 s would cost seconds of CPU
    r = run("-f", config(smtp_host="127.0.0.1", smtp_port=lsock.getsockname()[1], timeout=5,
                         received_header="no", deliver="forward bob@example.org"), "run")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for c in held:
        c.close()
    lsock.close()
    assert r.returncode == 75, r.stderr
    assert "the server took nothing within 5 s" in r.stderr and "deferred" in r.stderr
    assert dovecot.count("alice") == 1
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert cpu < 2.5, f"popsift used {cpu:.2f} s of CPU while it waited"
