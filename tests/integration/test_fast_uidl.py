"""fast_uidl (issue 7, scenario 4): a poll of a kept mailbox asks STAT and
`UIDL n` for the last message the state knows instead of the whole UIDL
list, then `UIDL n` for each message after it; anything that does not fit
exactly (a count that shrank, another message at that number, -ERR, a
reply without a UID) falls back to the full listing.

Against Dovecot: new mail after a kept poll, mail deleted by another
client plus a new arrival, the short -v dialogue, `fast_uidl no`, keep AGE
with mail due, a state change that must void the shortcut, and a state
database from before fast_uidl.  Against tests/lib/fakepop.py: a server
whose single-message UIDL answers -ERR or no UID, and a changed server.
"""

import poplib
import sqlite3
import uuid

import pytest

import popsift_test as pt


def mkmsg(tag: str) -> bytes:
    return (f"From: sender@example.com\nTo: alice@example.org\nSubject: {tag}\n"
            f"Message-ID: <{tag}.{uuid.uuid4().hex}@popsift.test>\n\nbody of {tag}\n").encode()


def show(r):
    return f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def ok(r):
    assert r.returncode == 0, show(r)
    return r


def sent(r, account="test"):
    """The POP3 commands popsift sent after logging in, from the -v trace."""
    cmds = [ln.split(": C: ", 1)[1] for ln in r.stderr.splitlines()
            if ln.startswith(f"{account}: C: ")]
    # libcurl's part (CAPA, AUTH and its blobs, USER/PASS) comes first
    for i, c in enumerate(cmds):
        if c.split(" ", 1)[0] in ("STAT", "UIDL"):
            return cmds[i:]
    return cmds


def delivered(tmp):
    return [pt.strip_header(m, "Received") for m in pt.mbox_messages(tmp / "inbox.mbox")]


def snapshot(tmp, account="test"):
    with sqlite3.connect(tmp / "state.db") as db:
        return db.execute("SELECT settled, last_uidl FROM mailbox WHERE account=?",
                          (account,)).fetchone()


def states(tmp, account="test"):
    with sqlite3.connect(tmp / "state.db") as db:
        return dict(db.execute("SELECT uidl, state FROM messages WHERE account=?", (account,)))


def server_uidls(dc, user="alice"):
    """The UIDLs on the server, in order (another client's view)."""
    p = poplib.POP3(dc.host, dc.port)
    try:
        p.user(user)
        p.pass_(dc.users[user])
        return [ln.split()[1].decode() for ln in p.uidl()[1]]
    finally:
        p.quit()


@pytest.fixture
def kept(dovecot, config, run, tmp):
    """Five messages on the server, fetched once by a keep-yes account:
    returns (msgs, cfg); the state knows messages 1-5 as settled."""
    msgs = [mkmsg(f"m{i}") for i in range(1, 6)]
    dovecot.add_messages("alice", msgs)
    cfg = config(keep="yes")
    ok(run("-f", cfg, "run"))
    assert sorted(delivered(tmp)) == sorted(msgs)
    assert snapshot(tmp) == (5, server_uidls(dovecot)[-1])
    return msgs, cfg


# --------------------------------------------------------------------------
# against Dovecot

def test_poll_with_nothing_new_is_stat_and_one_uidl(kept, run, tmp):
    msgs, cfg = kept
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r) == ["STAT", "UIDL 5", "QUIT"], show(r)
    assert "fast_uidl" in r.stderr and "messages 1-5" in r.stderr, show(r)
    assert "test: 0 new, 0 delivered" in r.stderr, show(r)
    assert sorted(delivered(tmp)) == sorted(msgs)


