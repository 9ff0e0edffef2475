"""Issue 4 end to end with a real MTA: Dovecot (POP3) -> popsift -> exim4
on a loopback port (its own config, spool and Maildirs: tests/lib/exim.py)
-> the delivered mailbox.

Run:  POPSIFT=/tmp/popsift /usr/bin/python3 -m pytest -q tests/integration/test_smtp_mta.py
"""

import re
import sqlite3

import pytest

import popsift_test as pt

exim_mod = pytest.importorskip("exim")
gen = pt.load_genmail()


@pytest.fixture
def mta(request):
    if exim_mod.exim_binary() is None:
        pytest.fail("exim4 is not installed: sh tests/deps.sh exim4-daemon-light")
    m = exim_mod.Exim(users=("bob", "carol"))
    yield m
    if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
        print(m.log()[-4000:])
    m.stop()


def keys(mta, **kw):
    k = dict(smtp_host="127.0.0.1", smtp_port=mta.port, smtp_helo="popsift.test",
             received_header="no", deliver="forward bob@example.org carol@example.org")
    k.update(kw)
    return k


def unexim(m: bytes) -> bytes:
    """A delivered message without the Received: line exim put on top."""
    assert m.startswith(b"Received: from "), m[:200]
    return pt.strip_header(m, "Received", 1)


def states(tmp):
    db = sqlite3.connect(tmp / "state.db")
    try:
        return {u: (s, e) for u, s, e in db.execute("SELECT uidl, state, error FROM messages")}
    finally:
        db.close()


def test_dovecot_popsift_exim_mailbox(dovecot, mta, config, run, tmp):
    msgs = gen.generate(16, seed=21)       # dots, "From " lines, 8-bit, GBK, multipart
    dovecot.add_messages("alice", msgs)
    r = run("-f", config(**keys(mta)), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("Re-using existing connection") == len(msgs) - 1
    for user in ("bob", "carol"):
        got = mta.wait_for(user, len(msgs))
        # exim drops Return-Path: at delivery (return_path_remove)
        want = [pt.strip_header(m, "Return-Path") for m in msgs]
        assert len(got) == len(want), user
        # exim delivers in parallel: Maildir order is not arrival order
        assert sorted(unexim(m) for m in got) == sorted(want), user
    assert dovecot.count("alice") == 0
    mainlog = mta.wait_log("closed by QUIT")
    assert mainlog.count(" <= ") == len(msgs)               # one arrival each
    assert "H=(popsift.test) [127.0.0.1]" in mainlog
    # one connection for all: the other one is Exim.start()'s readiness probe
    assert mainlog.count("TCP/IP connection count") == 2
    assert mainlog.count("SMTP connection from (popsift.test) [127.0.0.1] closed by QUIT") == 1


def test_exim_refusals(dovecot, mta, config, run, tmp):
    gone, busy, ok = (pt_msg(t) for t in ("gone", "busy", "ok"))
    dovecot.add_messages("alice", [gone, busy, ok])
    rules = tmp / "r.rules"
    rules.write_text('match header "Subject" =~ /^gone/ forward nobody@example.org\n'
                     'match header "Subject" =~ /^busy/ forward busy@example.org\n')
    cfg = config(**keys(mta, rules=rules, deliver="forward bob@example.org"))
    r = run("-f", cfg, "run")
    assert r.returncode == 65, r.stderr
    assert "550 5.1.1 <nobody@example.org>: no such user here" in r.stderr
    assert "451 4.3.0 mailbox busy, try later" in r.stderr
    assert [unexim(m) for m in mta.wait_for("bob", 1)] == [ok]
    assert dovecot.count("alice") == 2
    assert mta.wait_log("closed by QUIT").count(" <= ") == 1
    assert sorted(s for s, _ in states(tmp).values()) == ["deferred", "deleted", "rejected"]
    # the rerun: the rejected one is reported and left alone, the deferred
    # one is tried again (still busy), nothing reaches bob twice
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert "was rejected by the SMTP server" in r.stderr
    # every arrival is logged before its 250, the session's end after
    # its 221: no second arrival once the rerun's session is logged
    assert mta.wait_log("closed by QUIT", 2).count(" <= ") == 1
    assert len(mta.mailbox("bob")) == 1
    assert dovecot.count("alice") == 2


def pt_msg(tag: str) -> bytes:
    return (f"From: Sender <s@example.com>\nTo: alice@example.org\nSubject: {tag}\n"
            f"Message-ID: <{tag}@popsift.test>\n\nbody of {tag}\n").encode()



# A message's own end-of-data look-alikes, with a second transaction
# behind them: a server that took one for the end would deliver a
# "smuggled" message to carol.  RFC 5321 2.3.8: CRLF only on the wire.
SMUGGLE = (b"MAIL FROM:<smuggler@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n"
           b"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
FAKE_ENDS = {"lf": b"\n.\n", "crlf-cr": b"\r\n.\r", "lf-crlf": b"\n.\r\n", "cr-crlf": b"\r.\r\n"}


def one_line_end(m: bytes) -> bytes:
    """m with each CRLF, lone CR and lone LF as one LF: what a Maildir
    holds of a message that went over SMTP as CRLF only."""
    return re.sub(rb"\r\n|\r|\n", b"\n", m)


def bare_line_ends(wire: bytes) -> list[bytes]:
    return [wire[max(0, m.start() - 20):m.end() + 20]
            for m in re.finditer(rb"\r(?!\n)|(?<!\r)\n", wire)]


def test_fake_ends_do_not_split_a_message(dovecot, mta, config, run, tmp):
    msgs = [pt_msg(tag).replace(f"body of {tag}\n".encode(),
                                b"before" + end + SMUGGLE + b"mid\rafter" + end + b"last\n")
            for tag, end in FAKE_ENDS.items()]
    dovecot.add_messages("alice", msgs)
    with exim_mod.Tap(mta.port) as tap:
        r = run("-f", config(**keys(mta, smtp_port=tap.port, deliver="forward bob@example.org")),
                "run")
        assert r.returncode == 0, r.stderr
        wire = tap.sent(0)
    assert bare_line_ends(wire) == []
    assert wire.count(b"\r\n.\r\n") == len(msgs)
    got = mta.wait_for("bob", len(msgs))
    assert sorted(unexim(m) for m in got) == sorted(one_line_end(m) for m in msgs)
    # the session's end is logged after its last arrival
    mainlog = mta.wait_log("closed by QUIT")
    assert mainlog.count(" <= ") == len(msgs), mainlog
    assert "smuggler" not in mainlog
    assert mta.mailbox("carol") == []
    assert dovecot.count("alice") == 0
