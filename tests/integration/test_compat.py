"""Compatibility with POP3 servers other than Dovecot (issue 6; the
table is doc/compat.md).

GNU Mailutils pop3d 3.15 (mailutils-pop3d), started by tests/lib/servers.py
on a free 127.0.0.1 port with virtual-domain users and mbox mailboxes.
Its quirks, each pinned by a test below:

  - it adds an `X-UIDL:` header to every message it serves (RETR and
    TOP), and its LIST sizes do not count that header;
  - UIDLs are made on first sight (md5 + time + number) and written back
    into the mbox as X-UIDL when the mailbox is rewritten (also on a QUIT
    without deletions), so `keep yes` is stable across sessions;
  - its mbox is mboxrd: a body line `>From ` is served as `From `;
  - CAPA offers USER, TOP, UIDL, PIPELINING and STLS but no SASL: APOP
    works (timestamp in the greeting, secrets in a popauth database),
    AUTH PLAIN/LOGIN/CRAM-MD5 do not;
  - no POP3S listener in this setup (tls-mode stls): `tls on` fails.

popa3d, solid-pop3d and Courier: test_compat_popa3d.py,
test_compat_solid.py, test_compat_courier.py (they conflict with
dovecot-pop3d and run unpacked from their .debs); Cyrus: doc/compat.md.

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_compat.py
"""

import re
import time
import uuid

import pytest

import popsift_test as pt
import servers
from compat_fixtures import (
    assert_pipelined, check_header_rules_use_top, config_writer, delivered, server_factory)

SUMMARY_RE = re.compile(r"^mu: (\d+) new, (\d+) delivered, (\d+) kept, (\d+) deleted, ", re.M)


make_mailutils = server_factory(servers.MailutilsPop3d, "mailutils pop3d")


@pytest.fixture
def mu(make_mailutils):
    return make_mailutils(users={"alice": "secret"}, apop=True)


mu_config = config_writer("mu")


def mkmsg(tag: str, body: bytes = b"Hello.\n", subject: str | None = None) -> bytes:
    mid = f"<{tag}.{uuid.uuid4().hex}@popsift.test>"
    return (f"From: Sender <sender@example.com>\n"
            f"To: alice@example.org\n"
            f"Subject: {subject or tag}\n"
            f"Date: Fri, 01 Mar 2024 09:00:00 +0000\n"
            f"Message-ID: {mid}\n\n").encode() + body


# bodies that trip up dot-stuffing and From_ quoting
TRICKY = [
    b".leading dot\n..two dots\n.\nlast\n",
    b"From the start of a line\n>From quoted once\n>>From quoted twice\nend\n",
    b"no final newline",
    b"".join(b"line %d of a longer body\n" % i for i in range(2000)),
]


def message_id(m: bytes) -> str:
    v = pt.header_values(m, "Message-ID")
    return v[0] if v else ""


def as_served(m: bytes) -> bytes:
    """A message as mailutils serves it, minus the X-UIDL header it adds."""
    m = pt.strip_header(m, "X-UIDL", 0)
    return m if m.endswith(b"\n") else m + b"\n"  # the mbox ends every message with a newline


def summary(stderr: str) -> tuple[int, ...]:
    """The counts of the summary line (popsift prints it on stderr)."""
    m = SUMMARY_RE.search(stderr)
    assert m, stderr
    return tuple(int(x) for x in m.groups())


def test_mailutils_starttls_user_pass_fetch_delete_rerun(mu, mu_config, run, tmp):
    """USER/PASS after STLS, 40 messages pipelined, keep no: every message
    exactly once, bodies exact, server empty, a rerun fetches nothing."""
    msgs = [mkmsg(f"m{i}", TRICKY[i % len(TRICKY)]) for i in range(40)]
    mu.add_messages("alice", msgs)
    cfg = mu_config(mu, tls="starttls", auth="user")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (40, 40, 0, 40)
    assert "C: STLS" in r.stderr and "C: USER alice@example.org" in r.stderr
    assert "secret" not in r.stderr
    # pipelined: RETR 2 goes out before the reply to RETR 1 comes back
    assert_pipelined(r.stderr, "mu")
    got = delivered(tmp / "inbox.mbox", as_served)
    assert [message_id(m) for m in got] == [message_id(m) for m in msgs]
    assert got == [as_served(m) for m in msgs]
    assert mu.count("alice") == 0
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 40