def test_new_mail_after_a_kept_poll_is_found(kept, dovecot, run, tmp):
    msgs, cfg = kept
    more = [mkmsg("new1"), mkmsg("new2")]
    dovecot.add_messages("alice", more)
    r = ok(run("-f", cfg, "-v", "run"))
    cmds = sent(r)
    assert cmds[:4] == ["STAT", "UIDL 5", "UIDL 6", "UIDL 7"], show(r)
    assert "UIDL" not in cmds, "no full listing for two new messages\n" + show(r)
    assert {"RETR 6", "RETR 7"} <= set(cmds) and "RETR 1" not in cmds, show(r)
    assert not any(c.startswith("DELE") for c in cmds), "keep yes deletes nothing"
    got = delivered(tmp)
    assert sorted(got) == sorted(msgs + more), "each message exactly once"
    assert dovecot.count("alice") == 7
    assert snapshot(tmp) == (7, server_uidls(dovecot)[-1])

    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r) == ["STAT", "UIDL 7", "QUIT"], show(r)
    assert sorted(delivered(tmp)) == sorted(msgs + more)


@pytest.mark.parametrize("gone", [1, 3, 5])
def test_deleted_elsewhere_plus_new_arrival(kept, dovecot, run, tmp, gone):
    """Another client deletes message `gone` and a new one arrives: the
    count is 5 again but message 5 is another one, so the full listing
    runs; the new message is fetched once, nothing old again."""
    msgs, cfg = kept
    before = server_uidls(dovecot)
    dovecot.message_files("alice")[gone - 1].unlink()
    new = mkmsg("arrived")
    dovecot.add_message("alice", new)
    r = ok(run("-f", cfg, "-v", "run"))
    cmds = sent(r)
    assert cmds[:2] == ["STAT", "UIDL 5"] and "UIDL" in cmds, \
        "message 5 is another one: the full listing must follow\n" + show(r)
    assert "no longer" in r.stderr, show(r)
    assert sorted(delivered(tmp)) == sorted(msgs + [new])
    assert states(tmp)[before[gone - 1]] == "deleted", "the vanished message is forgotten"
    assert snapshot(tmp) == (5, server_uidls(dovecot)[-1])

    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r) == ["STAT", "UIDL 5", "QUIT"], show(r)
    assert sorted(delivered(tmp)) == sorted(msgs + [new])


def test_deleted_elsewhere_fewer_messages(kept, dovecot, run, tmp):
    msgs, cfg = kept
    dovecot.message_files("alice")[4].unlink()
    dovecot.message_files("alice")[0].unlink()
    r = ok(run("-f", cfg, "-v", "run"))
    assert "fewer than the 5 known" in r.stderr and "UIDL" in sent(r), show(r)
    assert sorted(delivered(tmp)) == sorted(msgs)
    assert snapshot(tmp) == (3, server_uidls(dovecot)[-1])


def test_fast_uidl_no_lists_everything(dovecot, config, run, tmp):
    msgs = [mkmsg(f"m{i}") for i in range(1, 4)]
    dovecot.add_messages("alice", msgs)
    cfg = config(keep="yes", fast_uidl="no")
    ok(run("-f", cfg, "run"))
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r) == ["UIDL", "QUIT"], show(r)
    assert snapshot(tmp) is None, "fast_uidl no keeps no snapshot"
    dovecot.add_message("alice", mkmsg("later"))
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r)[0] == "UIDL" and "STAT" not in sent(r), show(r)
    assert len(delivered(tmp)) == 4


def test_keep_no_never_uses_it(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [mkmsg("a"), mkmsg("b")])
    cfg = config(keep="no")
    ok(run("-f", cfg, "run"))
    dovecot.add_message("alice", mkmsg("c"))
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r)[0] == "UIDL" and "STAT" not in sent(r), show(r)
    assert snapshot(tmp) is None and dovecot.count("alice") == 0
    assert len(delivered(tmp)) == 3


def test_keep_age_due_lists_everything_and_deletes(kept, config, run, tmp, dovecot):
    msgs, _ = kept
    cfg = config(keep="1d")
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r) == ["STAT", "UIDL 5", "QUIT"], "nothing is due after a day\n" + show(r)
    with sqlite3.connect(tmp / "state.db") as db:     # as if fetched two days ago
        db.execute("UPDATE messages SET first_seen=first_seen-2*86400 WHERE uidl=?",
                   (server_uidls(dovecot)[2],))
    r = ok(run("-f", cfg, "-v", "run"))
    cmds = sent(r)
    assert "due for deletion" in r.stderr and cmds[0] == "UIDL", show(r)
    assert "DELE 3" in cmds and dovecot.count("alice") == 4, show(r)
    assert sorted(delivered(tmp)) == sorted(msgs)
    # message 3 is gone, 4 and 5 moved up: the snapshot says so
    assert snapshot(tmp) == (4, server_uidls(dovecot)[-1])
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r) == ["STAT", "UIDL 4", "QUIT"], show(r)


