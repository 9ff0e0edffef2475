"""Issue 16: fewer round trips per POP3 session.

A server whose capabilities (CAPA, the greeting) are remembered from an
earlier session and that pipelines is reached without CAPA, USER/PASS
going out in one write with the listing; QUIT is not awaited when no DELE
was sent.  Every shortcut falls back when the server has changed."""

import re
import signal
import sqlite3
import subprocess
import time
import uuid

import pytest

import popsift_test as pt


def mkmsg(tag: str) -> bytes:
    return (f"From: s@example.com\nTo: alice@example.org\nSubject: {tag}\n"
            f"Message-ID: <{tag}.{uuid.uuid4().hex}@popsift.test>\n\nbody of {tag}\n").encode()


def proto(stderr: str) -> list[tuple[str, str]]:
    """The -v protocol trace: (direction, line) pairs in order."""
    out = []
    for ln in stderr.splitlines():
        m = re.match(r"^\S+: ([CS]): (.*)$", ln)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def first_write(trace) -> list[str]:
    """The commands sent after the greeting before any reply came."""
    cmds = []
    for d, line in trace[1:]:
        if d == "S":
            break
        cmds.append(line)
    return cmds


def sent(trace) -> list[str]:
    return [line for d, line in trace if d == "C"]


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stderr}"
    return r


def rtt_config(tmp, srv, **keys):
    keys.setdefault("tls", "off")
    keys.setdefault("auth", "user")
    keys.setdefault("timeout", 10)
    keys.setdefault("keep", "yes")
    keys.setdefault("deliver", f"mbox {tmp / 'inbox.mbox'}")
    keys.setdefault("state", tmp / "state.db")
    return pt.write_config(tmp / "config", pt.account_config(srv, "alice", name="test", **keys))


# --------------------------------------------------------------------------
# the short way against Dovecot

@pytest.mark.parametrize("tls", ["off", "on"])
@pytest.mark.parametrize("keep", ["yes", "no"])
def test_second_session_skips_capa_and_pipelines_login(dovecot, run, tmp, tls, keep):
    dovecot.add_message("alice", mkmsg("one"))
    cfg = rtt_config(tmp, dovecot, tls=tls, keep=keep)
    r1 = ok(run("-f", cfg, "-v", "run"))
    assert "CAPA" in sent(proto(r1.stderr))
    dovecot.add_message("alice", mkmsg("two"))
    r2 = ok(run("-f", cfg, "-vv", "run"))
    t = proto(r2.stderr)
    assert "CAPA" not in sent(t), r2.stderr
    assert t[0][0] == "S" and t[0][1].startswith("+OK"), t
    w = first_write(t)
    # USER, PASS and the listing (UIDL, or fast_uidl's STAT + UIDL n) in one write
    assert w[:2] == ["USER alice", "PASS ****"] and len(w) >= 3, t
    assert w[2] in ("UIDL", "STAT"), t
    subjects = [m.split(b"Subject: ")[1].split(b"\n")[0] for m in pt.mbox_messages(tmp / "inbox.mbox")]
    assert subjects == [b"one", b"two"]
    assert dovecot.count("alice") == (2 if keep == "yes" else 0)
    if keep == "no":
        # a DELE went out: QUIT's +OK commits it and is awaited
        assert ("C", "QUIT") in t and t[-1][0] == "S" and "Logging out" in t[-1][1], t
    else:
        # nothing deleted: QUIT is sent, its reply not awaited
        assert t[-1] == ("C", "QUIT"), t
    assert "secret" not in r2.stderr


def test_empty_poll_leaves_the_mailbox_and_state_alone(dovecot, run, tmp):
    dovecot.add_messages("alice", [mkmsg("a"), mkmsg("b")])
    cfg = rtt_config(tmp, dovecot, keep="yes")
    ok(run("-f", cfg, "run"))
    for _ in range(3):
        r = ok(run("-f", cfg, "-v", "run"))
        assert "CAPA" not in sent(proto(r.stderr))
    assert dovecot.count("alice") == 2
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2
    # every session reached QUIT though its reply was not awaited
    log = dovecot.wait_log("Disconnected: Logged out", 4)
    assert log.count("Disconnected: Logged out") == 4, dovecot.log_tail(10)


