"""Compatibility with solid-pop3d 0.15 (Debian package solid-pop3d; issue 6,
the table is doc/compat.md).

solid-pop3d conflicts with dovecot-pop3d (Conflicts: pop3-server):
tests/deps.sh unpacks its .deb under /var/cache/popsift-test/solid-pop3d
and tests/lib/servers.py runs it inetd style, one process per connection
on a free 127.0.0.1 port with the accepted socket as stdin/stdout (with a
stdin that is not a socket it becomes a standalone daemon on [::]:110
instead), for system users popsift-USER (PAM; APOP secrets in
~/.spop3d, as pop_auth writes them).  Its quirks, each pinned below:

  - no CAPA (`-ERR unknown command`): no PIPELINING advertised; RETR and
    DELE pipelining works (commands pipelined after PASS/APOP would be
    lost: the login is checked in another process; popsift waits for the
    reply to PASS);
  - each message it serves ends with the blank line that separates it
    from the next one in the mbox: one extra empty line, counted in the
    LIST size;
  - it serves the mbox as stored: no mboxrd unquoting of `>From `;
  - AllowAPOP (Debian's default) puts an APOP timestamp in every
    greeting, also for users who have no APOP secret: APOP from such a
    user is refused.  `auth any` picks APOP then, and must fall back to
    USER/PASS (test_solid_auth_any_user_without_apop_secret);
  - no SASL, no TLS, UIDL is an MD5 of the message (stable).

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_compat_solid.py
"""

import re

import pytest

import popsift_test as pt
import servers
from compat_fixtures import (
    assert_pipelined, check_header_rules_use_top, config_writer, delivered, server_factory)
from servers import TRICKY, message_id, mkmsg

ACCOUNT = "sp"


make_solid = server_factory(servers.SolidPop3d, "solid-pop3d", users={"alice": "secret"})


sp_config = config_writer(ACCOUNT, tls="off")


def summary(stderr):
    return servers.summary(stderr, ACCOUNT)


def as_served(server, m: bytes) -> bytes:
    """What solid-pop3d serves for m: the mbox text plus the separating
    blank line."""
    return server.stored(m) + b"\n"


def test_solid_user_pass_fetch_delete_rerun(make_solid, sp_config, run, tmp):
    """USER/PASS (AllowAPOP off: no timestamp), 40 messages, keep no,
    RETRs pipelined: every message once, as stored plus the separator
    line; the mbox is empty; a rerun fetches nothing."""
    sp = make_solid()
    msgs = [mkmsg(f"m{i}", TRICKY[i % len(TRICKY)]) for i in range(40)]
    sp.add_messages("alice", msgs)
    cfg = sp_config(sp, auth="user")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (40, 40, 0, 40)
    assert "sp: S: -ERR unknown command" in r.stderr      # CAPA
    assert "C: USER popsift-alice" in r.stderr and "secret" not in r.stderr
    assert_pipelined(r.stderr, "sp")
    got = delivered(tmp / "inbox.mbox")
    assert [message_id(m) for m in got] == [message_id(m) for m in msgs]
    assert got == [as_served(sp, m) for m in msgs]
    assert sp.count("alice") == 0
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 40


def test_solid_serves_separator_line(make_solid, sp_config, run, tmp):
    """Quirk: the blank line after each message in the mbox is part of the
    message solid-pop3d serves, and of its LIST size."""
    sp = make_solid()
    msg = mkmsg("sep")
    sp.add_message("alice", msg)
    (listing, retr) = servers.pop3_dialog(sp, "alice", ["LIST 1", "RETR 1"])
    size = len(sp.stored(msg).replace(b"\n", b"\r\n")) + 2
    assert listing.split() == [b"+OK", b"1", str(size).encode()], listing
    assert retr.split(b"\r\n", 1)[1].endswith(b"\r\nHello.\r\n\r\n"), retr[-60:]
    r = run("-f", sp_config(sp, auth="user"), "run")
    assert r.returncode == 0, r.stderr
    (got,) = delivered(tmp / "inbox.mbox")
    assert got == msg + b"\n"


