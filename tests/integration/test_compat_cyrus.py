"""Compatibility with Cyrus IMAP's pop3d 3.6.1 (Debian package
cyrus-pop3d; issue 6, the table is doc/compat.md).

cyrus-pop3d conflicts with dovecot-pop3d (Conflicts: pop3-server), and an
installed cyrus-common would start a system-wide Cyrus: tests/deps.sh
unpacks both and apt-installs only their libraries and sasl2-bin.
tests/lib/servers.py runs Cyrus master from the unpacked package with a
configuration of the test's own, in a PID namespace of its own, users in a
sasldb, mail delivered through LMTP.  What it does, pinned below:

  - CAPA: SASL with every mechanism libsasl2 has a plugin for (SCRAM-SHA-*,
    DIGEST-MD5, CRAM-MD5, NTLM, PLAIN, LOGIN; -PLUS variants after STLS),
    STLS, TOP, UIDL, PIPELINING, RESP-CODES, AUTH-RESP-CODE, USER,
    EXPIRE NEVER, LOGIN-DELAY 0; APOP timestamp in the greeting;
  - `auth any` lets libcurl pick DIGEST-MD5 from that list, and it works;
  - a refused login is `-ERR [AUTH] Invalid login`;
  - UIDLs are <uidvalidity>.<uid>, stable across sessions;
  - lmtpd adds Return-Path, Received, X-Cyrus-Session-Id and X-Sieve
    headers at delivery: the message popsift delivers is what RETR gives,
    byte for byte.

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_compat_cyrus.py
"""

import re

import pytest

import popsift_test as pt
import servers
from compat_fixtures import (
    assert_pipelined, check_header_rules_use_top, config_writer, delivered, server_factory)
from servers import TRICKY, message_id, mkmsg

ACCOUNT = "cy"


make_cyrus = server_factory(servers.CyrusPop3d, "Cyrus", users={"alice": "secret"})


@pytest.fixture
def cyrus(make_cyrus):
    return make_cyrus()


cy_config = config_writer(ACCOUNT)


def summary(stderr):
    return servers.summary(stderr, ACCOUNT)


def test_cyrus_starttls_user_pass_fetch_delete_rerun(cyrus, cy_config, run, tmp):
    """USER/PASS after STLS, 40 messages pipelined, keep no: every message
    once, exactly as RETR serves it (the original plus Cyrus's delivery
    headers), the mailbox empty, a rerun fetches nothing."""
    msgs = [mkmsg(f"m{i}", TRICKY[i % len(TRICKY)]) for i in range(40)]
    cyrus.add_messages("alice", msgs)
    on_server = cyrus.messages("alice")
    assert len(on_server) == 40
    for m, s in zip(msgs, on_server):
        assert s.startswith(b"Return-Path: <sender@example.org>\n"), s[:200]
        assert pt.header_values(s, "X-Cyrus-Session-Id"), s[:400]
        assert s.endswith(m if m.endswith(b"\n") else m + b"\n")
    cfg = cy_config(cyrus, tls="starttls", auth="user")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (40, 40, 0, 40)
    assert "C: STLS" in r.stderr and "C: USER alice" in r.stderr
    assert "secret" not in r.stderr
    assert_pipelined(r.stderr, "cy")
    got = delivered(tmp / "inbox.mbox")
    assert [message_id(m) for m in got] == [message_id(m) for m in msgs]
    # popsift's Received: first, then Cyrus's: strip ours only
    assert got == on_server
    assert cyrus.count("alice") == 0
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 40


@pytest.mark.parametrize("auth,tls", [("plain", "starttls"), ("login", "starttls"),
                                      ("cram-md5", "starttls"), ("cram-md5", "off"),
                                      ("apop", "off"), ("apop", "starttls"),
                                      ("plain", "on"), ("user", "on")])