def test_a_state_change_voids_the_snapshot(kept, run, tmp, dovecot):
    """Whoever turns a delivered message into something else (here by hand,
    as a failed delivery would) voids the snapshot: the next run lists in
    full and fetches that message again."""
    msgs, cfg = kept
    uid2 = server_uidls(dovecot)[1]
    with sqlite3.connect(tmp / "state.db") as db:
        db.execute("UPDATE messages SET state='failed' WHERE uidl=?", (uid2,))
    assert snapshot(tmp) is None
    r = ok(run("-f", cfg, "-v", "run"))
    cmds = sent(r)
    assert cmds[0] == "UIDL" and "RETR 2" in cmds, show(r)
    assert len(delivered(tmp)) == 6 and delivered(tmp)[-1] == msgs[1]
    assert snapshot(tmp) == (5, server_uidls(dovecot)[-1])


def test_run_all_lists_everything(kept, run, tmp):
    msgs, cfg = kept
    r = ok(run("-f", cfg, "-v", "run", "--all"))
    assert sent(r)[0] == "UIDL" and "STAT" not in sent(r), show(r)
    assert len(delivered(tmp)) == 10


def test_state_from_before_fast_uidl_is_migrated(dovecot, config, run, tmp):
    """A version 1 database (no mailbox table): the first run migrates it
    and lists in full, the next one is fast."""
    msgs = [mkmsg("old1"), mkmsg("old2")]
    dovecot.add_messages("alice", msgs)
    uids = server_uidls(dovecot)
    with sqlite3.connect(tmp / "state.db") as db:
        db.executescript(
            "CREATE TABLE messages(account TEXT NOT NULL, uidl TEXT NOT NULL, state TEXT NOT NULL,"
            " first_seen INTEGER, delivered INTEGER, size INTEGER, message_id TEXT, subject TEXT,"
            " rule TEXT, action TEXT, error TEXT, PRIMARY KEY(account, uidl)) WITHOUT ROWID;"
            "CREATE INDEX messages_mid ON messages(message_id);"
            "CREATE TABLE journal(id INTEGER PRIMARY KEY, account TEXT NOT NULL, kind TEXT NOT NULL,"
            " path TEXT NOT NULL, offset INTEGER, prefix TEXT, created INTEGER);"
            "CREATE TABLE runs(id INTEGER PRIMARY KEY, account TEXT NOT NULL, started REAL,"
            " ended REAL, new INTEGER, delivered INTEGER, kept INTEGER, deleted INTEGER,"
            " bytes INTEGER, status INTEGER, error TEXT);"
            "PRAGMA user_version=1;")
        for u in uids:
            db.execute("INSERT INTO messages(account,uidl,state,first_seen) "
                       "VALUES('test',?,'delivered',strftime('%s','now'))", (u,))
    cfg = config(keep="yes")
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r) == ["UIDL", "QUIT"] and delivered(tmp) == [], show(r)
    with sqlite3.connect(tmp / "state.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        db.execute("SELECT dev, ino FROM journal")
        db.execute("SELECT polls FROM runs")
    assert snapshot(tmp) == (2, uids[-1])
    dovecot.add_message("alice", mkmsg("new"))
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r)[:3] == ["STAT", "UIDL 2", "UIDL 3"], show(r)
    assert len(delivered(tmp)) == 1


# --------------------------------------------------------------------------
# against the scripted server

def fake_config(tmp, srv, **keys):
    keys.setdefault("tls", "off")
    keys.setdefault("auth", "user")
    keys.setdefault("timeout", 5)
    keys.setdefault("keep", "yes")
    keys.setdefault("deliver", f"mbox {tmp / 'inbox.mbox'}")
    keys.setdefault("state", tmp / "state.db")
    return pt.write_config(tmp / "config", pt.account_config(srv, "alice", name="test", **keys))