def test_refused_password_on_the_short_way_is_77_once(make_dovecot, run, tmp):
    dc = make_dovecot(users={"alice": "secret"})
    dc.add_messages("alice", [mkmsg("w1"), mkmsg("w2")])
    ok(run("-f", rtt_config(tmp, dc), "run"))
    dc.add_message("alice", mkmsg("w3"))
    bad = rtt_config(tmp, dc, password="wrong")
    r = run("-f", bad, "-v", "run")
    assert r.returncode == 77, r.stderr
    assert "CAPA" not in sent(proto(r.stderr))
    assert "login refused for user alice at 127.0.0.1" in r.stderr
    assert len(re.findall(r"Password mismatch", dc.log())) == 1, dc.log_tail(20)
    assert dc.count("alice") == 3
    # the same words as the long way (fresh state: CAPA first)
    slow = rtt_config(tmp, dc, password="wrong", state=tmp / "other.db")
    r2 = run("-f", slow, "-v", "run")
    assert r2.returncode == 77 and "CAPA" in sent(proto(r2.stderr))
    msg = lambda s: [ln for ln in s.splitlines() if "login refused" in ln][-1]  # noqa: E731
    assert msg(r.stderr) == msg(r2.stderr)
    # the next session with the right password asks CAPA again, and fetches
    r3 = ok(run("-f", rtt_config(tmp, dc), "-v", "run"))
    assert "CAPA" in sent(proto(r3.stderr))
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 3


# --------------------------------------------------------------------------
# TLS on the short way: the certificate is checked as on the long way

def remember_caps(state, key):
    """What a session of a pipelining Dovecot would have left behind."""
    db = sqlite3.connect(state)
    db.execute("CREATE TABLE IF NOT EXISTS caps(server TEXT PRIMARY KEY, known INTEGER, "
               "pipelining INTEGER, user INTEGER, uidl INTEGER, top INTEGER, stls INTEGER, "
               "apop_ts INTEGER, sasl TEXT, checked INTEGER, split_login INTEGER, "
               "fast_failed INTEGER)")
    db.execute("INSERT OR REPLACE INTO caps VALUES(?,1,1,1,1,1,0,0,'',strftime('%s','now'),0,0)",
               (key,))
    db.commit()
    db.close()


def test_pop3s_short_way_refuses_another_ca(make_dovecot, run, tmp):
    dc = make_dovecot(users={"alice": "secret"})
    dc.add_message("alice", mkmsg("ca"))
    ok(run("-f", rtt_config(tmp, dc, tls="on"), "run"))
    dc.add_message("alice", mkmsg("ca2"))
    other = pt.make_certs(tmp / "other-ca")
    r = run("-f", rtt_config(tmp, dc, tls="on", tls_ca_file=other["ca"]), "-vv", "run")
    assert "pipelines (CAPA of an earlier session)" in r.stderr, r.stderr
    assert r.returncode == 69, r.stderr
    assert "failed verification" in r.stderr
    assert not any(line.startswith("USER") for line in sent(proto(r.stderr)))
    assert dc.count("alice") == 2