def test_solid_apop_keep_yes_uidl_stable(make_solid, sp_config, run, tmp):
    """APOP with the secret pop_auth would write; keep yes; the UIDLs (MD5
    of the message) are the same next session: a rerun fetches nothing,
    --all fetches again."""
    sp = make_solid(apop=True)
    msgs = [mkmsg(f"k{i}", TRICKY[i % len(TRICKY)]) for i in range(4)]
    sp.add_messages("alice", msgs)
    cfg = sp_config(sp, auth="apop", keep="yes")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^sp: S: \+OK .*<\d+\.\d+@popsift\.test>$", r.stderr, re.M), r.stderr
    assert "C: APOP popsift-alice ****" in r.stderr
    assert "C: USER" not in r.stderr and "C: PASS" not in r.stderr
    assert summary(r.stderr) == (4, 4, 4, 0)
    assert sp.count("alice") == 4
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert delivered(tmp / "inbox.mbox") == [as_served(sp, m) for m in msgs]
    r = run("-f", cfg, "run", "--all")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr)[1] == 4


def test_solid_auth_any_with_apop_secret_uses_apop(make_solid, sp_config, run, tmp):
    sp = make_solid(apop=True)
    sp.add_message("alice", mkmsg("any"))
    r = run("-f", sp_config(sp), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: APOP popsift-alice ****" in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)
    assert sp.count("alice") == 0


def test_solid_auth_any_user_without_apop_secret(make_solid, sp_config, run, tmp):
    """Quirk: with AllowAPOP (Debian's default config) every greeting has
    an APOP timestamp, but a user who never ran pop_auth has no APOP
    secret and APOP is refused.  USER/PASS works for that user
    (auth user).  `auth any` must log in too: after the refused APOP,
    USER/PASS.  (popsift stops at the APOP refusal today: exit 77,
    "login refused"; see doc/compat.md.)"""
    sp = make_solid(apop=True, apop_secrets={})
    sp.add_message("alice", mkmsg("noapop"))
    r = run("-f", sp_config(sp, auth="apop"), "-v", "run")
    assert r.returncode == 77, r.stderr
    assert "C: APOP popsift-alice ****" in r.stderr and "C: PASS" not in r.stderr
    r = run("-f", sp_config(sp, auth="user"), "-v", "run", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert sp.count("alice") == 1
    r = run("-f", sp_config(sp), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: APOP popsift-alice ****" in r.stderr
    assert "C: USER popsift-alice" in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)
    assert sp.count("alice") == 0


def test_solid_wrong_password(make_solid, sp_config, run, tmp):
    sp = make_solid(apop=True)
    sp.add_message("alice", mkmsg("w"))
    for auth in ("user", "apop"):
        r = run("-f", sp_config(sp, auth=auth, password="wrong"), "run")
        assert r.returncode == 77, (auth, r.stderr)
        assert re.search(r"^sp: login refused", r.stderr, re.M), (auth, r.stderr)
    assert sp.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists()


@pytest.mark.parametrize("auth", ["plain", "login", "cram-md5"])
def test_solid_no_sasl_no_credentials_sent(make_solid, sp_config, run, tmp, auth):
    sp = make_solid(apop=True)
    sp.add_message("alice", mkmsg("s"))
    r = run("-f", sp_config(sp, auth=auth), "-v", "run")
    assert r.returncode == 69, r.stderr
    for cmd in ("C: USER", "C: PASS", "C: APOP", "C: AUTH"):
        assert cmd not in r.stderr, r.stderr
    assert sp.count("alice") == 1


def test_solid_apop_without_allowapop(make_solid, sp_config, run, tmp):
    """AllowAPOP no: no timestamp in the greeting; auth apop is exit 69,
    nothing sent."""
    sp = make_solid(apop=False)
    sp.add_message("alice", mkmsg("a"))
    r = run("-f", sp_config(sp, auth="apop"), "-v", "run")
    assert r.returncode == 69, r.stderr
    assert "no APOP timestamp" in r.stderr
    assert "C: APOP" not in r.stderr and "C: USER" not in r.stderr
    assert sp.count("alice") == 1


@pytest.mark.parametrize("tls", ["starttls", "on"])
def test_solid_has_no_tls(make_solid, sp_config, run, tmp, tls):
    sp = make_solid()
    sp.add_message("alice", mkmsg("t"))
    r = run("-f", sp_config(sp, tls=tls), "-v", "run", timeout=60)
    assert r.returncode in ((69,) if tls == "starttls" else (69, 75)), r.stderr
    assert "C: USER" not in r.stderr and "C: PASS" not in r.stderr
    assert sp.count("alice") == 1


def test_solid_header_rules_use_top(make_solid, sp_config, run, tmp):
    sp = make_solid()
    check_header_rules_use_top(sp, sp_config, run, tmp, auth="user")
