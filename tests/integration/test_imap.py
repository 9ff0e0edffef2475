"""`deliver imap` and the rule action `imap FOLDER`: Dovecot POP3 -> rules
-> IMAP APPEND into another Dovecot user (tests/lib/imapd.py), and a
scripted fake IMAP server for the faults Dovecot will not produce.

What must hold: folders per list through $1 (imap_create yes); every
message unread (no \\Seen); its bytes those of the POP3 copy but for
popsift's Received: line and CRLF line ends; its internal date from its
own newest Received: (else Date:); the same with and without LITERAL+;
refusals, quota, BYE and a silent server leave the message on the POP3
server; a refused login exits 77; a SIGKILL in the middle of a run leaves
each message in the IMAP folder exactly once after the rerun.
"""

import base64
import collections
import datetime
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import popsift_test as pt  # noqa: E402
from imapd import DovecotImap, FakeImap  # noqa: E402


@pytest.fixture
def imap_dovecot(request):
    servers = []

    def make(**kw):
        kw.setdefault("users", {"alice": "secret", "bob": "secret"})
        dc = DovecotImap(**kw)
        servers.append(dc)
        return dc

    yield make
    for dc in servers:
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(f"--- Dovecot log (tail)\n{dc.log_tail(40)}")
        dc.stop()


def msg(i, *, list_id=None, extra="", date="Fri, 01 Mar 2024 09:00:00 +0000", body=None):
    h = (f"From: Sender <s{i}@example.com>\nTo: alice@example.org\nSubject: message {i}\n"
         f"Date: {date}\nMessage-ID: <m{i}.{os.getpid()}@popsift.test>\n")
    if list_id:
        h += f"List-Id: Some list <{list_id}.lists.example.org>\n"
    return (h + extra + "\n").encode() + (body or f"body {i}\nsecond line\n".encode())


def write_rules(tmp, text):
    p = tmp / "rules"
    p.write_text(text)
    os.chmod(p, 0o600)
    return p


def imap_config(tmp, dc, *, target=None, deliver="imap", **keys):
    t = target or dc
    acc = dict(deliver=deliver, state=tmp / "state.db", imap_host="127.0.0.1",
               imap_port=t.imap_port if hasattr(t, "imap_port") else t.port,
               imap_tls="off", imap_user="bob", imap_password="secret", timeout=20)
    acc.update(keys)
    return pt.write_config(tmp / "config", pt.account_config(dc, "alice", **acc), 0o600)


def when(imap_date: str) -> datetime.datetime:
    return datetime.datetime.strptime(imap_date, "%d-%b-%Y %H:%M:%S %z")


def strip_received(imap_copy: bytes) -> tuple[bytes, bytes]:
    """popsift's Received: field (first, folded over three lines) and the rest."""
    m = re.match(rb"Received: from [^\r\n]*\r\n\tby [^\r\n]*\(popsift [^)]*\)\r\n\tid [^;]+; [^\r\n]*\r\n",
                 imap_copy)
    assert m, imap_copy[:300]
    return m.group(0), imap_copy[m.end():]


def test_folders_unread_bytes_dates(imap_dovecot, popsift, tmp):
    dc = imap_dovecot()
    msgs = [msg(1, list_id="debian-devel"), msg(2, list_id="postfix-users"),
            msg(3, list_id="debian-devel"),
            msg(4, extra="Received: from a by b; Tue, 5 Mar 2024 10:00:00 +0100\n"
                         "Received: from c by d; Tue, 5 Mar 2024 08:30:00 -0300\n"),
            msg(5, extra="X-Folder: ../../Entwürfe\n", body=b"no final newline"),
            msg(6, body=b"bare\rCR and\r\nCRLF\n")]
    dc.add_messages("alice", msgs)
    rules = write_rules(tmp, "match header \"List-Id\" =~ /<([a-z0-9-]+)\\./  imap \"lists/$1\"\n"
                             "match header \"X-Folder\" =~ /./  imap \"f/${header:X-Folder}\"\n"
                             "match all  imap INBOX\n")
    cfg = imap_config(tmp, dc, deliver=None, rules=rules, imap_create="yes")
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    assert dc.count("alice") == 0
    folders = set(dc.imap_folders("bob"))
    assert {"lists/debian-devel", "lists/postfix-users", "INBOX"} <= folders, folders
    # "../../Entwürfe": no "..", no new level; UTF-8 as modified UTF-7
    assert "f/___.__Entw&APw-rfe" in folders, folders
    got = {}
    for folder in ("lists/debian-devel", "lists/postfix-users", "INBOX", "f/___.__Entw&APw-rfe"):
        for flags, date, data in dc.imap_messages("bob", folder):
            assert "\\Seen" not in flags, (folder, flags)
            rec, rest = strip_received(data)
            mid = re.search(rb"Message-ID: <m(\d+)\.", rest).group(1).decode()
            got[int(mid)] = (folder, date, rest)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert [got[i][0] for i in (1, 2, 3)] == ["lists/debian-devel", "lists/postfix-users",
                                             "lists/debian-devel"]
    for i, m in enumerate(msgs, 1):
        want = m.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        want += b"" if want.endswith(b"\r\n") else b"\r\n"   # as POP3 sends it
        assert got[i][2] == want, (i, got[i][2][-60:], want[-60:])
    # the newest Received: (11:30 UTC; Dovecot's Maildir keeps the instant,
    # not the zone), else Date:
    assert when(got[4][1]) == when("05-Mar-2024 08:30:00 -0300")
    assert when(got[1][1]) == when("01-Mar-2024 09:00:00 +0000")
    assert "APPEND" in r.stderr and "(\\Seen)" not in r.stderr