def test_pop3s_short_way_checks_the_host_name(make_dovecot, run, tmp):
    d = tmp / "wrong-name"
    d.mkdir()
    (d / "server.ext").write_text("basicConstraints = critical, CA:FALSE\n"
                                  "extendedKeyUsage = serverAuth\n"
                                  "subjectAltName = DNS:wrong.example\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    pt._openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
                "-subj", "/CN=rtt test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                cwd=d)
    pt._openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
                "-subj", "/CN=wrong.example", cwd=d)
    pt._openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "30", "-extfile", "server.ext",
                "-out", "server.pem", cwd=d)
    for f in d.iterdir():
        f.chmod(0o644)
    dc = make_dovecot(users={"alice": "secret"},
                      extra_conf=f"ssl_cert = <{d / 'server.pem'}\nssl_key = <{d / 'server.key'}\n")
    dc.add_message("alice", mkmsg("name"))
    cfg = rtt_config(tmp, dc, tls="on", tls_ca_file=d / "ca.pem")
    remember_caps(tmp / "state.db", f"127.0.0.1:{dc.port_ssl}:tls")
    r = run("-f", cfg, "-vv", "run")
    assert "pipelines (CAPA of an earlier session)" in r.stderr, r.stderr
    assert r.returncode == 69, r.stderr
    assert "failed verification" in r.stderr
    assert dc.count("alice") == 1
    # the long way says the same
    r2 = run("-f", cfg, "run")
    assert r2.returncode == 69 and "failed verification" in r2.stderr


# --------------------------------------------------------------------------
# a server that changed: fakepop

def test_greeting_with_apop_now_takes_libcurls_way(fake, run, tmp):
    srv = fake([mkmsg("g1")])
    cfg = rtt_config(tmp, srv, auth="any")
    r1 = ok(run("-f", cfg, "-v", "run"))
    assert "USER alice" in sent(proto(r1.stderr))
    srv.add(mkmsg("g2"), "uid-2")
    srv.set(apop=True)      # libcurl would now log in with APOP, not USER/PASS
    r2 = ok(run("-f", cfg, "-v", "run"))
    cmds = sent(proto(r2.stderr))
    assert "not as remembered" in r2.stderr, r2.stderr
    assert "CAPA" in cmds and any(c.startswith("APOP") for c in cmds), cmds
    assert not any(c.startswith("USER") for c in cmds), cmds
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2


def test_server_that_stopped_pipelining(fake, run, tmp):
    srv = fake([mkmsg("p1")])
    cfg = rtt_config(tmp, srv, timeout=3)
    ok(run("-f", cfg, "run"))
    srv.add(mkmsg("p2"), "uid-2")
    # like qmail-popup: what came behind PASS is lost, nothing more is answered
    srv.set(pipelining=False, stall="STAT")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 75, r.stderr
    assert srv.remaining() == [mkmsg("p1"), mkmsg("p2")] or len(srv.remaining()) == 2
    srv.set(stall=None)
    r2 = ok(run("-f", cfg, "-v", "run"))
    t = proto(r2.stderr)
    assert "CAPA" in sent(t)
    # no PIPELINING in CAPA: the login is answered before the listing goes out
    i = [line for _, line in t].index("PASS ****")
    assert t[i + 1][0] == "S", t
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2
    # and it stays on the long way
    r3 = ok(run("-f", cfg, "-v", "run"))
    assert "CAPA" in sent(proto(r3.stderr))


def test_short_way_failed_once_is_not_taken_again(fake, run, tmp):
    """A server that says PIPELINING but loses what follows PASS (as
    Courier does): one session fails, later ones log in first."""
    srv = fake([mkmsg("c1")])
    cfg = rtt_config(tmp, srv, timeout=3)
    ok(run("-f", cfg, "run"))
    srv.add(mkmsg("c2"), "uid-2")
    srv.set(stall="STAT")
    assert run("-f", cfg, "run").returncode == 75
    srv.set(stall=None)
    for _ in range(2):
        r = ok(run("-f", cfg, "-v", "run"))
        t = proto(r.stderr)
        assert "CAPA" in sent(t)
        i = [line for _, line in t].index("PASS ****")
        assert t[i + 1][0] == "S", t
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2