def test_single_uidl_refused_falls_back(fake, run, tmp):
    msgs = [mkmsg(f"f{i}") for i in range(1, 4)]
    # -ERR to `UIDL n` for any n; the full UIDL still works
    srv = fake(msgs, err={"UIDL": range(1, 100)})
    cfg = fake_config(tmp, srv)
    ok(run("-f", cfg, "run"))
    assert snapshot(tmp) == (3, "uid-3")
    srv.add(mkmsg("f4"), "uid-4")
    r = ok(run("-f", cfg, "-v", "run"))
    assert sent(r)[:3] == ["STAT", "UIDL 3", "UIDL"], show(r)
    assert "listing every UIDL" in r.stderr, show(r)
    assert sorted(delivered(tmp)) == sorted(msgs + [srv.messages[3]])
    assert srv.count() == 4 and not srv.deleted


@pytest.mark.parametrize("reply", [b"+OK 4\r\n", b"+OK 5 uid-4\r\n", b"+OK\r\n",
                                   b"-ERR no such message\r\n"],
                         ids=["no-uid", "wrong-number", "bare-ok", "err"])
def test_odd_reply_for_a_new_message_falls_back(fake, run, tmp, reply):
    msgs = [mkmsg(f"f{i}") for i in range(1, 4)]
    srv = fake(msgs)
    cfg = fake_config(tmp, srv)
    ok(run("-f", cfg, "run"))
    srv.add(mkmsg("f4"), "uid-4")
    srv.set(raw={"UIDL": {4: reply}})   # only `UIDL 4`: the full listing is fine
    r = ok(run("-f", cfg, "-v", "run"))
    cmds = sent(r)
    assert cmds[:4] == ["STAT", "UIDL 3", "UIDL 4", "UIDL"], show(r)
    assert len(delivered(tmp)) == 4 and srv.count() == 4
    assert snapshot(tmp) == (4, "uid-4")


def test_another_server_is_not_trusted(fake, run, tmp):
    """The same account name pointed at another server with the same UIDLs:
    the snapshot names the server, so the full listing runs."""
    msgs = [mkmsg(f"f{i}") for i in range(1, 3)]
    a = fake(msgs)
    ok(run("-f", fake_config(tmp, a), "run"))
    b = fake(msgs)
    r = ok(run("-f", fake_config(tmp, b), "-v", "run"))
    assert sent(r)[0] == "UIDL" and "STAT" not in sent(r), show(r)
    assert len(delivered(tmp)) == 2


def test_dry_run_is_fast_and_writes_nothing(fake, run, tmp):
    msgs = [mkmsg(f"f{i}") for i in range(1, 3)]
    srv = fake(msgs)
    cfg = fake_config(tmp, srv)
    ok(run("-f", cfg, "run"))
    srv.add(mkmsg("f3"), "uid-3")
    r = ok(run("-f", cfg, "-v", "run", "--dry-run"))
    assert sent(r)[:3] == ["STAT", "UIDL 2", "UIDL 3"], show(r)
    assert snapshot(tmp) == (2, "uid-2") and len(delivered(tmp)) == 2
    ok(run("-f", cfg, "run"))
    assert snapshot(tmp) == (3, "uid-3") and len(delivered(tmp)) == 3


def test_unsettled_message_stops_the_snapshot(fake, run, tmp):
    """A message too big for max_size stays on the server: the snapshot
    ends before it, so every run still sees it (and says so)."""
    msgs = [mkmsg("f1"), mkmsg("f2") + b"x" * 5000 + b"\n", mkmsg("f3")]
    srv = fake(msgs)
    cfg = fake_config(tmp, srv, max_size=2000)
    r = ok(run("-f", cfg, "run"))
    assert "larger than max_size" in r.stderr, show(r)
    assert snapshot(tmp) == (1, "uid-1")
    r = ok(run("-f", cfg, "-v", "run"))
    cmds = sent(r)
    assert cmds[:4] == ["STAT", "UIDL 1", "UIDL 2", "UIDL 3"], show(r)
    assert "larger than max_size" in r.stderr, show(r)
    assert len(delivered(tmp)) == 2 and snapshot(tmp) == (1, "uid-1")