@pytest.mark.parametrize("caps", ["IMAP4rev1 UIDPLUS", "IMAP4rev1 LITERAL- UIDPLUS"])
def test_without_literal_plus(imap_dovecot, popsift, tmp, caps):
    dc = imap_dovecot(imap_capability=caps)
    msgs = [msg(i, body=(b"x" * (i * 3000)) + b"\n") for i in range(1, 6)]
    dc.add_messages("alice", msgs)
    cfg = imap_config(tmp, dc, deliver="imap Archive", imap_create="yes")
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    appends = re.findall(r"C: P\d+ APPEND \"Archive\" \"[^\"]+\" \{(\d+)(\+?)\}", r.stderr)
    assert len(appends) == 5, r.stderr
    for n, plus in appends:
        # LITERAL-: {n+} only up to 4096 bytes; without either never
        assert plus == ("+" if "LITERAL-" in caps and int(n) <= 4096 else ""), appends
    got = dc.imap_messages("bob", "Archive")
    assert len(got) == 5 and all("\\Seen" not in f for f, _, _ in got)
    assert dc.count("alice") == 0


def test_missing_folder_without_imap_create_defers(imap_dovecot, popsift, tmp):
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1), msg(2)])
    cfg = imap_config(tmp, dc, deliver="imap Nowhere")
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode == 75, r.stderr
    assert 'IMAP folder "Nowhere" of account test does not exist' in r.stderr
    assert "imap_create yes" in r.stderr
    assert dc.count("alice") == 2
    assert "Nowhere" not in dc.imap_folders("bob")


def test_check_shows_imap_provider(popsift, tmp):
    cfg = pt.write_config(tmp / "config", "account a\nhost pop.example.org\nuser u\n"
                          "password p\ndeliver imap Lists\nimap_provider gmail\n"
                          "imap_user me@gmail.com\nimap_auth xoauth2\n", 0o600)
    r = pt.run_popsift(["-v", "-f", cfg, "check"], binary=popsift)
    assert r.returncode == 0, r.stderr
    assert "imap imap.gmail.com:993 tls on" in r.stdout + r.stderr


def test_refused_login_exits_77(imap_dovecot, popsift, tmp):
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1)])
    cfg = imap_config(tmp, dc, imap_password="wrong")
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode == 77, r.stderr
    assert "IMAP login refused for user bob" in r.stderr
    assert dc.count("alice") == 1


def test_cleartext_password_to_remote_host_refused(imap_dovecot, popsift, tmp):
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1)])
    cfg = imap_config(tmp, dc, imap_host="imap.example.org")
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode == 78, r.stderr
    assert "clear text" in r.stderr
    assert dc.count("alice") == 1


@pytest.fixture
def fake_imap():
    servers = []

    def make(**kw):
        s = FakeImap(**kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
    for s in servers:
        assert not s.errors, s.errors


@pytest.mark.parametrize("fault,want", [
    (dict(overquota=True), "OVERQUOTA"),
    (dict(bye_after=1), "may have landed"),
    (dict(stall_after=1), "may have landed"),
    (dict(literal_plus=False, bye_after=2), "may have landed"),
])
def test_faults_leave_mail_on_the_server(imap_dovecot, fake_imap, popsift, tmp, fault, want):
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(i) for i in range(1, 5)])
    srv = fake_imap(**fault)
    stall = "stall_after" in fault
    cfg = imap_config(tmp, dc, target=srv, timeout=3 if stall else 20)
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift, timeout=120)
    assert r.returncode == 75, r.stderr
    assert want in r.stderr, r.stderr
    # only what the server answered OK to may be gone from the POP3 server
    # (an OK lost with the connection leaves its message in doubt: kept)
    assert 4 - dc.count("alice") <= len(srv.appended), (r.stderr, len(srv.appended))
    assert dc.count("alice") >= 4 - (0 if "overquota" in fault else fault.get("bye_after", 1))


