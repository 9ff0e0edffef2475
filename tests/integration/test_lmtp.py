"""LMTP delivery (issue 15): Dovecot (POP3) -> popsift -> Dovecot's LMTP
server (dovecot-lmtpd) on a unix socket or 127.0.0.1 -> another user's
Maildir, byte for byte; refused, over-quota and dropped deliveries; one
connection for a whole run.  Faults Dovecot will not produce on demand
come from a scripted fake LMTP server (tests/lib/fakelmtp.py).

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_lmtp.py
"""

import os
import re
import sqlite3

import pytest

import popsift_test as pt
from fakelmtp import FakeLmtp

gen = pt.load_genmail()


@pytest.fixture
def lmtp_dovecot(make_dovecot):
    return make_dovecot(users={"alice": "secret", "bob": "secret", "carol": "secret"},
                        lmtp=True)


def undovecot(m: bytes) -> bytes:
    """A message as Dovecot's LMTP stored it, without the Return-Path,
    Delivered-To and Received: it put on top."""
    assert m.startswith(b"Return-Path: "), m[:200]
    for name in ("Return-Path", "Delivered-To", "Received"):
        m = pt.strip_header(m, name, 1)
    return m


def added(m: bytes, name: str) -> str:
    """The value of the header Dovecot put on top."""
    return pt.header_values(m, name)[0]


def states(tmp):
    db = sqlite3.connect(tmp / "state.db")
    try:
        return {u: (s, e) for u, s, e in db.execute("SELECT uidl, state, error FROM messages")}
    finally:
        db.close()


def keys(where, **kw):
    k = dict(tls="off", received_header="no", deliver=f"lmtp {where} bob")
    k.update(kw)
    return k