def test_cyrus_auth_methods(cyrus, cy_config, run, tmp, auth, tls):
    """Each login method, over STLS, POP3S and (CRAM-MD5, APOP) plain text."""
    cyrus.add_message("alice", mkmsg(f"{auth}-{tls}", TRICKY[1]))
    (on_server,) = cyrus.messages("alice")
    r = run("-f", cy_config(cyrus, auth=auth, tls=tls), "-v", "run")
    assert r.returncode == 0, r.stderr
    if auth == "user":
        assert "C: USER alice" in r.stderr and "C: AUTH" not in r.stderr
    elif auth == "apop":
        assert "C: APOP alice ****" in r.stderr and "C: USER" not in r.stderr
    else:
        assert f"C: AUTH {auth.upper()}" in r.stderr and "C: USER" not in r.stderr
    assert ("C: STLS" in r.stderr) == (tls == "starttls")
    assert "secret" not in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)
    assert delivered(tmp / "inbox.mbox") == [on_server]
    assert cyrus.count("alice") == 0


@pytest.mark.parametrize("sasl,mech", [(None, "DIGEST-MD5"),
                                       ("PLAIN LOGIN CRAM-MD5", "CRAM-MD5")])
def test_cyrus_auth_any(make_cyrus, cy_config, run, tmp, sasl, mech):
    """auth any: libcurl's pick among what Cyrus offers — DIGEST-MD5 from
    Cyrus's default list (every sasldb-capable plugin), CRAM-MD5 from a
    short one — logs in."""
    cy = make_cyrus(sasl=sasl)
    cy.add_message("alice", mkmsg("any"))
    r = run("-f", cy_config(cy, tls="starttls"), "-v", "run")
    assert r.returncode == 0, r.stderr
    if sasl is None:
        assert re.search(r"^cy: S: SASL .*SCRAM-SHA-256.* DIGEST-MD5 CRAM-MD5 NTLM PLAIN LOGIN$",
                         r.stderr, re.M), r.stderr
    assert f"C: AUTH {mech}" in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)


def test_cyrus_keep_yes_uidl_stable(cyrus, cy_config, run, tmp):
    """keep yes: Cyrus's UIDLs (uidvalidity.uid) are the same next
    session; mail that arrives in between is all the next run fetches;
    --all fetches everything again."""
    msgs = [mkmsg(f"k{i}", TRICKY[i % len(TRICKY)]) for i in range(4)]
    cyrus.add_messages("alice", msgs)
    before = servers.uidls(cyrus, "alice")
    assert all(re.fullmatch(r"\d+\.\d+", u) for _, u in before), before
    cfg = cy_config(cyrus, tls="starttls", auth="cram-md5", keep="yes")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (4, 4, 4, 0)
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert servers.uidls(cyrus, "alice") == before
    cyrus.add_message("alice", mkmsg("late"))
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (1, 1, 1, 0)
    assert "C: RETR 5" in r.stderr and "C: RETR 1" not in r.stderr
    assert delivered(tmp / "inbox.mbox") == cyrus.messages("alice")
    r = run("-f", cfg, "run", "--all")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr)[1] == 5
    assert cyrus.count("alice") == 5


@pytest.mark.parametrize("auth", ["user", "cram-md5", "apop"])
def test_cyrus_wrong_password(cyrus, cy_config, run, tmp, auth):
    cyrus.add_message("alice", mkmsg("w"))
    r = run("-f", cy_config(cyrus, tls="starttls", auth=auth, password="wrong"), "-v", "run")
    assert r.returncode == 77, r.stderr
    assert re.search(r"^cy: login refused", r.stderr, re.M), r.stderr
    assert "cy: S: -ERR [AUTH]" in r.stderr
    assert cyrus.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists()


def test_cyrus_apop_off(make_cyrus, cy_config, run, tmp):
    """allowapop: no — no timestamp in the greeting: auth apop is exit 69,
    nothing sent."""
    cy = make_cyrus(apop=False)
    cy.add_message("alice", mkmsg("a"))
    r = run("-f", cy_config(cy, tls="starttls", auth="apop"), "-v", "run")
    assert r.returncode == 69, r.stderr
    assert "no APOP timestamp" in r.stderr
    for cmd in ("C: USER", "C: PASS", "C: APOP", "C: AUTH"):
        assert cmd not in r.stderr, r.stderr
    assert cy.count("alice") == 1


def test_cyrus_header_rules_use_top(cyrus, cy_config, run, tmp):
    check_header_rules_use_top(cyrus, cy_config, run, tmp, tls="starttls")