def test_kept_connection_closed_by_the_server_is_dialled_again(imap_dovecot, fake_imap,
                                                               popsift, tmp):
    """Two accounts in one run share the IMAP connection; the server logs
    out the idle connection in between (* BYE): the second account's
    message goes over a new one instead of failing."""
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1)])
    dc.add_messages("bob", [msg(2)])
    srv = fake_imap(autologout=True)
    imap = dict(deliver="imap", imap_host="127.0.0.1", imap_port=srv.port, imap_tls="off",
                imap_user="carol", imap_password="secret")
    text = pt.account_config(dc, "alice", name="one", state=tmp / "state.db", **imap)
    text += "\n" + pt.account_config(dc, "bob", name="two", **imap)
    cfg = pt.write_config(tmp / "config", text, 0o600)
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    assert len(srv.appended) == 2 and dc.count("alice") == 0 and dc.count("bob") == 0


def test_connection_kept_across_accounts_under_starttls(imap_dovecot, popsift, tmp):
    """Two accounts, one IMAP connection (STARTTLS): the second account's
    message goes over the kept connection at once, not after a timeout."""
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1)])
    dc.add_messages("bob", [msg(2)])
    imap = dict(deliver="imap", imap_host="127.0.0.1", imap_port=dc.imap_port,
                imap_tls="starttls", imap_tls_ca_file=dc.cafile, imap_user="bob",
                imap_password="secret", timeout=30)
    # max_parallel 1: one process polls both accounts (in parallel, each
    # worker process has its own connection)
    text = "max_parallel 1\n" + pt.account_config(dc, "alice", name="one",
                                                  state=tmp / "state.db", **imap)
    text += "\n" + pt.account_config(dc, "bob", name="two", **imap)
    cfg = pt.write_config(tmp / "config", text, 0o600)
    t = time.monotonic()
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t < 15, r.stderr
    assert r.stderr.count("AUTHENTICATE") == 1, r.stderr    # one login: one connection
    assert len(dc.imap_messages("bob")) == 2


def test_append_in_doubt_is_searched_for_next_run(imap_dovecot, fake_imap, popsift, tmp):
    """BYE after the data of the second APPEND: it may have landed.  The
    next run looks for each message before appending; once a run ends
    clean, the one after it no longer searches."""
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(i) for i in range(1, 5)])
    srv = fake_imap(bye_after=1)
    cfg = imap_config(tmp, dc, target=srv)
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode == 75 and "may have landed" in r.stderr, r.stderr
    # the first was answered OK (its reply may be lost with the connection)
    assert len(srv.appended) == 1 and dc.count("alice") in (3, 4)
    left = dc.count("alice")
    srv.bye_after = None
    srv.commands.clear()
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    # one search a message (and the settling reads: UID SEARCH UID *)
    searches = [c for c in srv.commands if c.startswith("UID SEARCH HEADER")]
    assert len(searches) == left, srv.commands
    assert all("HEADER Message-ID" in c and "HEADER Received" in c for c in searches)
    ids = collections.Counter(re.search(rb"Message-ID: (<[^>]+>)", m).group(1) for m in srv.appended)
    assert len(ids) == 4 and set(ids.values()) == {1}, ids
    assert dc.count("alice") == 0
    dc.add_messages("alice", [msg(9)])
    srv.commands.clear()
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    assert not [c for c in srv.commands if "SEARCH" in c], srv.commands


@pytest.mark.parametrize("on_reject", ["keep", "discard"])
def test_appendlimit_rejects_big_message(imap_dovecot, fake_imap, popsift, tmp, on_reject):
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1), msg(2, body=b"y" * 5000 + b"\n")])
    srv = fake_imap(appendlimit=2000)
    cfg = imap_config(tmp, dc, target=srv, on_reject=on_reject)
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode != 0
    # on_reject discard is forward's: never a deletion of what nobody stored
    assert "APPENDLIMIT" in r.stderr, r.stderr
    assert ("rejected" if on_reject == "keep" else "deferred") in r.stderr, r.stderr
    assert len(srv.appended) == 1 and dc.count("alice") == 1
    assert all("\\Seen" not in c for c in srv.commands)


def test_starttls_and_certificate_check(imap_dovecot, popsift, tmp):
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1)])
    other = pt.make_certs(tmp / "other")["ca"]   # a CA that did not sign the server's
    cfg = imap_config(tmp, dc, imap_tls="starttls", imap_tls_ca_file=other)
    r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
    assert r.returncode == 69, r.stderr
    assert "TLS with IMAP server" in r.stderr and dc.count("alice") == 1
    cfg = imap_config(tmp, dc, imap_tls="starttls", imap_tls_ca_file=dc.cafile)
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    assert "STARTTLS" in r.stderr and dc.count("alice") == 0
    assert len(dc.imap_messages("bob")) == 1


