"""popsift new (issue 17): a check for new mail without downloading it, as
fetchmail -c and mpop -s.  Against a real Dovecot: the counts and bytes
from UIDL and LIST, 0 new after a run, the server's mailbox and the state
database left exactly as they were, and the documented exit status
(0 new mail, 1 none, sysexits for errors)."""

import json
import re
import sqlite3
import uuid

import popsift_test as pt


def mkmsg(tag: str, body_lines: int = 3) -> bytes:
    body = "".join(f"line {i} of {tag}\n" for i in range(body_lines))
    return (f"From: s@example.com\nTo: alice@example.org\nSubject: {tag}\n"
            f"Message-ID: <{tag}.{uuid.uuid4().hex}@popsift.test>\n\n{body}").encode()


def wire_size(m: bytes) -> int:
    """What LIST says: the message with CRLF line ends."""
    return len(m) + m.count(b"\n")


def mailbox(dc, user="alice"):
    """Each message's name and bytes.  Dovecot moves a Maildir's new/ mail
    to cur/ (adding an empty ":2," info) when any session opens it: that is
    not a change; a flag (a seen S) would be."""
    return sorted((re.sub(r":2,$", "", p.name), p.read_bytes()) for p in dc.message_files(user))


def db_rows(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def db_files(tmp):
    """The database and its WAL, byte for byte (the -shm index is SQLite's
    scratch memory, rebuilt by any reader)."""
    return {p.name: p.read_bytes() for p in tmp.iterdir()
            if p.name.startswith("state.db") and not p.name.endswith("-shm")}


def pop3_activity(dc):
    """Dovecot's logout lines: top=N/B, retr=N/B, del=N/M for each session."""
    return re.findall(r"top=(\d+)/\d+, retr=(\d+)/\d+, del=(\d+)/\d+", dc.log())


def test_counts_bytes_and_nothing_touched(dovecot, config, run, tmp):
    msgs = [mkmsg(f"m{i}", body_lines=i * 7) for i in range(3)]
    dovecot.add_messages("alice", msgs)
    cfg = config(keep="yes")
    before = mailbox(dovecot)

    r = run("-f", cfg, "new")
    assert r.returncode == 0, r.stderr
    total = sum(wire_size(m) for m in msgs)
    assert r.stdout == f"test: 3 new, {total} bytes (3 messages on the server)\n"
    assert r.stderr == ""
    assert not (tmp / "state.db").exists(), "new must not create the state database"
    assert mailbox(dovecot) == before
    acts = pop3_activity(dovecot)
    assert acts == [("0", "0", "0")], acts   # no TOP, no RETR, no DELE

    r = run("-f", cfg, "new", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j == {"accounts": [{"account": "test", "new": 3, "bytes": total, "messages": 3,
                               "messages_bytes": total, "exit": 0, "error": None}],
                 "new": 3, "exit": 0}


def test_after_a_run_nothing_new_and_state_unchanged(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [mkmsg(f"a{i}") for i in range(4)])
    cfg = config(keep="yes")
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert "4 new" in r.stderr

    rows, files, box = db_rows(tmp / "state.db"), db_files(tmp), mailbox(dovecot)
    r = run("-f", cfg, "new")
    assert r.returncode == 1, (r.returncode, r.stderr)   # 1: no new mail
    assert r.stdout == "test: 0 new, 0 bytes (4 messages on the server)\n"
    assert db_rows(tmp / "state.db") == rows
    assert db_files(tmp) == files
    assert mailbox(dovecot) == box

    # two more arrive: new counts just those, and the next run agrees
    new = [mkmsg("b1", 20), mkmsg("b2", 1)]
    dovecot.add_messages("alice", new)
    r = run("-f", cfg, "-q", "new")
    assert r.returncode == 0 and r.stdout == "", r   # -q: the exit status alone
    j = json.loads(run("-f", cfg, "new", "--json").stdout)
    assert j["accounts"][0]["new"] == 2
    assert j["accounts"][0]["bytes"] == sum(wire_size(m) for m in new)
    assert j["accounts"][0]["messages"] == 6
    assert db_rows(tmp / "state.db") == rows
    r = run("-f", cfg, "run")
    assert r.returncode == 0 and "2 new" in r.stderr, r.stderr
    dovecot.wait_log(r"top=\d+/\d+, retr=", 5)
    assert [a[1:] for a in pop3_activity(dovecot)] == \
        [("4", "0"), ("0", "0"), ("0", "0"), ("0", "0"), ("2", "0")]


def test_several_accounts_and_one_named(dovecot, config, run, tmp):
    dovecot.add_message("bob", mkmsg("for-bob"))
    extra = pt.account_config(dovecot, "bob", name="second", deliver=f"mbox {tmp}/b.mbox")
    cfg = config(keep="yes", extra="\n" + extra)
    r = run("-f", cfg, "new")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("test: 0 new")
    assert r.stdout.splitlines()[1].startswith("second: 1 new")
    r = run("-f", cfg, "new", "test")
    assert r.returncode == 1 and r.stdout.startswith("test: 0 new"), r


def test_errors_exit_as_documented(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("x"))
    r = run("-f", config(password="wrong"), "new")
    assert r.returncode == 77, r.stderr
    assert "login refused" in r.stderr and r.stdout == ""

    r = run("-f", config(port=pt.free_port()), "new", "--json")
    assert r.returncode == 69, r.stderr
    j = json.loads(r.stdout)
    assert j["exit"] == 69 and j["accounts"][0]["exit"] == 69 and j["accounts"][0]["error"]

    r = run("-f", config(), "new", "nosuch")
    assert r.returncode == 64 and 'no account "nosuch"' in r.stderr

    # an error outweighs "no mail": a script must not read a broken account as empty
    cfg = config(keep="yes", extra="\n" + pt.account_config(
        dovecot, "bob", name="broken", password="wrong", deliver=f"mbox {tmp}/b.mbox"))
    r = run("-f", cfg, "new")
    assert r.returncode == 77, r.stderr
    assert r.stdout.startswith("test: 1 new")
    assert dovecot.count("alice") == 1
