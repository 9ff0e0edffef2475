"""Compatibility with popa3d 1.0.3 (Debian package popa3d; issue 6, the
table is doc/compat.md).

popa3d conflicts with dovecot-pop3d (Conflicts: pop3-server): tests/deps.sh
unpacks its .deb under /var/cache/popsift-test/popa3d and
tests/lib/servers.py runs it inetd style, one process per connection on a
free 127.0.0.1 port, for system users popsift-USER (PAM) whose mbox is
/var/mail/popsift-USER.  Its quirks, each pinned by a test below:

  - no CAPA (`-ERR`): no PIPELINING, STLS, SASL or TOP/UIDL advertised,
    yet popsift pipelines its RETRs and DELEs and uses UIDL and TOP,
    which popa3d has;
  - USER/PASS only: no APOP timestamp in the greeting, no SASL, no TLS;
  - it serves the mbox as stored: a body line kept as `>From ` in the
    spool reaches popsift as `>From ` (no mboxrd unquoting);
  - its UIDL is a hash of the header section only: two messages with the
    same headers get the same UIDL (RFC 1939 wants them unique), and
    popsift leaves the second one on the server, saying so.

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_compat_popa3d.py
"""

import os
import re

import pytest

import popsift_test as pt
import servers
from compat_fixtures import (
    assert_pipelined, check_header_rules_use_top, config_writer, delivered)
from servers import TRICKY, message_id, mkmsg

ACCOUNT = "pa"


@pytest.fixture
def popa3d(request):
    if os.geteuid() != 0:
        pytest.fail("the compatibility tests start popa3d and must run as root")
    s = servers.Popa3d(users={"alice": "secret"})
    yield s
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        print(f"--- popa3d stderr {s.log_path} (tail)\n{s.log_tail(60)}")
    s.stop()


pa_config = config_writer(ACCOUNT, tls="off")


def summary(stderr):
    return servers.summary(stderr, ACCOUNT)


def test_popa3d_user_pass_fetch_delete_rerun(popa3d, pa_config, run, tmp):
    """USER/PASS, 40 messages, keep no: RETRs pipelined although popa3d
    has no CAPA; every message exactly once and byte for byte as stored
    in the spool ('>From ' stays quoted, dot lines and a missing final
    newline come through); the spool is empty; a rerun fetches nothing."""
    msgs = [mkmsg(f"m{i}", TRICKY[i % len(TRICKY)]) for i in range(40)]
    popa3d.add_messages("alice", msgs)
    cfg = pa_config(popa3d, auth="user")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (40, 40, 0, 40)
    assert "pa: C: CAPA" in r.stderr and "pa: S: -ERR" in r.stderr
    assert "C: USER popsift-alice" in r.stderr and "secret" not in r.stderr
    assert_pipelined(r.stderr, "pa")
    got = delivered(tmp / "inbox.mbox")
    assert [message_id(m) for m in got] == [message_id(m) for m in msgs]
    assert got == [popa3d.stored(m) for m in msgs]
    # the quirk, spelled out: the spool's mboxrd quoting reaches the client
    quoted = got[1]
    assert b"\n>From the start of a line\n>>From quoted once\n" in quoted
    assert popa3d.count("alice") == 0
    assert popa3d.mbox("alice").stat().st_size == 0
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 40


def test_popa3d_keep_yes_uidl_stable(popa3d, pa_config, run, tmp):
    """keep yes: popa3d's UIDLs (a hash of the headers) are the same in
    the next session, so a rerun fetches nothing; --all fetches again."""
    msgs = [mkmsg(f"k{i}", TRICKY[i % len(TRICKY)]) for i in range(4)]
    popa3d.add_messages("alice", msgs)
    cfg = pa_config(popa3d, auth="user", keep="yes")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (4, 4, 4, 0)
    assert "C: DELE" not in r.stderr
    assert popa3d.count("alice") == 4
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert delivered(tmp / "inbox.mbox") == [popa3d.stored(m) for m in msgs]
    r = run("-f", cfg, "run", "--all")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr)[1] == 4
    assert popa3d.count("alice") == 4