def test_lmtp_unix_socket_byte_for_byte(lmtp_dovecot, config, run, tmp):
    dc = lmtp_dovecot
    msgs = gen.generate(16, seed=15)       # dots, "From " lines, 8-bit, GBK, multipart
    msgs.append(b"From: Nobody <nobody@example.net>\nSubject: no return path\n\n.\n..\nend\n")
    # 3 MB: spilled to a temp file by popsift, streamed in chunks
    big = b"".join(b".line %d %s\n" % (i, b"x" * (i % 200)) for i in range(28000))
    msgs.append(b"Return-Path: <>\nFrom: big@example.net\nSubject: big\n\n" + big)
    dc.add_messages("alice", msgs)
    r = run("-f", config(server=dc, **keys(f"unix:{dc.lmtp_socket}")), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: LHLO " in r.stderr
    assert r.stderr.count("Connected to unix:") == 1
    got = dc.messages("bob")
    assert sorted(undovecot(m) for m in got) == sorted(msgs)
    assert dc.count("alice") == 0
    for m in got:
        orig = undovecot(m)
        rp = pt.header_values(orig, "Return-Path")
        # the envelope sender: the message's Return-Path, else its From address
        want = rp[0].strip() if rp else "<nobody@example.net>"   # "<>" stays null
        assert added(m, "Return-Path").strip() == want
        assert added(m, "Delivered-To").strip() == "bob"


def test_lmtp_tcp_default_recipient(lmtp_dovecot, config, run, tmp):
    dc = lmtp_dovecot
    msgs = gen.generate(3, seed=16)
    dc.add_messages("alice", msgs)
    where = f"127.0.0.1:{dc.lmtp_port}"
    # no recipient on the deliver line: lmtp_rcpt
    r = run("-f", config(server=dc, **keys(where, deliver=f"lmtp {where}", lmtp_rcpt="carol")), "run")
    assert r.returncode == 0, r.stderr
    assert sorted(undovecot(m) for m in dc.messages("carol")) == sorted(msgs)
    # neither: the account's user name
    dc.add_messages("bob", msgs[:1])
    # (another state: bob's first UIDL may equal alice's, same uid and uidvalidity)
    r = run("-f", config("bob", server=dc, state=tmp / "bob.db",
                         **keys(where, deliver=f"lmtp {where}")), "run")
    assert r.returncode == 0, r.stderr
    got = dc.messages("bob")
    assert len(got) == 1 and undovecot(got[0]) == msgs[0]
    assert added(got[0], "Delivered-To").strip() == "bob"


def test_lmtp_unknown_recipient_on_partial(lmtp_dovecot, config, run, tmp):
    dc = lmtp_dovecot
    msgs = gen.generate(2, seed=17)
    dc.add_messages("alice", msgs)
    sock = dc.lmtp_socket
    # on_partial keep (the default): sent to nobody, left on the server, not retried
    cfg = config(server=dc, **keys(f"unix:{sock}", deliver=f"lmtp unix:{sock} bob nosuch"))
    r = run("-f", cfg, "run")
    assert r.returncode != 0
    assert "nosuch (550 5.1.1" in r.stderr and "sent to nobody" in r.stderr, r.stderr
    assert dc.count("bob") == 0 and dc.count("alice") == 2
    assert {s for s, _ in states(tmp).values()} == {"rejected"}
    # on_partial accept: bob gets them, the refusal is logged
    cfg = config(server=dc, **keys(f"unix:{sock}", deliver=f"lmtp unix:{sock} bob nosuch",
                        on_partial="accept"))
    r = run("-f", cfg, "run", "--all")
    assert r.returncode == 0, r.stderr
    assert "delivered to bob only" in r.stderr and "nosuch (550 5.1.1" in r.stderr
    assert sorted(undovecot(m) for m in dc.messages("bob")) == sorted(msgs)
    assert dc.count("alice") == 0


def test_lmtp_over_quota_defers(make_dovecot, config, run, tmp):
    """carol is over quota: Dovecot answers her 452 (quota_full_tempfail)
    after the data, bob 250.  The message stays on the POP3 server and the
    outcome names bob as the one who will get it twice; once carol has
    room, the next run delivers it."""
    quota = ("mail_plugins = $mail_plugins quota\n"
             "plugin {\n  quota = maildir:User quota\n  quota_rule = *:storage=20K\n}\n"
             "quota_full_tempfail = yes\n")
    dc = make_dovecot(users={"alice": "secret", "bob": "secret", "carol": "secret"},
                      lmtp=True, extra_conf=quota)
    big = dc.maildir("carol") / "cur" / "1.big:2,S"
    big.write_bytes(b"Subject: big\n\n" + b"x" * 40000 + b"\n")
    os.chown(big, dc.mail_uid, dc.mail_gid)
    msgs = gen.generate(1, seed=18)
    dc.add_messages("alice", msgs)
    sock = dc.lmtp_socket
    cfg = config(server=dc, **keys(f"unix:{sock}", deliver=f"lmtp unix:{sock} bob carol"))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, r.stderr
    assert re.search(r"delivered to bob but not to carol \(452 ", r.stderr), r.stderr
    assert "bob will get it again" in r.stderr
    assert dc.count("alice") == 1 and dc.count("bob") == 1
    assert {s for s, _ in states(tmp).values()} == {"deferred"}
    big.unlink()
    for f in (dc.maildir("carol")).glob("maildirsize"):
        f.unlink()
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert [undovecot(m) for m in dc.messages("carol")] == msgs
    assert dc.count("alice") == 0
    assert [undovecot(m) for m in dc.messages("bob")] == msgs * 2   # at-least-once


@pytest.mark.parametrize("fault", ["452", "drop"])
def test_lmtp_fault_after_data_keeps_message(dovecot, config, run, tmp, fault):
    """A 452 for one recipient, or the connection dropped after the data:
    the message stays on the server, the run goes on over a new
    connection, and a rerun delivers what was left."""
    msgs = [b"From: s%d@example.org\nSubject: m%d\n\n.line %d\n" % (i, i, i) for i in range(3)]
    dovecot.add_messages("alice", msgs)
    sock = tmp / "lmtp.sock"

    def script(n, rcpts):
        if n != 1:
            return [f"250 2.0.0 <{r}> saved" for r in rcpts]
        if fault == "drop":
            return None
        return ["250 2.0.0 <a> saved", "452 4.2.2 <b> Mailbox is full"]

    with FakeLmtp(sock, after_data=script) as srv:
        cfg = config(**keys(f"unix:{sock}", tls="on", deliver=f"lmtp unix:{sock} a b"))
        r = run("-f", cfg, "run")
        assert r.returncode == 75, r.stderr
        if fault == "drop":
            assert "did not deliver to a (no reply), b (no reply)" in r.stderr, r.stderr
        else:
            assert "delivered to a but not to b (452 4.2.2 " in r.stderr, r.stderr
            assert "a will get it again" in r.stderr
        assert "(deferred: retried next run)" in r.stderr
        assert dovecot.count("alice") == 1
        assert srv.transactions == 3
        assert srv.connections == (2 if fault == "drop" else 1)
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        assert dovecot.count("alice") == 0
        for who in ("a", "b"):
            got = sorted(d for w, d in srv.delivered if w == who)
            assert set(got) == {m.replace(b"\n", b"\r\n") for m in msgs}
        assert not srv.errors


def test_lmtp_500_messages_one_connection(lmtp_dovecot, config, run, tmp):
    dc = lmtp_dovecot
    msgs = [b"From: s%d@example.org\nSubject: m%d\n\nbody %d\n" % (i, i, i) for i in range(500)]
    dc.add_messages("alice", msgs)
    r = run("-f", config(server=dc, **keys(f"unix:{dc.lmtp_socket}")), "-v", "run", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("Connected to unix:") == 1
    assert r.stderr.count("Re-using existing connection") == 499
    assert dc.count("bob") == 500
    # Dovecot names each LMTP session: <id:Tn> for its n-th transaction
    log = dc.log()
    sessions = set(re.findall(r"lmtp\(bob\)<\d+><([^:>]+)(?::T\d+)?>: Info: .*saved mail", log))
    assert len(re.findall(r"saved mail to INBOX", log)) == 500
    assert len(sessions) == 1, sessions
    assert len(re.findall(r"lmtp\(\d+\): Info: Disconnect from", log)) == 1


def test_lmtp_rule_action(lmtp_dovecot, config, run, tmp):
    dc = lmtp_dovecot
    msgs = [b"From: s%d@example.org\nSubject: %s %d\n\nbody\n" % (i, s, i)
            for i, s in enumerate([b"Weekly report", b"hello", b"REPORT", b"lunch"])]
    dc.add_messages("alice", msgs)
    sock = dc.lmtp_socket
    rules = pt.write_config(tmp / "rules",
                            f'match header "Subject" =~ /report/i lmtp unix:{sock} carol\n'
                            f"match all lmtp unix:{sock}\n", 0o600)
    r = run("-f", config(server=dc, **keys(f"unix:{sock}", rules=rules, lmtp_rcpt="bob")), "run")
    assert r.returncode == 0, r.stderr
    reports = [m for m in msgs if re.search(rb"^Subject:.*report", m, re.M | re.I)]
    assert reports and len(reports) < len(msgs)
    assert sorted(undovecot(m) for m in dc.messages("carol")) == sorted(reports)
    assert sorted(undovecot(m) for m in dc.messages("bob")) == \
        sorted(m for m in msgs if m not in reports)


def test_lmtp_unreachable_and_bad_address(dovecot, config, run, tmp):
    """No server at the socket: every message stays for the next run (75),
    with one try for the run; a malformed server address is a
    configuration error (78) and delivers nothing."""
    msgs = [b"From: s%d@example.org\nSubject: m%d\n\nbody\n" % (i, i) for i in range(3)]
    dovecot.add_messages("alice", msgs)
    sock = tmp / "nobody.sock"
    r = run("-f", config(**keys(f"unix:{sock}", tls="on")), "run")
    assert r.returncode == 75, r.stderr
    assert f"cannot deliver through LMTP at unix:{sock}" in r.stderr
    assert dovecot.count("alice") == 3
    assert {s for s, _ in states(tmp).values()} == {"deferred"}
    r = run("-f", config(**keys("localhost", tls="on", deliver="lmtp localhost bob")), "run")
    assert r.returncode == 78, r.stderr
    assert "neither unix:/PATH nor HOST:PORT" in r.stderr
    assert dovecot.count("alice") == 3
