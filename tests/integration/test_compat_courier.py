"""Compatibility with Courier's POP3 server 1.0.16 (Debian package
courier-pop; issue 6, the table is doc/compat.md).

courier-pop conflicts with dovecot-pop3d (Conflicts: pop3-server):
tests/deps.sh unpacks it and courier-base (couriertcpd, couriertls) under
/var/cache/popsift-test/ and installs courier-authlib and its userdb
module, which conflict with nothing.  tests/lib/servers.py runs
authdaemond (authuserdb) and couriertcpd in a mount and PID namespace of
their own, so authlib's compiled-in /etc/courier and /run/courier are
the test's own directories; users are userdb users with Maildirs.
What it does, each pinned by a test below:

  - CAPA: SASL PLAIN LOGIN CRAM-MD5 (POP3AUTH), STLS, TOP, USER,
    LOGIN-DELAY 10, PIPELINING, UIDL, UTF8 USER; POP3S through
    couriertls -server -tcpd;
  - no APOP (greeting "+OK Hello there.", no timestamp);
  - UIDLs are UID<n>-<uidvalidity>, kept in courierpop3dsizelist: stable
    across sessions, new mail gets new ones;
  - LOGIN-DELAY 10 is advertised but not enforced: popsift reconnects
    at once, and that works;
  - a message without a final newline is served with one (as every POP3
    server must: the terminating "." needs its own line).

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_compat_courier.py
"""

import re

import pytest

import popsift_test as pt
import servers
from compat_fixtures import (
    assert_pipelined, check_header_rules_use_top, config_writer, delivered, server_factory)
from servers import TRICKY, message_id, mkmsg

ACCOUNT = "cu"


make_courier = server_factory(servers.CourierPop3d, "Courier", users={"alice": "secret"})


@pytest.fixture
def courier(make_courier):
    return make_courier()


cu_config = config_writer(ACCOUNT)


def summary(stderr):
    return servers.summary(stderr, ACCOUNT)


def as_served(m: bytes) -> bytes:
    return m if m.endswith(b"\n") else m + b"\n"


def test_courier_starttls_user_pass_fetch_delete_rerun(courier, cu_config, run, tmp):
    """USER/PASS after STLS, 40 messages pipelined (PIPELINING is
    advertised), keep no: every message once, bodies exact, the Maildir
    empty, a rerun fetches nothing."""
    msgs = [mkmsg(f"m{i}", TRICKY[i % len(TRICKY)]) for i in range(40)]
    courier.add_messages("alice", msgs)
    cfg = cu_config(courier, tls="starttls", auth="user")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (40, 40, 0, 40)
    for cap in ("SASL PLAIN LOGIN CRAM-MD5", "STLS", "PIPELINING", "LOGIN-DELAY 10"):
        assert f"cu: S: {cap}\n" in r.stderr, r.stderr
    assert "C: STLS" in r.stderr and "C: USER alice" in r.stderr
    assert "secret" not in r.stderr
    assert_pipelined(r.stderr, "cu")
    got = delivered(tmp / "inbox.mbox")
    assert [message_id(m) for m in got] == [message_id(m) for m in msgs]
    assert got == [as_served(m) for m in msgs]
    assert courier.count("alice") == 0
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 40


@pytest.mark.parametrize("auth,tls", [("plain", "starttls"), ("login", "starttls"),
                                      ("cram-md5", "starttls"), ("cram-md5", "off"),
                                      ("plain", "on"), ("user", "on")])
def test_courier_auth_methods(courier, cu_config, run, tmp, auth, tls):
    """Each login method Courier offers, over STLS, POP3S and (CRAM-MD5)
    plain text."""
    msg = mkmsg(f"{auth}-{tls}", TRICKY[0])
    courier.add_message("alice", msg)
    r = run("-f", cu_config(courier, auth=auth, tls=tls), "-v", "run")
    assert r.returncode == 0, r.stderr
    if auth == "user":
        assert "C: USER alice" in r.stderr and "C: AUTH" not in r.stderr
    else:
        assert f"C: AUTH {auth.upper()}" in r.stderr and "C: USER" not in r.stderr
    assert ("C: STLS" in r.stderr) == (tls == "starttls")
    assert "secret" not in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)
    assert delivered(tmp / "inbox.mbox") == [msg]
    assert courier.count("alice") == 0