def test_mailutils_adds_x_uidl_header(mu, mu_config, run, tmp):
    """Quirk: the X-UIDL header mailutils adds reaches the delivered
    message, carries the UIDL popsift recorded, and the LIST size (which
    leaves it out) does not trouble popsift."""
    msg = mkmsg("xuidl")
    mu.add_message("alice", msg)
    r = run("-f", mu_config(mu, tls="off", auth="user"), "-v", "run")
    assert r.returncode == 0, r.stderr
    (got,) = pt.mbox_messages(tmp / "inbox.mbox")
    uidl = pt.header_values(got, "X-UIDL")
    assert len(uidl) == 1 and re.fullmatch(r"[0-9a-f]{32}\.\d+\.1", uidl[0]), got[:400]
    # popsift's Received: header names the UIDL as its id
    assert f"id {uidl[0]};" in pt.header_values(got, "Received")[0]
    assert pt.strip_header(pt.strip_header(got, "Received"), "X-UIDL") == msg


def test_mailutils_apop_keep_yes_uidl_stable(mu, mu_config, run, tmp):
    """APOP on a plain connection, keep yes: the UIDLs mailutils invents
    survive into the next session (it writes them back into the mbox),
    so a rerun a second later fetches nothing."""
    msgs = [mkmsg(f"k{i}", TRICKY[i % len(TRICKY)]) for i in range(4)]
    mu.add_messages("alice", msgs)
    cfg = mu_config(mu, tls="off", auth="apop", keep="yes")
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: APOP alice@example.org ****" in r.stderr
    assert "C: USER" not in r.stderr and "C: PASS" not in r.stderr
    assert summary(r.stderr) == (4, 4, 4, 0)
    assert mu.count("alice") == 4
    time.sleep(1.1)   # UIDLs contain a time stamp: a new one would differ
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (0, 0, 0, 0)
    got = delivered(tmp / "inbox.mbox", as_served)
    assert got == [as_served(m) for m in msgs]
    # --all fetches them again
    r = run("-f", cfg, "run", "--all")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr)[1] == 4   # delivered again (they are not "new")


def test_mailutils_apop_over_starttls(mu, mu_config, run, tmp):
    mu.add_message("alice", mkmsg("a"))
    r = run("-f", mu_config(mu, tls="starttls", auth="apop"), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: STLS" in r.stderr and "C: APOP alice@example.org ****" in r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)
    assert mu.count("alice") == 0


def test_mailutils_auth_any_with_apop_db_uses_apop(mu, mu_config, run, tmp):
    """auth any: whatever popsift picks among USER and APOP must work."""
    mu.add_message("alice", mkmsg("any"))
    r = run("-f", mu_config(mu, tls="starttls"), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert summary(r.stderr) == (1, 1, 0, 1)


def test_mailutils_header_rules_use_top(mu, mu_config, run, tmp):
    """Header-only rules are decided from TOP n 0; mailutils supports
    TOP: the skipped big message is never RETRieved and stays, the
    discarded one is deleted unread."""
    cfg = check_header_rules_use_top(mu, mu_config, run, tmp, tls="off", auth="user")
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert mu.count("alice") == 1
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1


def test_mailutils_wrong_password(mu, mu_config, run, tmp):
    mu.add_message("alice", mkmsg("w"))
    for auth in ("user", "apop"):
        r = run("-f", mu_config(mu, tls="starttls", auth=auth, password="wrong"), "run")
        assert r.returncode == 77, (auth, r.stderr)
        assert re.search(r"^mu: login refused", r.stderr, re.M), (auth, r.stderr)
    assert mu.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists()


@pytest.mark.parametrize("auth", ["plain", "login", "cram-md5"])
def test_mailutils_no_sasl_no_credentials_sent(mu, mu_config, run, tmp, auth):
    """Quirk: mailutils pop3d offers no SASL (no AUTH in CAPA).  Asking for
    a SASL mechanism fails without sending a credential and without
    falling back to USER/PASS."""
    mu.add_message("alice", mkmsg("s"))
    r = run("-f", mu_config(mu, tls="off", auth=auth), "-v", "run")
    assert r.returncode != 0, r.stdout
    assert "C: AUTH" not in r.stderr and "C: USER" not in r.stderr
    assert "C: PASS" not in r.stderr and "C: APOP" not in r.stderr
    assert "mu:" in r.stderr
    assert mu.count("alice") == 1


def test_mailutils_tls_on_without_pop3s_fails(mu, mu_config, run, tmp):
    """tls on (implicit TLS) against the plain/STLS port: a clear failure,
    nothing sent in clear text, nothing deleted."""
    mu.add_message("alice", mkmsg("t"))
    r = run("-f", mu_config(mu, tls="on"), "-v", "run", timeout=60)
    assert r.returncode in (69, 75), r.stderr
    assert "C: USER" not in r.stderr and "C: PASS" not in r.stderr
    assert mu.count("alice") == 1