def test_popa3d_auth_any_uses_user_pass(popa3d, pa_config, run, tmp):
    """auth any: no SASL, no APOP timestamp, so USER/PASS."""
    popa3d.add_message("alice", mkmsg("any"))
    r = run("-f", pa_config(popa3d), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: USER popsift-alice" in r.stderr and "C: APOP" not in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)


@pytest.mark.parametrize("auth", ["apop", "plain", "login", "cram-md5"])
def test_popa3d_offers_no_other_login(popa3d, pa_config, run, tmp, auth):
    """No APOP timestamp, no CAPA/SASL: any other method is exit 69 with
    the reason, and no credential goes out."""
    popa3d.add_message("alice", mkmsg("s"))
    r = run("-f", pa_config(popa3d, auth=auth), "-v", "run")
    assert r.returncode == 69, r.stderr
    for cmd in ("C: USER", "C: PASS", "C: APOP", "C: AUTH"):
        assert cmd not in r.stderr, r.stderr
    assert "nothing was sent" in r.stderr
    assert popa3d.count("alice") == 1


def test_popa3d_wrong_password(popa3d, pa_config, run, tmp):
    popa3d.add_message("alice", mkmsg("w"))
    r = run("-f", pa_config(popa3d, auth="user", password="wrong"), "run")
    assert r.returncode == 77, r.stderr
    assert re.search(r"^pa: login refused", r.stderr, re.M), r.stderr
    assert popa3d.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists()


@pytest.mark.parametrize("tls", ["starttls", "on"])
def test_popa3d_has_no_tls(popa3d, pa_config, run, tmp, tls):
    """No STLS and no POP3S: tls starttls and tls on fail before any
    credential is sent (starttls: exit 69, it is not offered)."""
    popa3d.add_message("alice", mkmsg("t"))
    r = run("-f", pa_config(popa3d, tls=tls), "-v", "run", timeout=60)
    assert r.returncode in ((69,) if tls == "starttls" else (69, 75)), r.stderr
    assert "C: USER" not in r.stderr and "C: PASS" not in r.stderr
    assert popa3d.count("alice") == 1


def test_popa3d_header_rules_use_top(popa3d, pa_config, run, tmp):
    """TOP works (though not advertised): the skipped big message is never
    RETRieved and stays, the discarded one is deleted unread."""
    check_header_rules_use_top(popa3d, pa_config, run, tmp, auth="user")


def test_popa3d_same_headers_same_uidl(popa3d, pa_config, run, tmp):
    """Quirk: popa3d's UIDL hashes the header section only.  Two messages
    with identical headers and different bodies share a UIDL; popsift
    fetches the first, says the UIDL appears twice and leaves the second
    on the server, unread and not deleted.  In the next run the UIDL,
    deleted before, is back: left alone again, said again; --all fetches
    it."""
    head = (b"From: list@example.org\nTo: alice@example.org\nSubject: same\n"
            b"Message-ID: <same@popsift.test>\n\n")
    first, second = head + b"body one\n", head + b"body two\n"
    other = mkmsg("other")
    popa3d.add_messages("alice", [first, second, other])
    u = [uidl for _, uidl in servers.uidls(popa3d, "alice")]
    assert len(u) == 3 and u[0] == u[1] != u[2], u
    cfg = pa_config(popa3d, auth="user")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (2, 2, 0, 2)
    assert re.search(rf"^pa: UIDL {u[0]} appears twice: leaving message 2 on the server",
                     r.stderr, re.M), r.stderr
    assert "C: RETR 2" not in r.stderr and "C: DELE 2" not in r.stderr
    assert popa3d.messages("alice") == [popa3d.stored(second)]
    assert delivered(tmp / "inbox.mbox") == [popa3d.stored(first), popa3d.stored(other)]

    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert re.search(rf"^pa: UIDL {u[1]} was deleted in an earlier run but is on the server "
                     r"again: leaving message 1 alone", r.stderr, re.M), r.stderr
    assert "C: RETR" not in r.stderr and "C: DELE" not in r.stderr
    assert popa3d.messages("alice") == [popa3d.stored(second)]

    r = run("-f", cfg, "run", "--all")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr)[1:] == (1, 0, 1)
    assert popa3d.count("alice") == 0
    assert delivered(tmp / "inbox.mbox") == [popa3d.stored(m) for m in (first, other, second)]