def test_a_stop_or_a_failed_delivery_keeps_the_short_way(fake, run, popsift, tmp):
    """A session that got its listing and then failed (a stop by SIGTERM,
    a delivery that failed) says nothing about the way in: the next
    session still skips CAPA.  A daemon restarted mid-poll would
    otherwise cost every account on that server a round trip for good."""
    srv = fake([mkmsg("t1")])
    cfg = rtt_config(tmp, srv, timeout=10)
    ok(run("-f", cfg, "run"))
    srv.add(mkmsg("t2"), "uid-2")
    srv.set(stall="RETR")
    retrs = len(srv.commands("RETR"))
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "run"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(srv.commands("RETR")) == retrs and time.monotonic() < deadline and \
            p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 75 and "stopped by a signal" in err, err
    srv.set(stall=None)
    bad = rtt_config(tmp, srv, timeout=10, deliver=f"maildir {tmp / 'file'}")
    (tmp / "file").write_text("not a directory")
    assert run("-f", bad, "-v", "run").returncode != 0
    cfg = rtt_config(tmp, srv, timeout=10)
    r = ok(run("-f", cfg, "-v", "run"))
    assert "CAPA" not in sent(proto(r.stderr)), r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2


def test_courier_is_never_taken_the_short_way(fake, run, tmp):
    srv = fake([mkmsg("k1")], capa_extra=["IMPLEMENTATION Courier Mail Server"])
    cfg = rtt_config(tmp, srv)
    for _ in range(2):
        r = ok(run("-f", cfg, "-v", "run"))
        assert "CAPA" in sent(proto(r.stderr))
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1


def test_user_refused_on_the_short_way(fake, run, tmp):
    srv = fake([mkmsg("u1")])
    cfg = rtt_config(tmp, srv)
    ok(run("-f", cfg, "run"))
    srv.add(mkmsg("u2"), "uid-2")
    srv.set(err={"USER"})
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 77, r.stderr
    assert "login refused for user alice at 127.0.0.1" in r.stderr
    assert "CAPA" not in sent(proto(r.stderr))
    srv.set(err=None)
    r2 = ok(run("-f", cfg, "-v", "run"))
    assert "CAPA" in sent(proto(r2.stderr))
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2
    assert len(srv.remaining()) == 2


def test_starttls_and_sasl_keep_libcurls_way(dovecot, run, tmp):
    dovecot.add_message("alice", mkmsg("s1"))
    for keys in ({"tls": "starttls"}, {"auth": "any"}):
        t = tmp / keys.popitem()[0]
        t.mkdir()
        cfg = rtt_config(t, dovecot, **({"tls": "starttls"} if t.name == "tls" else {"auth": "any"}))
        ok(run("-f", cfg, "run"))
        r = ok(run("-f", cfg, "-v", "run"))
        assert "CAPA" in sent(proto(r.stderr)), r.stderr


# --------------------------------------------------------------------------
# a far server: no round trip between batches, LIST with the first UIDL

@pytest.mark.parametrize("keep", ["yes", "no"])
def test_next_batch_goes_out_before_this_one_is_read(dovecot, run, tmp, keep):
    n = 1001   # batches of 500
    msgs = [mkmsg(f"b{i}") for i in range(1, n + 1)]
    dovecot.add_messages("alice", msgs)
    cfg = rtt_config(tmp, dovecot, keep=keep)
    r = ok(run("-f", cfg, "-v", "run"))
    t = proto(r.stderr)
    lines = [f"{d}: {x}" for d, x in t]
    # nothing known yet: LIST goes with UIDL, not a round trip later
    u = lines.index("C: UIDL")
    assert lines[u + 1] == "C: LIST", lines
    # the later batches' RETRs (up to three batches ahead) are on the wire
    # before batch 1's first reply is read
    first_retr = lines.index("C: RETR 1")
    first_reply = next(i for i in range(first_retr, len(lines)) if lines[i].startswith("S:"))
    assert lines.index("C: RETR 501") < first_reply, lines[:20]
    assert lines.index("C: RETR 1001") < first_reply, lines[:20]
    got = [m.split(b"Subject: ")[1].split(b"\n")[0] for m in pt.mbox_messages(tmp / "inbox.mbox")]
    assert got == [f"b{i}".encode() for i in range(1, n + 1)]
    assert dovecot.count("alice") == (n if keep == "yes" else 0)
    # and again: nothing twice
    ok(run("-f", cfg, "run"))
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == n