def test_courier_auth_any_picks_cram_md5(courier, cu_config, run, tmp):
    """auth any over POP3S: CRAM-MD5, the strongest mechanism offered."""
    courier.add_message("alice", mkmsg("any"))
    r = run("-f", cu_config(courier, tls="on"), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: AUTH CRAM-MD5" in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)


def test_courier_auth_any_user_without_cram_secret(make_courier, cu_config, run, tmp):
    """Quirk: POP3AUTH is one list for every user: CAPA offers CRAM-MD5
    also to a user whose userdb entry has no hmac-md5pw (only a crypt
    password, as a PAM or system user would), and CRAM-MD5 is refused for
    that user while PLAIN and USER/PASS work.  `auth any` (libcurl picks
    CRAM-MD5) must log in too: after the refused mechanism, USER/PASS —
    the same fix as solid-pop3d's APOP (doc/compat.md)."""
    cu = make_courier(cram=False)
    cu.add_message("alice", mkmsg("nocram"))
    r = run("-f", cu_config(cu, tls="starttls", auth="cram-md5"), "-v", "run")
    assert r.returncode == 77, r.stderr
    r = run("-f", cu_config(cu, tls="starttls", auth="plain"), "-v", "run", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert cu.count("alice") == 1
    r = run("-f", cu_config(cu, tls="starttls"), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: AUTH CRAM-MD5" in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)
    assert cu.count("alice") == 0


def test_courier_keep_yes_uidl_stable(courier, cu_config, run, tmp):
    """keep yes: Courier's UIDLs survive into the next session (rerun
    fetches nothing); mail that arrives in between gets new UIDLs and is
    all that the next run fetches; --all fetches everything again."""
    msgs = [mkmsg(f"k{i}", TRICKY[i % len(TRICKY)]) for i in range(4)]
    courier.add_messages("alice", msgs)
    before = servers.uidls(courier, "alice")
    assert all(re.fullmatch(r"UID\d+-\d+", u) for _, u in before), before
    cfg = cu_config(courier, tls="starttls", auth="cram-md5", keep="yes")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (4, 4, 4, 0)
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert servers.uidls(courier, "alice") == before
    late = mkmsg("late")
    courier.add_message("alice", late)
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (1, 1, 1, 0)
    assert "C: RETR 5" in r.stderr and "C: RETR 1" not in r.stderr
    assert delivered(tmp / "inbox.mbox") == [as_served(m) for m in msgs + [late]]
    r = run("-f", cfg, "run", "--all")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr)[1] == 5
    assert courier.count("alice") == 5


def test_courier_has_no_apop(courier, cu_config, run, tmp):
    courier.add_message("alice", mkmsg("a"))
    r = run("-f", cu_config(courier, tls="starttls", auth="apop"), "-v", "run")
    assert r.returncode == 69, r.stderr
    assert "no APOP timestamp" in r.stderr
    for cmd in ("C: USER", "C: PASS", "C: APOP", "C: AUTH"):
        assert cmd not in r.stderr, r.stderr
    assert courier.count("alice") == 1


@pytest.mark.parametrize("auth", ["user", "cram-md5"])
def test_courier_wrong_password(courier, cu_config, run, tmp, auth):
    """A refused login is exit 77 (Courier answers after a 5 s delay)."""
    courier.add_message("alice", mkmsg("w"))
    r = run("-f", cu_config(courier, tls="starttls", auth=auth, password="wrong"), "run")
    assert r.returncode == 77, r.stderr
    assert re.search(r"^cu: login refused", r.stderr, re.M), r.stderr
    assert courier.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists()


def test_courier_without_sasl(make_courier, cu_config, run, tmp):
    """POP3AUTH empty (Debian's default /etc/courier/pop3d): no SASL line
    in CAPA; auth plain is exit 69 with nothing sent; auth any falls to
    USER/PASS."""
    cu = make_courier(sasl="")
    cu.add_message("alice", mkmsg("n"))
    r = run("-f", cu_config(cu, tls="starttls", auth="plain"), "-v", "run")
    assert r.returncode == 69, r.stderr
    assert "cu: S: SASL" not in r.stderr
    for cmd in ("C: USER", "C: PASS", "C: AUTH"):
        assert cmd not in r.stderr, r.stderr
    r = run("-f", cu_config(cu, tls="starttls"), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: USER alice" in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)


def test_courier_header_rules_use_top(courier, cu_config, run, tmp):
    check_header_rules_use_top(courier, cu_config, run, tmp, tls="starttls")