def test_xoauth2_login(imap_dovecot, fake_imap, popsift, tmp):
    dc = imap_dovecot()
    dc.add_messages("alice", [msg(1)])
    srv = fake_imap()
    cfg = imap_config(tmp, dc, target=srv, imap_auth="xoauth2", imap_password="TOKEN123")
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0, r.stderr
    auth = [c for c in srv.commands if c.upper().startswith("AUTHENTICATE")]
    assert auth and auth[0].split()[1] == "XOAUTH2", srv.commands
    blob = auth[0].split()[2] if len(auth[0].split()) > 2 else srv.commands[srv.commands.index(auth[0]) + 1]
    assert base64.b64decode(blob) == b"user=bob\x01auth=Bearer TOKEN123\x01\x01"
    assert "TOKEN123" not in r.stderr and blob not in r.stderr   # never in the trace
    assert len(srv.appended) == 1 and dc.count("alice") == 0


def imap_ids(dc, folder="INBOX"):
    ids = collections.Counter()
    for _, _, data in dc.imap_messages("bob", folder):
        ids[re.search(rb"Message-ID: (<[^>]+>)", data).group(1).decode()] += 1
    return ids


def test_sigkill_mid_run_then_rerun_appends_each_once(imap_dovecot, popsift, tmp):
    n = 200
    dc = imap_dovecot()
    msgs = [msg(i, body=(b"line of text %d\n" % i) * 200) for i in range(n)]
    dc.add_messages("alice", msgs)
    cfg = imap_config(tmp, dc, deliver="imap Inbox2", imap_create="yes")
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "-q", "run"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # kill once some appends have landed, before the batch (all 200) commits
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        if dc.imap_count("bob", "Inbox2") >= 20:
            break
    assert p.poll() is None, "the run ended before the kill"
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=30)
    before = sum(imap_ids(dc, "Inbox2").values())
    print(f"killed with {before} messages in the folder, {dc.count('alice')} on the POP3 server")
    assert 0 < before < n and dc.count("alice") == n
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert dc.count("alice") == 0
    ids = imap_ids(dc, "Inbox2")
    dups = {k: v for k, v in ids.items() if v != 1}
    assert not dups, f"{len(dups)} duplicated: {list(dups.items())[:5]}"
    assert len(ids) == n
    found = r.stderr.count("not appended again")
    print(f"the rerun found {found} already there")
    assert found > 0, r.stderr[-3000:]
    # a clean run drops the journal: the next one does not search
    dc.add_messages("alice", [msg(1000)])
    r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
    assert r.returncode == 0 and "SEARCH" not in r.stderr, r.stderr[-2000:]
    assert imap_ids(dc, "Inbox2")[f"<m1000.{os.getpid()}@popsift.test>"] == 1


def test_imap_oauth2_login_refreshed_once_then_revoked(imap_dovecot, popsift, tmp):
    """IMAP delivery logged in with popsift's own OAuth2 token (Dovecot's
    oauth2 passdb checks it): `popsift authorize` stores the imap token; a
    refused token is refreshed once and the message still lands; a
    revoked grant exits 77 and the message stays on the POP3 server."""
    from oauthd import OAuthServer
    from test_oauth import authorize_pkce, assert_no_secret
    srv = OAuthServer(username="bob").start()
    try:
        dc = imap_dovecot(oauth2_introspect=srv.url("/introspect"))
        cfg = imap_config(tmp, dc, imap_auth="xoauth2", imap_password=None,
                          imap_oauth_client_id=srv.client_id,
                          imap_oauth_token_url=srv.url("/token"),
                          imap_oauth_auth_url=srv.url("/authorize"))
        rc, out, err, _ = authorize_pkce(popsift, cfg)
        assert rc == 0 and "stored the imap OAuth2 tokens" in out, out + err
        dc.add_messages("alice", [msg(1)])
        r = pt.run_popsift(["-vv", "-f", cfg, "run"], binary=popsift)
        assert r.returncode == 0, r.stderr
        assert "AUTHENTICATE XOAUTH2 ****" in r.stderr
        assert_no_secret(r.stderr, srv, "bob")
        srv.expire_access()
        dc.add_messages("alice", [msg(2)])
        r = pt.run_popsift(["-v", "-f", cfg, "run"], binary=popsift)
        assert r.returncode == 0, r.stderr
        assert srv.calls.get("refresh_token") == 1
        assert len(dc.imap_messages("bob")) == 2 and dc.count("alice") == 0
        srv.expire_access()
        srv.revoke()
        dc.add_messages("alice", [msg(3)])
        r = pt.run_popsift(["-f", cfg, "run"], binary=popsift)
        assert r.returncode == 77, r.stderr
        assert "run popsift authorize test" in r.stderr
        assert dc.count("alice") == 1 and len(dc.imap_messages("bob")) == 2
    finally:
        srv.stop()
